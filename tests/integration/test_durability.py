"""Durability (docs/architecture.md §4) in whole processes: a run survives process exits and
SIGKILL, and time travel rewinds the files. Each test drives the real ``shipyard`` CLI in
subprocesses against the test's own Postgres database."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.llm import Script, ScriptedChatModel
from shipyard.settings import Settings
from shipyard.store import Journal, JournalEntry, RunStore, make_engine
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import (
    PASSING_TEST,
    call,
    cli_env,
    finish,
    git,
    plan_reply,
    run_shipyard,
    shipyard_process,
    wait_while_running,
)

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`

COUNT = "python count.py"
COUNT_PY = "open('counter.txt', 'a').write('x')\n"
POLICY = '[approvals]\nplan = "never"\n[commands]\nallow = ["python count.py"]\n'


def _journal(settings: Settings) -> list[JournalEntry]:
    engine = make_engine(settings.database_url or "")
    try:
        runs = RunStore(engine).list_runs()
        return [e for run in runs for e in Journal(engine).entries(run.thread_id)]
    finally:
        engine.dispose()


def _only_run_id(settings: Settings) -> str | None:
    engine = make_engine(settings.database_url or "")
    try:
        runs = RunStore(engine).list_runs()
    finally:
        engine.dispose()
    return runs[0].id if runs else None


def _commit_policy(repo: Path, policy: str) -> None:
    (repo / ".shipyard.toml").write_text(policy)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "policy")


def test_run_stopped_at_plan_approval_is_approved_from_a_new_process(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = write_script(
        {
            "planner": [plan_reply(("s1", "add a"))],
            "developer": {"s1/1": [call("write_file", path="a.txt", content="a\n"), finish()]},
        }
    )
    env = cli_env(settings, script)
    first = run_shipyard(env, "run", "--repo", str(repo), "add a file")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "waiting for approval" in first.stdout
    match = re.search(r"shipyard approve (\w+)", first.stdout)
    assert match is not None
    run_id = match.group(1)

    runs = run_shipyard(env, "runs")
    assert run_id in runs.stdout and "awaiting_approval" in runs.stdout
    second = run_shipyard(env, "approve", run_id)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "completed" in second.stdout
    assert git(repo, "show", f"shipyard/{run_id}:a.txt") == "a"
    shown = run_shipyard(env, "show", run_id)
    assert "plan: decided approve by cli" in shown.stdout


def test_sigkill_mid_execute_then_resume_repeats_no_effect(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST, "count.py": COUNT_PY})
    _commit_policy(repo, POLICY)
    slow_turn = {
        "content": "thinking",
        "delay_s": 3,
        **call("write_file", path="b.txt", content="b\n"),
    }
    script = write_script(
        {
            "planner": [plan_reply(("s1", "count"))],
            "developer": {"s1/1": [call("run_command", command=COUNT), slow_turn, finish()]},
        }
    )
    env = cli_env(settings, script)

    def in_second_call() -> bool:
        # The command's outcome is written while the second model call (3 s) is under way.
        return any(e.call_id == "tool.0.0" and e.status == "done" for e in _journal(settings))

    with shipyard_process(env, "run", "--repo", str(repo), "count once") as proc:
        wait_while_running("the second model call", in_second_call, proc)
    run_id = _only_run_id(settings)
    assert run_id is not None
    # A model call is recorded when it returns (nothing to reconcile if it is cut short).
    assert "model.1" not in {e.call_id for e in _journal(settings)}

    resumed = run_shipyard(env, "resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "completed" in resumed.stdout
    branch = f"shipyard/{run_id}"
    assert git(repo, "show", f"{branch}:counter.txt") == "x"  # the command ran exactly once
    assert git(repo, "show", f"{branch}:b.txt") == "b"
    entries = _journal(settings)
    keys = [(e.step_key, e.call_id) for e in entries]
    assert len(keys) == len(set(keys))
    by_call = {e.call_id: e.status for e in entries if e.step_key.endswith("execute/s1/1")}
    assert by_call["tool.0.0"] == "done"
    assert by_call["model.0"] == "done"  # replayed, not asked again
    assert by_call["model.1"] == "done"  # asked again: its first ask died with the process
    _assert_workspace_matches_commit(settings, run_id)


def test_sigkill_mid_validate_then_resume_commits_once(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    slow_test = (
        "import pathlib, time\n\n"
        "def test_slow():\n"
        "    pathlib.Path('validate-started').write_text('1')\n"
        "    time.sleep(3)\n"
    )
    repo = make_repo({"tests/test_slow.py": slow_test})
    _commit_policy(repo, POLICY)
    script = write_script(
        {
            "planner": [plan_reply(("s1", "add a"))],
            "developer": {"s1/1": [call("write_file", path="a.txt", content="a\n"), finish()]},
        }
    )
    env = cli_env(settings, script)

    def started() -> bool:
        return any((p / "validate-started").exists() for p in settings.workspaces.glob("*"))

    with shipyard_process(env, "run", "--repo", str(repo), "add a") as proc:
        wait_while_running("validation to start", started, proc)
    run_id = _only_run_id(settings)
    assert run_id is not None

    resumed = run_shipyard(env, "resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "completed" in resumed.stdout
    assert git(repo, "rev-list", "--count", f"main..shipyard/{run_id}") == "1"
    assert not (settings.workspaces / run_id / "validate-started").exists()
    _assert_workspace_matches_commit(settings, run_id)


def _assert_workspace_matches_commit(settings: Settings, run_id: str) -> None:
    ws = settings.workspaces / run_id
    assert git(ws, "status", "--porcelain") == ""
    assert git(ws, "rev-parse", "HEAD") == git(ws, "rev-parse", f"shipyard/{run_id}")


async def test_fork_from_older_checkpoint_rewinds_the_files(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    first = {
        "planner": [plan_reply(("s1", "a"), ("s2", "b"))],
        "developer": {
            "s1/1": [call("write_file", path="a.txt", content="a\n"), finish()],
            "s2/1": [call("write_file", path="b.txt", content="b\n"), finish()],
        },
    }
    path = write_script(first)
    scripted = dataclasses.replace(settings, model_script=path)
    run_input = RunInput(goal="g", repo=str(repo), policy={"approvals": {"plan": "never"}})
    async with Runner.open(scripted) as runner:
        stop = await runner.start(run_input)
        assert stop.status == "completed"
        history = await runner.history(stop.run_id)
    ws = settings.workspaces / stop.run_id
    assert (ws / "b.txt").exists()
    after_s1 = next(
        s for s in history if s.next == ("execute",) and s.values.get("step_index") == 1
    )
    old_head = git(ws, "rev-parse", "HEAD")

    second = {**first, "developer": {**first["developer"]}}
    second["developer"]["s2/1"] = [call("write_file", path="c.txt", content="c\n"), finish()]
    developer = ScriptedChatModel(script=Script.load(write_script(second)), role="developer")
    async with Runner.open(scripted, models={"developer": developer}) as runner:
        checkpoint = after_s1.config["configurable"]["checkpoint_id"]
        forked = await runner.fork(stop.run_id, checkpoint)
    assert forked.status == "completed"
    assert [key for key, _ in developer.calls] == ["s2/1/0", "s2/1/1"]
    assert not (ws / "b.txt").exists() and (ws / "c.txt").read_text() == "c\n"
    branch = f"shipyard/{stop.run_id}"
    files = git(repo, "ls-tree", "--name-only", branch).split()
    assert "a.txt" in files and "c.txt" in files and "b.txt" not in files
    # the new step-2 commit sits on step 1's commit, not on the abandoned step 2
    assert git(repo, "rev-list", "--count", f"main..{branch}") == "2"
    abandoned = subprocess.run(
        ["git", "merge-base", "--is-ancestor", old_head, branch], cwd=repo, check=False
    )
    assert abandoned.returncode == 1
