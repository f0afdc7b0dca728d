"""Failures already present at the base commit are not counted (``tools/preexisting.py``).

Whole runs through ``Runner`` with the scripted model on a real git repository whose base
commit has a failing test (``test_env``) and a ruff violation (F841); the checks are the
detected pytest and ruff, run for real in the sandbox, and at the base commit in a scratch
checkout. ``AUTO`` is what ``shipyard run --approve auto`` sends.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

from shipyard.contracts import Evidence, RunInput
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo, WriteScript
from tests.integration.conftest import make_repo as _make_repo
from tests.integration.conftest import write_script as _write_script
from tests.support import call, finish, git, plan_reply

AUTO: dict[str, Any] = {
    "approvals": {"plan": "never"},
    "budgets": {"attempts_per_step": 1},
    "checks": {"baseline_failures": "ignore"},  # the default is "fail"
}

CALC = "def mul(a, b):\n    return a + b\n\n\ndef spare():\n    x = 1\n"
FIXED = "# mul multiplies\n\n" + CALC.replace("a + b", "a * b")
TESTS = (
    "from calc import mul\n\n\ndef test_mul():\n    assert mul(1, 1) >= 1\n\n\n"
    "def test_env():\n    assert False, 'needs the network'\n"
)
NEW_FAILING = TESTS + "\n\ndef test_new():\n    assert mul(2, 3) == 7\n"
BASE = {"pyproject.toml": "[tool.ruff]\n", "calc.py": CALC, "tests/test_calc.py": TESTS}
NOT_COUNTED = "already present at the base commit (not counted)"

make_repo = pytest.fixture(_make_repo.__wrapped__, name="make_repo")  # type: ignore[attr-defined]
write_script = pytest.fixture(_write_script.__wrapped__, name="write_script")  # type: ignore[attr-defined]


async def _run(
    settings: Settings,
    write_script: WriteScript,
    repo: Path,
    writes: list[tuple[str, str]],
    policy: dict[str, Any] | None = None,
) -> tuple[Stop, dict[str, Evidence]]:
    """One run whose single step writes ``writes`` (path, content); its stop and the last
    verdict's evidence by check name."""
    steps = [call("write_file", path=p, content=c) for p, c in writes]
    script = {"planner": [plan_reply(("s1", "fix mul"))], "developer": {"s1/1": [*steps, finish()]}}
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        goal = RunInput(goal="fix mul", repo=str(repo), policy={**AUTO, **(policy or {})})
        stop = await runner.start(goal)
        snapshot = await runner.graph.aget_state({"configurable": {"thread_id": stop.run_id}})
    verdict = snapshot.values.get("verdict")
    return stop, {e.check: e for e in (verdict.evidence if verdict is not None else [])}


async def test_pre_existing_failures_are_stated_not_counted(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(BASE)
    stop, checks = await _run(settings, write_script, repo, [("calc.py", FIXED)])
    assert stop.status == "completed", [e.summary for e in checks.values()]
    pytest_ev, ruff_ev = checks["pytest"], checks["ruff"]
    assert pytest_ev.passed and pytest_ev.preexisting == 1, pytest_ev.summary
    assert NOT_COUNTED in pytest_ev.summary
    # The violation moved two lines down: still the same one.
    assert ruff_ev.passed and ruff_ev.preexisting == 1, ruff_ev.summary
    assert all(e.identities is None for e in checks.values())  # not kept in the state
    assert stop.report is not None
    assert any(NOT_COUNTED in e.summary for e in stop.report.evidence)
    assert git(repo, "rev-list", "--count", f"shipyard/{stop.run_id}") == "2"


async def test_a_new_failing_test_fails_naming_only_it(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(BASE)
    writes = [("calc.py", FIXED), ("tests/test_calc.py", NEW_FAILING)]
    stop, checks = await _run(settings, write_script, repo, writes)
    assert stop.status == "needs_human_review"
    failing = [e for e in checks.values() if not e.passed]
    assert [e.check for e in failing] == ["pytest[targeted]"], [e.summary for e in failing]
    ev = failing[0]
    assert [f.id for f in ev.failures] == ["tests/test_calc.py::test_new"]
    assert ev.failure_count == 1 and ev.preexisting == 1
    assert "1 new failure; 1 failure " + NOT_COUNTED in ev.summary


async def test_a_new_copy_of_an_existing_ruff_error_fails(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(BASE)
    copy = FIXED + "\n\ndef spare_too():\n    x = 1\n"
    stop, checks = await _run(settings, write_script, repo, [("calc.py", copy)])
    assert stop.status == "needs_human_review"
    ruff_ev = checks["ruff"]
    assert not ruff_ev.passed and ruff_ev.failure_count == 1 and ruff_ev.preexisting == 1
    assert [(f.id, f.path) for f in ruff_ev.failures] == [("F841", "calc.py")]
    assert checks["pytest"].passed


async def test_policy_fail_counts_every_failure(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(BASE)
    policy = {"checks": {"baseline_failures": "fail"}}
    stop, checks = await _run(settings, write_script, repo, [("calc.py", FIXED)], policy)
    assert stop.status == "needs_human_review"
    ev = checks["pytest[targeted]"]
    assert not ev.passed and ev.preexisting == 0 and NOT_COUNTED not in ev.summary
    assert [f.id for f in ev.failures] == ["tests/test_calc.py::test_env"]


async def test_an_exit_code_check_without_identities_fails_as_before(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({**BASE, "check.py": "raise SystemExit(1)\n"})
    run = [{"name": "script", "command": [sys.executable, "check.py"]}]
    stop, checks = await _run(
        settings, write_script, repo, [("calc.py", FIXED)], {"checks": {"run": run}}
    )
    assert stop.status == "needs_human_review"
    ev = checks["script"]
    assert not ev.passed and ev.exit_code == 1 and ev.preexisting == 0
    assert NOT_COUNTED not in ev.summary
