"""Gitea and Forgejo (the ``/api/v1`` pulls API).

Gitea's list of pulls has no head filter: open pulls are read page by page (``MAX_PAGES`` of
50) and matched on ``head.ref``. A draft is Gitea's convention, a ``WIP:`` title prefix.
Labels are given by id, looked up by name in the repository's labels.
"""

from __future__ import annotations

from typing import Any

import httpx

from shipyard.delivery.errors import ForgeRequestError
from shipyard.delivery.forge import ForgeClient, PullRequest, PullRequestDraft, Sleep
from shipyard.delivery.tokens import Token

MAX_PAGES = 20
PAGE = 50
DRAFT_PREFIX = "WIP: "


class Gitea:
    """Pull requests of one Gitea / Forgejo repository (``owner/name``)."""

    name = "gitea"
    git_username = "shipyard"

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: Token,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        headers = {"Authorization": f"token {token.value}", "Accept": "application/json"}
        extra = {"sleep": sleep} if sleep is not None else {}
        self.client = ForgeClient(api_url, token, headers, transport=transport, **extra)
        self.repository = repository

    def find_open(self, head: str) -> PullRequest | None:
        """The open pull request whose head branch is ``head``, if any."""
        for page in range(1, MAX_PAGES + 1):
            pulls = self.client.get(
                f"/repos/{self.repository}/pulls",
                params={"state": "open", "page": page, "limit": PAGE},
            )
            for pull in pulls or []:
                if _head(pull) == head:
                    return _pull(pull)
            if not pulls or len(pulls) < PAGE:
                return None
        return None

    def open(self, draft: PullRequestDraft) -> PullRequest:
        """Open the pull request (a 409/422 because it exists already returns that one)."""
        body: dict[str, Any] = {
            "title": (DRAFT_PREFIX if draft.draft else "") + draft.title,
            "body": draft.body,
            "head": draft.head,
            "base": draft.base,
        }
        if draft.labels:
            body["labels"] = self._label_ids(draft.labels)
        try:
            return _pull(self.client.post(f"/repos/{self.repository}/pulls", body))
        except ForgeRequestError as err:
            existing = self.find_open(draft.head) if "exist" in str(err) else None
            if existing is None:
                raise
            return existing

    def _label_ids(self, names: list[str]) -> list[int]:
        labels = self.client.get(f"/repos/{self.repository}/labels", params={"limit": PAGE})
        ids = {str(label.get("name")): int(label["id"]) for label in labels or []}
        missing = [name for name in names if name not in ids]
        if missing:
            raise ForgeRequestError(
                f"the repository {self.repository} has no label(s) {missing}: create them or "
                "change [deliver] labels"
            )
        return [ids[name] for name in names]


def _head(pull: dict[str, Any]) -> str | None:
    head = pull.get("head")
    return head.get("ref") if isinstance(head, dict) else None


def _pull(data: Any) -> PullRequest:
    try:
        return PullRequest(
            url=str(data["html_url"]), number=int(data["number"]), head=_head(data) or ""
        )
    except (KeyError, TypeError, ValueError):
        raise ForgeRequestError(
            f"Gitea answered a pull request without html_url/number: {data!r:.300}"
        ) from None
