"""Pushing the run branch with real git: over smart HTTP (``git http-backend`` behind basic
auth) with a one-command credential helper, and to a plain path remote. Never forced, never
the base branch, never a branch that is not the run's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipyard.delivery import (
    DeliveryTargetError,
    ForgeAuthenticationError,
    ForgeUnreachableError,
    PushRejectedError,
)
from shipyard.delivery.push import Credential, Remote
from shipyard.delivery.shipment import Parcel, Shipment
from shipyard.delivery.tokens import Token
from shipyard.policy.deliver import DeliverPolicy
from tests.integration.conftest import MakeRepo
from tests.integration.forges import GitHttpServer, bare_repo, git_http_server
from tests.support import git

TOKEN = "tok-push-1a2b3c4d5e6f7a8b"


@dataclass
class Served:
    repo: Path
    bare: Path
    server: GitHttpServer
    commit: str


@pytest.fixture
def served(tmp_path: Path, make_repo: MakeRepo) -> Iterator[Served]:
    repo = make_repo({"a.txt": "a\n"})
    git(repo, "checkout", "-q", "-b", "shipyard/r1")
    (repo / "b.txt").write_text("b\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "b")
    commit = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "main")
    (tmp_path / "served").mkdir()
    with git_http_server(tmp_path / "served", "x-access-token", TOKEN) as server:
        bare = bare_repo(tmp_path / "served", "widgets", repo)
        git(bare, "branch", "-D", "shipyard/r1")
        git(repo, "remote", "add", "origin", server.repo_url("widgets"))
        yield Served(repo, bare, server, commit)


def _remote(served: Served, token: str = TOKEN) -> Remote:
    return Remote(served.repo, "origin", Credential("x-access-token", Token("GITHUB_TOKEN", token)))


def test_a_push_authenticates_through_the_helper_and_leaves_no_token_behind(
    served: Served,
) -> None:
    remote = _remote(served)
    assert remote.branch_commit("shipyard/r1") is None
    assert remote.default_branch() == "main"
    remote.push(served.commit, "shipyard/r1")
    assert git(served.bare, "rev-parse", "shipyard/r1") == served.commit
    assert remote.branch_commit("shipyard/r1") == served.commit
    assert served.server.pushes == 1
    config = (served.repo / ".git" / "config").read_text()
    assert TOKEN not in config and "credential" not in config
    assert TOKEN not in served.server.repo_url("widgets")


def test_a_wrong_token_is_an_authentication_error_naming_the_variable(served: Served) -> None:
    with pytest.raises(ForgeAuthenticationError, match="check the token in GITHUB_TOKEN") as err:
        _remote(served, "not-the-token-0000").push(served.commit, "shipyard/r1")
    assert "not-the-token-0000" not in str(err.value)
    assert served.server.pushes == 0


def test_no_credential_for_an_http_remote_asks_for_a_token(served: Served) -> None:
    with pytest.raises(ForgeAuthenticationError, match="set a forge token"):
        Remote(served.repo, "origin").push(served.commit, "shipyard/r1")


def test_a_remote_branch_with_other_commits_is_never_forced(served: Served) -> None:
    other = git(
        served.bare, "-c", "user.name=O", "-c", "user.email=o@o",
        "commit-tree", "main^{tree}", "-p", "main", "-m", "someone else's commit",
    )  # fmt: skip
    git(served.bare, "branch", "shipyard/r1", other)
    with pytest.raises(PushRejectedError, match="never force-pushes"):
        _remote(served).push(served.commit, "shipyard/r1")
    assert git(served.bare, "rev-parse", "shipyard/r1") == other


def test_a_remote_nobody_answers_is_unreachable(served: Served) -> None:
    git(served.repo, "remote", "set-url", "origin", "http://127.0.0.1:9/widgets.git")
    with pytest.raises(ForgeUnreachableError, match="cannot be reached"):
        _remote(served).branch_commit("shipyard/r1")


def _parcel(served: Served, branch: str = "shipyard/r1") -> Parcel:
    return Parcel(served.repo, branch, served.commit, "sha256:x", run_branch="shipyard/r1")


def test_a_shipment_refuses_a_branch_that_is_not_the_runs(served: Served) -> None:
    policy = DeliverPolicy(push=True, pull_request="none")
    with pytest.raises(DeliveryTargetError, match="delivers only its own branch"):
        Shipment(policy, _parcel(served, "main"))
    assert served.server.requests == []


def test_a_shipment_refuses_to_push_to_the_base_branch(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    policy = DeliverPolicy(push=True, pull_request="none", forge="github", base="shipyard/r1")
    with pytest.raises(DeliveryTargetError, match="refusing to push to the base branch"):
        Shipment(policy, _parcel(served))
    assert served.server.pushes == 0


def test_a_missing_remote_names_it(served: Served) -> None:
    policy = DeliverPolicy(push=True, remote="upstream", pull_request="none")
    with pytest.raises(DeliveryTargetError, match="no remote 'upstream'"):
        Shipment(policy, _parcel(served))


def test_a_pull_request_without_a_forge_to_tell_names_the_key(served: Served) -> None:
    git(served.repo, "remote", "set-url", "origin", str(served.bare))
    with pytest.raises(DeliveryTargetError, match=r"set \[deliver\] forge"):
        Shipment(DeliverPolicy(push=True), _parcel(served))


def test_a_missing_token_names_every_variable_it_looked_for(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GITLAB_TOKEN", "SHIPYARD_FORGE_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    policy = DeliverPolicy(push=True, forge="gitlab", api_url="http://127.0.0.1:9/api/v4",
                           repository="acme/widgets")  # fmt: skip
    with pytest.raises(ForgeAuthenticationError, match="set GITLAB_TOKEN or SHIPYARD_FORGE_TOKEN"):
        Shipment(policy, _parcel(served))


def test_a_path_remote_takes_the_push_without_any_token(served: Served) -> None:
    git(served.repo, "remote", "set-url", "origin", str(served.bare))
    remote = Remote(served.repo, "origin")
    remote.push(served.commit, "shipyard/r1")
    assert git(served.bare, "rev-parse", "shipyard/r1") == served.commit
    assert remote.default_branch() == "main" and served.server.requests == []
