"""Best of N by evidence: three candidate attempts in worktrees of their own, two at a time;
the code keeps the candidate whose checks pass with the smallest diff, and the run's branch
holds exactly its change. Scripted model, real git, real checks in the sandbox."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.llm import Script, ScriptedChatModel
from shipyard.settings import Settings
from shipyard.store import Journal, RunStore, make_engine
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import (
    call,
    cli_env,
    finish,
    git,
    plan_reply,
    shipyard_process,
    wait_while_running,
)

pytestmark = pytest.mark.slow  # whole runs through the graph

REPO = {
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\ntestpaths = ["tests"]\n',
    "mod.py": "def f():\n    return 1\n",
    "tests/test_mod.py": "from mod import f\n\n\ndef test_f():\n    assert f() == 2\n",
}
WRONG = "def f():\n    return 3\n"
VERBOSE = "def f():\n    # two, as the test asks\n    value = 1\n    value += 1\n    return value\n"
MINIMAL = "def f():\n    return 2\n"


def _candidate(content: str) -> list[dict[str, Any]]:
    return [call("write_file", path="mod.py", content=content), finish()]


async def _run(
    settings: Settings, repo: Path, script: Path, n: int
) -> tuple[Any, ScriptedChatModel]:
    developer = ScriptedChatModel(script=Script.load(script), role="developer")
    policy = {"approvals": {"plan": "never"}, "agent": {"best_of": {"n": n, "concurrency": 2}}}
    scripted = dataclasses.replace(settings, model_script=script)
    async with Runner.open(scripted, models={"developer": developer}) as runner:
        stop = await runner.start(RunInput(goal="make f return 2", repo=str(repo), policy=policy))
    return stop, developer


def _records(settings: Settings, run_id: str) -> tuple[list[Any], list[Any]]:
    engine = make_engine(settings.database_url or "")
    try:
        return Journal(engine).entries(run_id), list(RunStore(engine).events(run_id))
    finally:
        engine.dispose()


async def test_best_of_three_keeps_the_passing_candidate_with_the_smallest_diff(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(REPO)
    script = write_script(
        {
            "planner": [plan_reply(("s1", "fix f"))],
            "developer": {
                "s1/1": _candidate(WRONG),  # candidate 1: the test fails
                "s1/1/c2": _candidate(VERBOSE),  # passes, with a larger diff
                "s1/1/c3": _candidate(MINIMAL),  # passes with the smallest diff
            },
        }
    )
    stop, developer = await _run(settings, repo, script, n=3)
    assert stop.status == "completed"
    assert stop.report.steps[0].attempts == 1  # no refine: a candidate passed
    assert git(repo, "show", f"shipyard/{stop.run_id}:mod.py") == MINIMAL.rstrip()
    assert sorted(key for key, _ in developer.calls) == [
        "s1/1/0", "s1/1/1", "s1/1/c2/0", "s1/1/c2/1", "s1/1/c3/0", "s1/1/c3/1",
    ]  # fmt: skip
    entries, events = _records(settings, stop.run_id)
    choice = next(e for e in entries if e.kind == "choice")
    assert choice.outcome is not None and choice.outcome["chosen"] == 3
    by_number = {c["number"]: c for c in choice.outcome["candidates"]}
    assert by_number[1]["failed_checks"] > 0
    assert by_number[2]["failed_checks"] == 0 == by_number[3]["failed_checks"]
    assert by_number[3]["diff_lines"] < by_number[2]["diff_lines"]
    assert [e.payload["chosen"] for e in events if e.kind == "best_of.chosen"] == [3]
    assert stop.report.usage.model_calls == 1 + 6  # the planner and every candidate's turns
    # The candidates' worktrees are gone; only the run's own remains registered.
    listed = git(repo, "worktree", "list", "--porcelain")
    assert ".candidates" not in listed


async def test_when_no_candidate_passes_the_step_is_refined_as_usual(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(REPO)
    script = write_script(
        {
            "planner": [plan_reply(("s1", "fix f"))],
            "developer": {
                "s1/1": _candidate(WRONG),
                "s1/1/c2": _candidate("def f():\n    return 4\n"),
                "s1/2": _candidate(MINIMAL),
                "s1/2/c2": _candidate(VERBOSE),
            },
        }
    )
    stop, _ = await _run(settings, repo, script, n=2)
    assert stop.status == "completed"
    assert stop.report.steps[0].attempts == 2
    assert git(repo, "show", f"shipyard/{stop.run_id}:mod.py") == MINIMAL.rstrip()


def test_a_run_killed_mid_candidates_resumes_and_keeps_the_same_candidate(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(REPO)
    (repo / ".shipyard.toml").write_text('[approvals]\nplan = "never"\n[agent.best_of]\nn = 2\n')
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "policy")
    slow = {"delay_s": 4, **call("write_file", path="mod.py", content=VERBOSE)}
    script = write_script(
        {
            "planner": [plan_reply(("s1", "fix f"))],
            "developer": {"s1/1": _candidate(MINIMAL), "s1/1/c2": [slow, finish()]},
        }
    )

    def candidate_one_done() -> bool:
        engine = make_engine(settings.database_url or "")
        try:
            runs = RunStore(engine).list_runs()
            entries = [e for r in runs for e in Journal(engine).entries(r.thread_id)]
        finally:
            engine.dispose()
        done = {(e.step_key.rsplit("/", 1)[-1], e.call_id) for e in entries if e.status == "done"}
        return ("1", "tool.1.0") in done  # candidate 1 finished; candidate 2 is mid-turn

    env = cli_env(settings, script)
    with shipyard_process(env, "run", "--repo", str(repo), "make f return 2") as proc:
        wait_while_running("candidate 1 to finish while 2 thinks", candidate_one_done, proc)
    engine = make_engine(settings.database_url or "")
    try:
        run_id = RunStore(engine).list_runs()[0].id
    finally:
        engine.dispose()

    developer = ScriptedChatModel(script=Script.load(script), role="developer")

    async def resume() -> Any:
        scripted = dataclasses.replace(settings, model_script=script)
        async with Runner.open(scripted, models={"developer": developer}) as runner:
            return await runner.resume(run_id)

    stop = asyncio.run(resume())
    assert stop.status == "completed"
    # Candidate 1 is replayed from the journal; only candidate 2's cut-off turn is asked again.
    assert sorted(key for key, _ in developer.calls) == ["s1/1/c2/0", "s1/1/c2/1"]
    assert git(repo, "show", f"shipyard/{run_id}:mod.py") == MINIMAL.rstrip()
    entries, _ = _records(settings, run_id)
    keys = [(e.step_key, e.call_id) for e in entries]
    assert len(keys) == len(set(keys))
    assert [e.outcome["chosen"] for e in entries if e.kind == "choice" and e.outcome] == [1]
    assert ".candidates" not in git(repo, "worktree", "list", "--porcelain")
