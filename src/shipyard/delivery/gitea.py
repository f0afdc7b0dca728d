"""Gitea and Forgejo (the ``/api/v1`` pulls API).

Gitea's list of pulls has no head filter: open pulls are read page by page (``MAX_PAGES`` of
``PAGE``) and matched on ``head.ref``. A draft is Gitea's convention, a ``WIP:`` title
prefix. Labels are given by id: looked up by name in the repository's labels (read page by
page too), and a label the repository does not have is created first, as GitHub and GitLab
do on their own — a token that may not create it is a ``ForgePermissionError`` saying so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from shipyard.delivery.errors import ForgePermissionError, ForgeRequestError
from shipyard.delivery.forge import (
    ForgeAdapter,
    PullRequest,
    PullRequestDraft,
    github_shaped_pull,
    head_ref,
)

MAX_PAGES = 20
PAGE = 50
DRAFT_PREFIX = "WIP: "
LABEL_COLOR = "#ededed"
"""The color of a label Shipyard creates (GitHub's for the labels it creates itself)."""


class Gitea(ForgeAdapter):
    """Pull requests of one Gitea / Forgejo repository (``owner/name``)."""

    name = "gitea"
    git_username = "shipyard"

    headers: ClassVar[Mapping[str, str]] = {
        "Authorization": "token {token}",
        "Accept": "application/json",
    }

    def find_open(self, head: str) -> PullRequest | None:
        """The open pull request whose head branch is ``head``, if any."""
        for pull in self._pages("pulls", {"state": "open"}):
            if head_ref(pull) == head:
                return github_shaped_pull(pull, "Gitea")
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
            return github_shaped_pull(
                self.client.post(f"/repos/{self.repository}/pulls", body), "Gitea"
            )
        except ForgeRequestError as err:
            return self.existing(draft.head, err, "exist")

    def _pages(self, what: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """The items of ``/repos/{repository}/{what}``, page by page, up to ``MAX_PAGES``."""
        for page in range(1, MAX_PAGES + 1):
            items = self.client.get(
                f"/repos/{self.repository}/{what}", params={**params, "page": page, "limit": PAGE}
            )
            yield from items or []
            if not items or len(items) < PAGE:
                return

    def _label_ids(self, names: list[str]) -> list[int]:
        """The ids of labels ``names``, creating those the repository does not have."""
        ids: dict[str, int] = {}
        for label in self._pages("labels", {}):
            ids.setdefault(str(label.get("name")), int(label["id"]))
        return [ids[name] if name in ids else self._create_label(name) for name in names]

    def _create_label(self, name: str) -> int:
        path = f"/repos/{self.repository}/labels"
        try:
            made = self.client.post(path, {"name": name, "color": LABEL_COLOR})
        except (ForgePermissionError, ForgeRequestError) as err:
            if isinstance(err, ForgeRequestError) and err.status != 404:
                raise
            raise ForgePermissionError(
                f"the token in {self.client.token.variable} may not create the label {name!r} "
                f"in {self.repository}: create it there, give the token write access to "
                f"issues, or change [deliver] labels ({err})"
            ) from None
        try:
            return int(made["id"])
        except (KeyError, TypeError, ValueError):
            raise ForgeRequestError(
                f"Gitea answered a new label without an id: {made!r:.300}"
            ) from None
