"""One run's delivery: the push and the pull request, as journaled effects (docs/delivery.md).

Both effects are keyed by (repository, branch, diff hash) in the run's journal, under the
step key ``<epoch>/deliver``, and both reconcile by looking at the world instead of acting
again: a push whose outcome was never recorded looks the remote branch up first (at the
commit: nothing to push), a pull request whose outcome was never recorded is looked up by its
head branch (open: nothing to open). A completed effect is replayed from its outcome. So a
process killed anywhere in a delivery, resumed or delivered again, pushes once and opens one
pull request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.contracts import Delivery
from shipyard.delivery.errors import DeliveryTargetError, ForgeAuthenticationError
from shipyard.delivery.forge import Forge, PullRequestDraft
from shipyard.delivery.gitea import Gitea
from shipyard.delivery.github import GitHub
from shipyard.delivery.gitlab import GitLab
from shipyard.delivery.push import Credential, Remote
from shipyard.delivery.target import ForgeTarget, forge_of, forge_target, locate
from shipyard.delivery.tokens import Token, find_token, missing_token_message
from shipyard.effects import EffectLog
from shipyard.policy.deliver import DeliverPolicy
from shipyard.policy.deliver import Forge as ForgeName

_ADAPTERS: dict[ForgeName, type[GitHub] | type[Gitea] | type[GitLab]] = {
    "github": GitHub,
    "gitea": Gitea,
    "gitlab": GitLab,
}
_USERNAMES: dict[ForgeName | None, str] = {
    None: GitHub.git_username,
    "github": GitHub.git_username,
    "gitea": Gitea.git_username,
    "gitlab": GitLab.git_username,
}


@dataclass(frozen=True)
class Parcel:
    """What one delivery is about: the run's branch at its head commit, and its diff."""

    repo: Path
    branch: str
    commit: str
    diff_hash: str
    run_branch: str
    """``shipyard/<run-id>``: the only branch a delivery of this run may push."""


def make_forge(target: ForgeTarget, token: Token) -> Forge:
    """The adapter for ``target.forge``."""
    forge: Forge = _ADAPTERS[target.forge](target.api_url, target.repository, token)
    return forge


