"""GitHub's REST API (github.com and GitHub Enterprise at ``https://host/api/v3``).

Pulls are listed with ``head=owner:branch`` (the run branch lives in the same repository)
and opened with ``draft``; labels go on the pull request's issue afterwards (GitHub creates
a label it does not have yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from shipyard.delivery.errors import ForgeRequestError
from shipyard.delivery.forge import (
    ForgeAdapter,
    PullRequest,
    PullRequestDraft,
    github_shaped_pull,
    head_ref,
)


class GitHub(ForgeAdapter):
    """Pull requests of one GitHub repository (``owner/name``)."""

    name = "github"
    git_username = "x-access-token"

    headers: ClassVar[Mapping[str, str]] = {
        "Authorization": "Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }

    def find_open(self, head: str) -> PullRequest | None:
        """The open pull request from ``owner:head``, if any."""
        owner = self.repository.split("/", 1)[0]
        found = self.client.get(
            f"/repos/{self.repository}/pulls",
            params={"head": f"{owner}:{head}", "state": "open", "per_page": 10},
        )
        for pull in found or []:
            if head_ref(pull) == head:
                return github_shaped_pull(pull, "GitHub")
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
            created = self.client.post(f"/repos/{self.repository}/pulls", body)
        except ForgeRequestError as err:
            return self.existing(draft.head, err, "already exists")
        pull = github_shaped_pull(created, "GitHub")
        if draft.labels:
            self.client.post(
                f"/repos/{self.repository}/issues/{pull.number}/labels", {"labels": draft.labels}
            )
        return pull
