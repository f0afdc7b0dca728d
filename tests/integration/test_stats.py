"""What the runs add up to (``store/stats.py``), for every run the CLI drives, and the
``shipyard stats`` command that prints it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipyard.cli.demo import GOAL, copy_example, example_dir
from shipyard.cli.stats import parse_since
from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, plan_reply

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`


async def _two_runs(settings: Settings, tmp_path: Path, make_repo: MakeRepo, write_script) -> str:
    """The demo through both gates (one refine), and a run left waiting at its plan."""
    repo = copy_example(tmp_path / "invoices")
    demo = dataclasses.replace(settings, model_script=example_dir() / "invoices.script.json")
    async with Runner.open(demo) as runner:
        stop = await runner.start(RunInput(goal=GOAL, repo=str(repo)))
        stop = await runner.decide(stop.run_id, "approve", by="tester")
        stop = await runner.decide(stop.run_id, "approve", by="tester")
        assert stop.status == "completed"
    other = make_repo({"tests/test_ok.py": PASSING_TEST})
    planner = dataclasses.replace(
        settings, model_script=write_script({"planner": [plan_reply(("s1", "x"))]})
    )
    async with Runner.open(planner) as runner:
        waiting = await runner.start(RunInput(goal="tidy", repo=str(other)))
        assert waiting.status == "awaiting_approval"
    return stop.run_id


async def test_stats_count_statuses_approvals_retries_and_usage(
    settings: Settings, tmp_path: Path, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    await _two_runs(settings, tmp_path, make_repo, write_script)
    async with Runner.open(settings) as runner:
        stats = runner.context.runs.stats()
        future = runner.context.runs.stats(datetime.now(UTC) + timedelta(hours=1))
    assert stats.by_status == {"completed": 1, "awaiting_approval": 1}
    assert stats.ended == 1 and stats.success_rate == 1.0
    assert stats.mean_completion_s is not None and stats.mean_completion_s > 0
    assert stats.approvals_decided == 2 and stats.approvals_waiting == 1
    assert stats.mean_approval_wait_s is not None and stats.mean_approval_wait_s > 0
    assert stats.retries == 1  # the demo's first attempt fails validation once
    assert stats.model_calls == 8 + 1 and stats.tool_calls == 6
    assert future.total == 0 and future.success_rate is None and future.retries == 0


async def test_shipyard_stats_prints_the_same_for_a_person(
    settings: Settings, tmp_path: Path, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    await _two_runs(settings, tmp_path, make_repo, write_script)
    env = {**os.environ, "DATABASE_URL": settings.database_url or "", "COLUMNS": "100"}
    env["SHIPYARD_HOME"] = str(settings.home)
    shipyard = str(Path(sys.executable).with_name("shipyard"))
    done = _stats(shipyard, env)
    assert done.returncode == 0, done.stderr
    lines = _rows(done.stdout)
    assert "runs completed 1" in lines and "runs awaiting_approval 1" in lines
    assert "success rate 100% of 1 ended" in lines
    assert "retries (refines) 1" in lines and "approvals waiting 1" in lines
    recent = _stats(shipyard, env, "--since", "1h")
    assert recent.returncode == 0 and "runs in all 2" in _rows(recent.stdout)
    bad = _stats(shipyard, env, "--since", "yesterday")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: --since 'yesterday': give an age such as 30m, 12h, 7d or 2w, or an ISO date"
    ]


def _stats(shipyard: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shipyard, "stats", *args], env=env, capture_output=True, text=True, check=False
    )


def _rows(table: str) -> set[str]:
    return {" ".join(line.replace("│", " ").split()) for line in table.splitlines()}


def test_since_takes_ages_and_dates() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