class Shipment:
    """The remote, the forge and the base branch one delivery uses, decided before any
    effect: a wrong table or a missing token fails here, having done nothing."""

    def __init__(self, policy: DeliverPolicy, parcel: Parcel) -> None:
        if parcel.branch != parcel.run_branch:
            raise DeliveryTargetError(
                f"refusing to push {parcel.branch!r}: a run delivers only its own branch "
                f"{parcel.run_branch!r}"
            )
        self.policy = policy
        self.parcel = parcel
        url = Remote(parcel.repo, policy.remote).url()
        self.url = url
        self.target: ForgeTarget | None = None
        self.forge: Forge | None = None
        token = self._token(url)
        credential = None
        if token is not None and url.startswith(("http://", "https://")):  # ssh: its own keys
            username = self.forge.git_username if self.forge else _USERNAMES[self._forge_name(url)]
            credential = Credential(username, token)
        self.remote = Remote(parcel.repo, policy.remote, credential)
        self._base = policy.base
        if self._base == parcel.branch:
            raise DeliveryTargetError(f"refusing to push to the base branch {self._base!r}")

    def base(self) -> str:
        """The pull request's base: ``[deliver] base``, else the remote's default branch (one
        ``git ls-remote``, only when an effect runs: a replayed delivery needs no network)."""
        if self._base is None:
            found = self.remote.default_branch()
            if not found:
                raise DeliveryTargetError(
                    f"the remote {self.policy.remote!r} names no default branch: set [deliver] base"
                )
            if found == self.parcel.branch:
                raise DeliveryTargetError(f"refusing to push to the base branch {found!r}")
            self._base = found
        return self._base

    def _forge_name(self, url: str) -> ForgeName | None:
        return self.policy.forge or forge_of(locate(url).host)

    def _token(self, url: str) -> Token | None:
        if self.policy.pull_request == "none":
            return find_token(self._forge_name(url))
        self.target = forge_target(self.policy, url)
        token = find_token(self.target.forge)
        if token is None:
            raise ForgeAuthenticationError(missing_token_message(self.target.forge))
        self.forge = make_forge(self.target, token)
        return token

    @property
    def key(self) -> str:
        """The effects' key: (repository, branch, diff hash)."""
        where = self.target.repository if self.target else self.url
        return f"{where}|{self.parcel.branch}|{self.parcel.diff_hash}"

    def push(self, effects: EffectLog) -> dict[str, Any]:
        """Push once (journaled); the outcome's ``pushed`` is False when the remote already
        had the branch at the commit. A first attempt just pushes (a non-forced push of a
        commit the remote has changes nothing); only a reconciliation looks first."""
        intent = {
            "remote": self.policy.remote,
            "branch": self.parcel.branch,
            "commit": self.parcel.commit,
        }
        return effects.run(
            f"push {self.key}", "push", intent, self._push, lambda _i: self._ensure_pushed()
        )

    def _push(self) -> dict[str, Any]:
        base = self.base()  # never the base branch: known before anything is pushed
        self.remote.push(self.parcel.commit, self.parcel.branch)
        return {"pushed": True, "commit": self.parcel.commit, "base": base}

    def _ensure_pushed(self) -> dict[str, Any]:
        if self.remote.branch_commit(self.parcel.branch) == self.parcel.commit:
            return {"pushed": False, "commit": self.parcel.commit, "base": self.base()}
        return self._push()

    def pull_request(
        self, effects: EffectLog, draft: Callable[[str], PullRequestDraft]
    ) -> dict[str, Any]:
        """Find the open pull request of the branch or open one (journaled): its ``url``,
        ``number``, ``base`` and whether this call ``opened`` it. ``draft``: the pull request
        to open, given its base."""
        intent = {"head": self.parcel.branch, "kind": self.policy.pull_request}

        def find_or_open(_intent: dict[str, Any] | None = None) -> dict[str, Any]:
            return self._find_or_open(draft)

        return effects.run(
            f"pull_request {self.key}", "pull_request", intent, find_or_open, find_or_open
        )

    def _find_or_open(self, draft: Callable[[str], PullRequestDraft]) -> dict[str, Any]:
        assert self.forge is not None, "a pull request needs a forge (pull_request != none)"
        found = self.forge.find_open(self.parcel.branch)
        base = self.base()
        pull = found or self.forge.open(draft(base))
        return {"url": pull.url, "number": pull.number, "opened": found is None, "base": base}

    def record(
        self, *, pushed: dict[str, Any], pull: dict[str, Any] | None, manifest_hash: str, by: str
    ) -> Delivery:
        """The delivered outcome, from the effects' (possibly replayed) outcomes."""
        return Delivery(
            status="delivered",
            remote=self.policy.remote,
            branch=self.parcel.branch,
            commit=self.parcel.commit,
            forge=self.target.forge if self.target else None,
            repository=self.target.repository if self.target else None,
            base=(pull or {}).get("base") or pushed.get("base") or self.policy.base,
            pull_request=self.policy.pull_request,
            pushed=bool(pushed.get("pushed")),
            pull_request_url=pull["url"] if pull else None,
            pull_request_number=pull["number"] if pull else None,
            opened=bool(pull and pull["opened"]),
            manifest_hash=manifest_hash,
            approved_by=by,
        )


def draft_of(
    policy: DeliverPolicy, head: str, base: str, body: str, title: str
) -> PullRequestDraft:
    """The pull request to open from ``head`` into ``base``."""
    return PullRequestDraft(
        title=title, body=body, head=head, base=base,
        draft=policy.pull_request == "draft", labels=list(policy.labels),
    )  # fmt: skip


__all__ = ["Parcel", "Shipment", "draft_of", "make_forge"]
