"""``[deliver]``: where a completed run's branch goes and what is opened for it
(docs/delivery.md)::

    [deliver]
    push = true                  # push the run branch to the remote
    remote = "origin"
    pull_request = "draft"       # "draft" | "ready" | "none"
    forge = "github"             # "github" | "gitea" | "gitlab"; default: from the remote's URL
    api_url = "https://api.github.com"   # override for GitHub Enterprise, self-hosted Gitea/GitLab
    repository = "owner/name"    # default: from the remote's URL
    base = "main"                # default: the remote's default branch
    labels = ["shipyard"]        # labels of the pull request (none by default)

Nothing is pushed until a person approved the changes, unless ``[approvals] deliver =
"auto"``. The table is a frozen pydantic model with unknown keys refused, like the rest of
the policy; values that could not name a remote, a repository or a branch are refused here,
before a run starts.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

Forge = Literal["github", "gitea", "gitlab"]
PullRequestKind = Literal["draft", "ready", "none"]

_REMOTE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+$")
_BRANCH_BAD = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^/|/$|\.lock$|^-|\.$")
_LABEL = re.compile(r"^[^\x00-\x1f\x7f,]{1,50}$")


class DeliverPolicy(BaseModel):
    """``[deliver]``: push the run branch and open a pull request (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    push: bool = False
    remote: str = "origin"
    pull_request: PullRequestKind = "draft"
    forge: Forge | None = None
    """``None``: decided from the remote's URL (``delivery.target``)."""
    api_url: str | None = None
    """The forge's API root; ``None``: derived from the remote's host."""
    repository: str | None = None
    """``owner/name`` (a GitLab group path may have more parts); ``None``: from the URL."""
    base: str | None = None
    """The pull request's base branch; ``None``: the remote's default branch."""
    labels: list[str] = Field(default_factory=list)

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str) -> str:
        if not _REMOTE.match(value) or ".." in value:
            raise ValueError(f"{value!r} is not a git remote name (letters, digits, ._-)")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("api_url must not hold credentials; tokens come from the environment")
        return value.rstrip("/")

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and (not _REPOSITORY.match(value) or ".." in value):
            raise ValueError(f"{value!r} is not a repository path like owner/name")
        return value

    @field_validator("base")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is not None and (not value or _BRANCH_BAD.search(value)):
            raise ValueError(f"{value!r} is not a branch name")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if not _LABEL.match(label) or label != label.strip():
                raise ValueError(f"{label!r} is not a label (1-50 characters, no commas)")
        return value


__all__ = ["DeliverPolicy", "Forge", "PullRequestKind"]
