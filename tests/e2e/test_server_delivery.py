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

from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine
from tests.e2e.runs_support import make_repo, note_script
from tests.integration.forges import bare_repo, fake_forge
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


async def _approve(sdk: Any, tid: str) -> dict[str, Any]:
    request = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
    decision = {"decision": "approve", "by": "alice", "content_hash": request["content_hash"]}
    return dict(await sdk.runs.wait(tid, "shipyard", command={"resume": decision}))


async def test_approving_the_changes_over_the_api_delivers_a_draft_pull_request(
    start_server: Callable[..., Any],
    make_client: Callable[..., Any],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with fake_forge("github", TOKEN) as forge:
        repo, bare = _repo(tmp_path, _policy(forge.api_url, push=True))
        script = note_script(tmp_path)
        running = start_server(None, dataclasses.replace(settings, model_script=script))
        sdk = make_client(running.url)
        tid = (await sdk.threads.create())["thread_id"]
        await sdk.runs.wait(tid, "shipyard", input={"goal": "add a note", "repo": str(repo)})
        request = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
        assert request["kind"] == "changes"
        assert request["payload"]["delivery"]["branch"] == f"shipyard/{tid}"
        assert forge.pulls == [] and "shipyard/" not in git(bare, "branch", "--list")

        final = await _approve(sdk, tid)
    assert final["status"] == "completed", final
    delivery = final["delivery"]
    assert delivery["status"] == "delivered" and delivery["approved_by"] == "alice"
    [pull] = forge.pulls
    assert delivery["pull_request_url"] == pull["html_url"] and pull["draft"] is True
    assert final["report"]["delivery"]["pull_request_url"] == pull["html_url"]
    assert git(bare, "rev-parse", f"shipyard/{tid}") == git(repo, "rev-parse", f"shipyard/{tid}")
    engine = make_engine(settings.database_url or "")
    run = RunStore(engine).get_run(tid)
    engine.dispose()
    assert (run.status, run.pull_request_url) == ("completed", pull["html_url"])


async def test_a_completed_run_is_delivered_later_by_a_goto_deliver_command(
    start_server: Callable[..., Any],
    make_client: Callable[..., Any],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with fake_forge("github", TOKEN) as forge:
        repo, bare = _repo(tmp_path, _policy(forge.api_url, push=False))
        script = note_script(tmp_path)
        running = start_server(None, dataclasses.replace(settings, model_script=script))
        sdk = make_client(running.url)
        tid = (await sdk.threads.create())["thread_id"]
        done = await sdk.runs.wait(tid, "shipyard", input={"goal": "add a note", "repo": str(repo)})
        assert done["status"] == "completed" and done.get("delivery") is None, done
        assert forge.pulls == []

        unasked = await sdk.runs.wait(tid, "shipyard", command={"goto": "deliver"})
        assert unasked["delivery"]["status"] == "refused", unasked
        assert "no person approved" in unasked["delivery"]["reason"]
        assert forge.pulls == [] and "shipyard/" not in git(bare, "branch", "--list")

        command = {"update": {"delivery_request": {"by": "bob"}}, "goto": "deliver"}
        delivered = await sdk.runs.wait(tid, "shipyard", command=command)
        again = await sdk.runs.wait(tid, "shipyard", command=command)
    assert delivered["status"] == "completed"
    assert delivered["delivery"]["status"] == "delivered", delivered["delivery"]
    assert delivered["delivery"]["approved_by"] == "bob"
    assert again["delivery"]["pull_request_url"] == delivered["delivery"]["pull_request_url"]
    assert len(forge.pulls) == 1 and forge.creates == 1
    assert git(bare, "rev-parse", f"shipyard/{tid}") == git(repo, "rev-parse", f"shipyard/{tid}")
