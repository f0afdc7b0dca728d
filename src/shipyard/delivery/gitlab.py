"""GitLab merge requests (API v4, gitlab.com or self-managed).

The project is addressed by its URL-encoded path. Open merge requests are listed with
``source_branch``; a draft is GitLab's ``Draft:`` title prefix; labels are one comma list of
names, and GitLab creates those the project does not have yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from shipyard.delivery.errors import ForgeRequestError
from shipyard.delivery.forge import ForgeAdapter, PullRequest, PullRequestDraft

DRAFT_PREFIX = "Draft: "


class GitLab(ForgeAdapter):
    """Merge requests of one GitLab project (``group/name``, subgroups allowed)."""

    name = "gitlab"
    git_username = "oauth2"

    headers: ClassVar[Mapping[str, str]] = {
        "PRIVATE-TOKEN": "{token}",
        "Accept": "application/json",
    }

    @property
    def _project(self) -> str:
        return f"/projects/{quote(self.repository, safe='')}"

    def find_open(self, head: str) -> PullRequest | None:
        """The open merge request from source branch ``head``, if any."""
        found = self.client.get(
            f"{self._project}/merge_requests",
            params={"state": "opened", "source_branch": head, "per_page": 10},
        )
        for request in found or []:
            if request.get("source_branch") == head:
                return _request(request)
        return None

    def open(self, draft: PullRequestDraft) -> PullRequest:
        """Open the merge request (a 409 because one exists already returns that one)."""
        body: dict[str, Any] = {
            "source_branch": draft.head,
            "target_branch": draft.base,
            "title": (DRAFT_PREFIX if draft.draft else "") + draft.title,
            "description": draft.body,
        }
        if draft.labels:
            body["labels"] = ",".join(draft.labels)
        try:
            return _request(self.client.post(f"{self._project}/merge_requests", body))
        except ForgeRequestError as err:
            return self.existing(draft.head, err, "already exists")


def _request(data: Any) -> PullRequest:
    try:
        return PullRequest(
            url=str(data["web_url"]),
            number=int(data["iid"]),
            head=str(data.get("source_branch", "")),
        )
    except (KeyError, TypeError, ValueError):
        raise ForgeRequestError(
            f"GitLab answered a merge request without web_url/iid: {data!r:.300}"
        ) from None
