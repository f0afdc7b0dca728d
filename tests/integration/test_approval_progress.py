"""Deciding a changes approval always makes progress, even when the workspace changed while
the run waited: a stale request is replaced by one with the current diff and hash (the person
is told why), a rejection always rejects, and the approvals table holds only decisions that
took effect (refused ones as ``refused`` audit rows). Runner and the ``shipyard`` CLI as a
subprocess, scripted model, real git and Postgres."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import StateGraph
from langgraph.types import Command, interrupt

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.settings import Settings
from shipyard.store import open_checkpointer
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, call, finish, git, plan_reply

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`

SIGN_OFF = {"approvals": {"plan": "never", "changes": "always"}}


def _script() -> dict[str, Any]:
    return {
        "planner": [plan_reply(("s1", "add a"))],
        "developer": {"s1/1": [call("write_file", path="a.txt", content="a\n"), finish()]},
    }


async def _waiting(runner: Runner, repo: Path) -> Stop:
    stop = await runner.start(RunInput(goal="g", repo=str(repo), policy=SIGN_OFF))
    assert stop.status == "awaiting_approval"
    assert stop.request is not None and stop.request.kind == "changes"
    return stop


def _statuses(runner: Runner, run_id: str) -> list[str]:
    return [a.status for a in runner.context.runs.approvals(run_id)]


async def test_approving_after_the_workspace_changed_shows_a_new_request_then_completes(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    scripted = dataclasses.replace(settings, model_script=write_script(_script()))
    async with Runner.open(scripted) as runner:
        first = await _waiting(runner, repo)
        assert first.request is not None
        ws = settings.workspaces / first.run_id
        (ws / "a.txt").write_text("edited by hand\n")

        again = await runner.decide(
            first.run_id, "approve", by="t", expected_hash=first.request.content_hash
        )
        assert again.status == "awaiting_approval" and again.request is not None
        assert again.request.content_hash != first.request.content_hash
        assert "+edited by hand" in again.request.payload["diff"]
        assert "not checked: a.txt" in again.request.summary
        assert again.request.payload["unchecked"] == ["a.txt"]
        assert again.request.risk == "high"
        assert again.notice is not None
        assert "the workspace changed since the request was shown: a.txt" in again.notice
        assert "here is the new request" in again.notice
        assert runner.context.runs.get_run(first.run_id).status == "awaiting_approval"
        # the refused approval is an audit row; the new request supersedes the old one
        assert _statuses(runner, first.run_id) == ["superseded", "refused", "pending"]
        pending = runner.context.runs.pending_approval(first.run_id)
        assert pending is not None and pending.content_hash == again.request.content_hash

        done = await runner.decide(
            first.run_id, "approve", by="t", expected_hash=again.request.content_hash
        )
        statuses = _statuses(runner, first.run_id)
    assert done.status == "completed" and done.notice is None
    assert statuses == ["superseded", "refused", "decided"]
    assert done.report is not None
    assert [(a.decision, a.content_hash) for a in done.report.approvals if not a.automatic] == [
        ("approve", again.request.content_hash)
    ]
    # What was approved is what the branch holds, and the checks ran on it first.
    branch = f"shipyard/{first.run_id}"
    assert git(repo, "show", f"{branch}:a.txt") == "edited by hand"
    assert git(repo, "rev-parse", branch) == done.report.head_commit
    assert git(settings.workspaces / first.run_id, "status", "--porcelain") == ""
    assert [s.status for s in done.report.steps] == ["passed"]
    assert all(e.passed for e in done.report.evidence)
    assert "+edited by hand" in Path(done.report.patch_path or "").read_text()


async def test_reject_rejects_whatever_changed_and_records_one_decision(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    scripted = dataclasses.replace(settings, model_script=write_script(_script()))
    async with Runner.open(scripted) as runner:
        first = await _waiting(runner, repo)
        assert first.request is not None
        (settings.workspaces / first.run_id / "a.txt").write_text("edited by hand\n")
        stop = await runner.decide(
            first.run_id, "reject", by="t", comment="no", expected_hash="sha256:whatever"
        )
        statuses = _statuses(runner, first.run_id)
        run = runner.context.runs.get_run(first.run_id)
    assert stop.status == "rejected" and run.status == "rejected"
    assert stop.report is not None and stop.report.status == "rejected"
    assert statuses == ["decided"]


async def test_an_unchanged_workspace_is_approved_at_once_with_one_row(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    scripted = dataclasses.replace(settings, model_script=write_script(_script()))
    async with Runner.open(scripted) as runner:
        first = await _waiting(runner, repo)
        assert first.request is not None
        stop = await runner.decide(
            first.run_id, "approve", by="t", expected_hash=first.request.content_hash
        )
        statuses = _statuses(runner, first.run_id)
    assert stop.status == "completed" and stop.notice is None
    assert statuses == ["decided"]
    assert git(repo, "show", f"shipyard/{first.run_id}:a.txt") == "a"


async def test_a_decision_that_took_effect_before_a_pause_is_recorded_decided(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    down = {
        "planner": [plan_reply(("s1", "x"))],
        "developer": {"s1/1": [{"fail": "connection refused (scripted outage)"}]},
    }
    async with Runner.open(dataclasses.replace(settings, model_script=write_script(down))) as r:
        stop = await r.start(RunInput(goal="g", repo=str(repo)))
        assert stop.request is not None and stop.request.kind == "plan"
        paused = await r.decide(stop.run_id, "approve", by="t")
        statuses = _statuses(r, stop.run_id)
    assert paused.status == "paused"
    assert statuses == ["decided"]


def _cli(settings: Settings, script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "OPENAI_"))}
    env.update(
        SHIPYARD_HOME=str(settings.home),
        DATABASE_URL=settings.database_url or "",
        SHIPYARD_MODEL_SCRIPT=str(script),
        COLUMNS="200",
    )
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        stdin=subprocess.DEVNULL,
    )


async def test_cli_approve_with_the_shown_hash_after_an_edit_says_why_and_moves_on(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = write_script(_script())
    async with Runner.open(dataclasses.replace(settings, model_script=script)) as runner:
        first = await _waiting(runner, repo)
    assert first.request is not None
    (settings.workspaces / first.run_id / "a.txt").write_text("edited by hand\n")
    shown = first.request.content_hash

    refused = _cli(settings, script, "approve", first.run_id, "--hash", shown)
    assert refused.returncode == 0, refused.stderr
    out = " ".join(refused.stdout.split())
    assert "Not applied: the workspace changed since the request was shown: a.txt" in out
    assert "here is the new request" in out
    assert "Traceback" not in refused.stderr
    async with Runner.open(dataclasses.replace(settings, model_script=script)) as runner:
        new = await runner.pending(first.run_id)
        assert new is not None and new.content_hash != shown
        assert new.content_hash in out  # the new request is shown with its hash

        # the old hash again: refused with a clear error, nothing applied
        stale = _cli(settings, script, "approve", first.run_id, "--hash", shown)
        assert stale.returncode != 0 and new.content_hash in stale.stderr
        assert "Traceback" not in stale.stderr

        rejected = _cli(settings, script, "approve", first.run_id, "--reject", "--hash", shown)
        assert rejected.returncode == 1, rejected.stderr
        assert "rejected" in rejected.stdout
        statuses = _statuses(runner, first.run_id)
        run = runner.context.runs.get_run(first.run_id)
    assert run.status == "rejected"
    # rows by id: the old request, its refusal, the new request (rejected), the stale refusal
    assert statuses == ["superseded", "refused", "decided", "refused"]


class _GateState(TypedDict, total=False):
    answer: str


def _gate(state: _GateState) -> _GateState:
    question: dict[str, str] = {"ask": "first"}
    while (value := interrupt(question)) != "yes":
        question = {"ask": "again", "refused": f"{value!r} is not an answer"}
    return {"answer": value}


async def test_a_gate_that_asks_again_is_stored_with_its_new_question(db_url: str) -> None:
    """An interrupt raised after a resume in the same node (its write and the resume's go to
    the saver in one call) is what the thread then waits for — not the first question."""
    builder = StateGraph(_GateState)
    builder.add_node("gate", _gate)
    builder.set_entry_point("gate")
    builder.set_finish_point("gate")
    config: Any = {"configurable": {"thread_id": "t1"}}
    async with open_checkpointer(db_url) as saver:
        graph = builder.compile(checkpointer=saver)
        await graph.ainvoke({}, config)
        (first,) = (await graph.aget_state(config)).interrupts
        await graph.ainvoke(Command(resume={first.id: "no"}), config)
        (again,) = (await graph.aget_state(config)).interrupts
        assert again.id != first.id
        assert again.value == {"ask": "again", "refused": "'no' is not an answer"}
        await graph.ainvoke(Command(resume={again.id: "yes"}), config)
        final = await graph.aget_state(config)
    assert final.values == {"answer": "yes"} and not final.interrupts
