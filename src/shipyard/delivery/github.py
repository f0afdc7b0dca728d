"""GitHub's REST API (github.com and GitHub Enterprise at ``https://host/api/v3``).

Pulls are listed with ``head=owner:branch`` (the run branch lives in the same repository)
and opened with ``draft``; labels go on the pull request's issue afterwards.
"""

from __future__ import annotations

from typing import Any

import httpx

from shipyard.delivery.errors import ForgeRequestError
from shipyard.delivery.forge import ForgeClient, PullRequest, PullRequestDraft, Sleep
from shipyard.delivery.tokens import Token


class GitHub:
    """Pull requests of one GitHub repository (``owner/name``)."""

    name = "github"
    git_username = "x-access-token"

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: Token,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        headers = {
            "Authorization": f"Bearer {token.value}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        extra = {"sleep": sleep} if sleep is not None else {}
        self.client = ForgeClient(api_url, token, headers, transport=transport, **extra)
        self.repository = repository
        self._owner = repository.split("/", 1)[0]

    def find_open(self, head: str) -> PullRequest | None:
        """The open pull request from ``owner:head``, if any."""
        found = self.client.get(
            f"/repos/{self.repository}/pulls",
            params={"head": f"{self._owner}:{head}", "state": "open", "per_page": 10},
        )
        for pull in found or []:
            if _head(pull) == head:
                return _pull(pull)
        return None

    def open(self, draft: PullRequestDraft) -> PullRequest:
        """Open the pull request (a 422 because it exists already returns that one)."""
        body = {
            "title": draft.title,
            "body": draft.body,
            "head": draft.head,
            "base": draft.base,
            "draft": draft.draft,
        }
        try:
            pull = _pull(self.client.post(f"/repos/{self.repository}/pulls", body))
        except ForgeRequestError as err:
            existing = self.find_open(draft.head) if "already exists" in str(err) else None
            if existing is None:
                raise
            return existing
        if draft.labels:
            self.client.post(
                f"/repos/{self.repository}/issues/{pull.number}/labels", {"labels": draft.labels}
            )
        return pull


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
            f"GitHub answered a pull request without html_url/number: {data!r:.300}"
        ) from None
