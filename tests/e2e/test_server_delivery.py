"""Delivery over the API (official SDK, real server, real git, a fake GitHub over HTTP): the
changes approval says what will be delivered, approving it pushes and opens a draft pull
request; a completed run that did not deliver is delivered later by a ``command`` with
``goto: "deliver"``; the pull request's URL is in the thread's state and the run's report."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shipyard.server.stores.keys import LOCAL_OWNER
from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine
from tests.e2e.runs_support import make_repo, note_script
from tests.integration.forges import FakeForge, bare_repo, fake_forge
from tests.support import git

TOKEN = "tok-api-7e6d5c4b3a291807"


def _policy(api_url: str, push: bool) -> str:
    return (
        f'[approvals]\nplan = "never"\n\n[deliver]\npush = {str(push).lower()}\n'
        f'forge = "github"\napi_url = "{api_url}"\nrepository = "acme/widgets"\n'
    )


def _repo(root: Path, policy: str) -> tuple[Path, Path]:
    repo = make_repo(root)
    (repo / ".shipyard.toml").write_text(policy)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "policy")
    bare = bare_repo(root, "widgets", repo)
    git(repo, "remote", "add", "origin", str(bare))
    return repo, bare


@dataclasses.dataclass
class _Served:
    """A server running the note-writing model script, the run's repository pushing to a
    bare ``origin`` and delivering to ``forge``."""

    start_server: Callable[..., Any]
    make_client: Callable[..., Any]
    settings: Settings
    root: Path

    async def first_run(
        self, forge: FakeForge, *, push: bool, owner: str | None = None
    ) -> tuple[Any, str, Path, Path, Any]:
        """The SDK (with an API key of ``owner``, else over loopback without one), the
        thread, the repository, its bare remote and the first run's values."""
        repo, bare = _repo(self.root, _policy(forge.api_url, push=push))
        script = note_script(self.root)
        running = self.start_server(None, dataclasses.replace(self.settings, model_script=script))
        key = running.state.auth.create("delivery", owner)[1] if owner else None
        sdk = self.make_client(running.url, key)
        tid = (await sdk.threads.create())["thread_id"]
        goal = {"goal": "add a note", "repo": str(repo)}
        return sdk, tid, repo, bare, await sdk.runs.wait(tid, "shipyard", input=goal)


@pytest.fixture
def served(
    start_server: Callable[..., Any],
    make_client: Callable[..., Any],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> _Served:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    return _Served(start_server, make_client, settings, tmp_path)


async def _approve(sdk: Any, tid: str) -> dict[str, Any]:
    request = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
    decision = {"decision": "approve", "by": "alice", "content_hash": request["content_hash"]}
    return dict(await sdk.runs.wait(tid, "shipyard", command={"resume": decision}))


async def test_approving_the_changes_over_the_api_delivers_a_draft_pull_request(
    served: _Served, settings: Settings
) -> None:
    with fake_forge("github", TOKEN) as forge:
        sdk, tid, repo, bare, _ = await served.first_run(forge, push=True)
        request = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
        assert request["kind"] == "changes"
        assert request["payload"]["delivery"]["branch"] == f"shipyard/{tid}"
        assert forge.pulls == [] and "shipyard/" not in git(bare, "branch", "--list")

        final = await _approve(sdk, tid)
    assert final["status"] == "completed", final
    delivery = final["delivery"]
    # the server signs decisions with the caller it authenticated (on loopback: "local")
    assert delivery["status"] == "delivered" and delivery["approved_by"] == "local (as alice)"
    [pull] = forge.pulls
    assert delivery["pull_request_url"] == pull["html_url"] and pull["draft"] is True
    assert final["report"]["delivery"]["pull_request_url"] == pull["html_url"]
    assert git(bare, "rev-parse", f"shipyard/{tid}") == git(repo, "rev-parse", f"shipyard/{tid}")
    engine = make_engine(settings.database_url or "")
    run = RunStore(engine).get_run(tid)
    engine.dispose()
    assert (run.status, run.pull_request_url) == ("completed", pull["html_url"])


@pytest.mark.parametrize("owner", [None, "carol"])
async def test_a_completed_run_is_delivered_later_by_a_goto_deliver_command(
    owner: str | None, served: _Served
) -> None:
    with fake_forge("github", TOKEN) as forge:
        sdk, tid, repo, bare, done = await served.first_run(forge, push=False, owner=owner)
        assert done["status"] == "completed" and done.get("delivery") is None, done
        assert forge.pulls == []

        unasked = await sdk.runs.wait(tid, "shipyard", command={"goto": "deliver"})
        assert unasked["delivery"]["status"] == "refused", unasked
        assert "no person approved" in unasked["delivery"]["reason"]
        assert forge.pulls == [] and "shipyard/" not in git(bare, "branch", "--list")

        # The client names someone else: the server records who it authenticated instead.
        command = {"update": {"delivery_request": {"by": "bob"}}, "goto": "deliver"}
        delivered = await sdk.runs.wait(tid, "shipyard", command=command)
        again = await sdk.runs.wait(tid, "shipyard", command=command)
        request = (await sdk.threads.get_state(tid))["values"]["delivery_request"]
        await sdk.threads.update_state(tid, {"delivery_request": {"by": "mallory"}})
        written = (await sdk.threads.get_state(tid))["values"]["delivery_request"]
    assert delivered["status"] == "completed"
    assert delivered["delivery"]["status"] == "delivered", delivered["delivery"]
    asking = owner or LOCAL_OWNER  # the key's owner, else the loopback owner
    assert delivered["delivery"]["approved_by"] == asking
    assert delivered["report"]["delivery"]["approved_by"] == asking
    assert request["by"] == asking and request["as_given"] == "bob"
    assert written["by"] == asking and written["as_given"] == "mallory"
    [pull] = forge.pulls
    assert f"- delivery: approved by {asking}" in pull["body"]
    assert "bob" not in pull["body"]
    assert again["delivery"]["pull_request_url"] == delivered["delivery"]["pull_request_url"]
    assert len(forge.pulls) == 1 and forge.creates == 1
    assert git(bare, "rev-parse", f"shipyard/{tid}") == git(repo, "rev-parse", f"shipyard/{tid}")
