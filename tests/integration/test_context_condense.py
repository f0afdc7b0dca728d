"""Context management: a long developer attempt is condensed to the policy's token budget,
each condensation is a journaled effect and an event, and a run killed mid-attempt resumes
with exactly the conversation an uninterrupted run has. The killed run is the real
``shipyard`` CLI in a subprocess; the reference and the resumed run are in-process with the
scripted model, so the test reads what the model received."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage

from shipyard.agent import conversation
from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.llm import Script, ScriptedChatModel
from shipyard.policy.agent import ContextPolicy
from shipyard.settings import Settings
from shipyard.store import Journal, JournalEntry, RunStore, make_engine
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import (
    PASSING_TEST,
    call,
    cli_env,
    finish,
    git,
    shipyard_process,
    wait_while_running,
)

pytestmark = pytest.mark.slow  # whole runs through the graph

MAX_TOKENS = 2_500
POLICY = f"""[approvals]
plan = "never"
[commands]
allow = ["python count.py"]
[agent.context]
max_tokens = {MAX_TOKENS}
keep_turns = 2
"""
BIG = {
    f"big{n}.txt": "".join(f"{n}:{i:03} " + "word " * 19 + "\n" for i in range(60))
    for n in range(4)
}
FILES = {
    "tests/test_ok.py": PASSING_TEST,
    "count.py": "open('counter.txt', 'a').write('x')\n",
    ".shipyard.toml": POLICY,
    **BIG,
}
SLOW_TURN = 4


def _script(write_script: WriteScript) -> Path:
    slow = {"delay_s": 4, **call("write_file", path="note.txt", content="n\n")}
    turns = [
        call("read_file", path="big0.txt"),
        call("read_file", path="big1.txt"),
        call("read_file", path="big2.txt"),
        call("run_command", command="python count.py"),
        slow,
        call("read_file", path="big3.txt"),
        finish(),
    ]
    plan = {
        "summary": "read",
        "risk": "low",
        "steps": [{"id": "s1", "title": "read", "instructions": "read"}],
    }
    return write_script({"planner": [{"json": plan}], "developer": {"s1/1": turns}})


def _seen(model: ScriptedChatModel) -> dict[str, list[tuple[str, str, Any]]]:
    """Script key -> the conversation the model received (type, content, tool calls)."""

    def flat(messages: list[BaseMessage]) -> list[tuple[str, str, Any]]:
        return [(m.type, str(m.content), getattr(m, "tool_calls", None)) for m in messages]

    return {key: flat(messages) for key, messages in model.calls}


def _journal(settings: Settings, run_id: str | None = None) -> list[JournalEntry]:
    engine = make_engine(settings.database_url or "")
    try:
        ids = [run_id] if run_id else [r.thread_id for r in RunStore(engine).list_runs()]
        return [e for thread in ids for e in Journal(engine).entries(thread)]
    finally:
        engine.dispose()


def _events(settings: Settings, run_id: str) -> list[Any]:
    engine = make_engine(settings.database_url or "")
    try:
        return list(RunStore(engine).events(run_id))
    finally:
        engine.dispose()


async def _reference(settings: Settings, repo: Path, script: Path) -> tuple[Any, ScriptedChatModel]:
    developer = ScriptedChatModel(script=Script.load(script), role="developer")
    scripted = dataclasses.replace(settings, model_script=script)
    async with Runner.open(scripted, models={"developer": developer}) as runner:
        stop = await runner.start(RunInput(goal="read the files", repo=str(repo)))
    return stop, developer


async def test_a_long_attempt_is_condensed_within_the_budget_and_journaled(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    stop, developer = await _reference(settings, make_repo(FILES), _script(write_script))
    assert stop.status == "completed"
    seen = _seen(developer)
    rules = ContextPolicy(max_tokens=MAX_TOKENS, keep_turns=2)
    last = developer.calls[-1][1]
    assert conversation.condensation(last, rules) is None  # what was sent fits the budget
    condensed = [c for _, c, _ in seen["s1/1/6"] if c.startswith("[condensed")]
    assert len(condensed) >= 2
    # The latest command output (the evidence) and the step request are kept whole.
    assert any(c.startswith("exit code 0") for _, c, _ in seen["s1/1/6"])
    assert seen["s1/1/6"][:2] == seen["s1/1/0"][:2]
    entries = [e for e in _journal(settings, stop.run_id) if e.kind == "context"]
    assert entries and all(e.status == "done" and e.outcome for e in entries)
    events = [e for e in _events(settings, stop.run_id) if e.kind == "context.condensed"]
    assert len(events) == len(entries)
    assert all(e.payload["tokens_after"] < e.payload["tokens_before"] for e in events)


async def test_switched_off_the_conversation_is_never_condensed(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({**FILES, ".shipyard.toml": POLICY + "enabled = false\n"})
    stop, developer = await _reference(settings, repo, _script(write_script))
    assert stop.status == "completed"
    assert not any(c.startswith("[condensed") for _, c, _ in _seen(developer)["s1/1/6"])
    assert not [e for e in _journal(settings, stop.run_id) if e.kind == "context"]


def test_a_killed_attempt_resumes_with_the_same_condensed_conversation(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript, tmp_path: Path
) -> None:
    script = _script(write_script)
    reference_settings = dataclasses.replace(settings, home=tmp_path / "reference-home")
    first, reference = asyncio.run(_reference(reference_settings, make_repo(FILES), script))
    expected = _seen(reference)

    def killed_run() -> list[JournalEntry]:
        return [e for e in _journal(settings) if e.thread_id != first.run_id]

    repo = make_repo(FILES)

    def mid_slow_turn() -> bool:
        done = {(e.call_id, e.status) for e in killed_run()}
        return ("condense.4", "done") in done and ("tool.3.0", "done") in done

    env = cli_env(settings, script)
    with shipyard_process(env, "run", "--repo", str(repo), "read the files") as proc:
        wait_while_running("the slow model turn after a condensation", mid_slow_turn, proc)
    run_id = killed_run()[0].thread_id
    assert f"model.{SLOW_TURN}" not in {e.call_id for e in killed_run()}

    developer = ScriptedChatModel(script=Script.load(script), role="developer")

    async def resume() -> Any:
        scripted = dataclasses.replace(settings, model_script=script)
        async with Runner.open(scripted, models={"developer": developer}) as runner:
            return await runner.resume(run_id)

    stop = asyncio.run(resume())
    assert stop.status == "completed"
    resumed = _seen(developer)
    assert sorted(resumed) == [f"s1/1/{n}" for n in range(SLOW_TURN, 7)]
    for key, messages in resumed.items():
        assert messages == expected[key], key
    assert any(c.startswith("[condensed") for _, c, _ in resumed[f"s1/1/{SLOW_TURN}"])
    keys = [(e.step_key, e.call_id) for e in _journal(settings, run_id)]
    assert len(keys) == len(set(keys))  # no condensation (or anything) journaled twice
    assert git(repo, "show", f"shipyard/{run_id}:counter.txt") == "x"
