"""The lifecycle of CLI runs across processes: cancelling (``shipyard cancel``), a run whose
process died (shown as interrupted, taken over by ``shipyard resume``), and a database lost
under a running run (a bounded wait, exit code 3, then ``resume`` completes it). Each test
drives the real ``shipyard`` command in subprocesses against the test's own database."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from shipyard.store import Run, RunStore, ensure_embedded, make_engine, migrate, stop_embedded
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

POLICY = '[approvals]\nplan = "never"\n'
SLOW_TEST = (
    "import pathlib, time\n\n"
    "def test_slow():\n"
    "    pathlib.Path('validate-started').write_text('1')\n"
    "    time.sleep(120)\n"
)
"""A repository test that hangs: while it runs, the run is busy in ``validate``."""


def _read_until(proc: subprocess.Popen[str], text: str) -> str:
    """``proc``'s output up to the first line containing ``text`` (it must write unbuffered);
    fails if the output ends first."""
    assert proc.stdout is not None
    seen = ""
    for line in proc.stdout:
        seen += line
        if text in line:
            return seen
    pytest.fail(f"output ended before {text!r}: {seen}")


def _runs(settings: Settings) -> list[Run]:
    engine = make_engine(settings.database_url or "")
    try:
        return RunStore(engine).list_runs()
    finally:
        engine.dispose()


def _run_id(settings: Settings) -> str:
    runs = _runs(settings)
    assert len(runs) == 1, runs
    return runs[0].id


def _commit_policy(repo: Path, policy: str = POLICY) -> None:
    (repo / ".shipyard.toml").write_text(policy)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "policy")


async def _state(settings: Settings, run_id: str) -> dict[str, Any]:
    async with Runner.open(settings) as runner:
        snapshot = await runner.graph.aget_state({"configurable": {"thread_id": run_id}})
        return dict(snapshot.values) | {"__next__": snapshot.next}


def _one_step(write_script: WriteScript, *turns: dict[str, Any]) -> Path:
    first = call("write_file", path="a.txt", content="a\n")
    return write_script(
        {
            "planner": [plan_reply(("s1", "add a"))],
            "developer": {"s1/1": [first, *turns, finish()]},
        }
    )


def _pids_with(marker: str) -> list[int]:
    """Processes whose command line or working directory mentions ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
            if marker in cmdline or marker in cwd:
                found.append(int(proc.name))
    return found


def _assert_cancelled(settings: Settings, run_id: str, state: dict[str, Any]) -> None:
    run = _runs(settings)[0]
    assert run.status == "cancelled" and not run.interrupted
    assert state["status"] == "cancelled" and state["__next__"] == ()
    assert state["report"].status == "cancelled"
    assert "cancelled by cli" in state["report"].summary
    report = json.loads(Path(run.report_path or "").read_text())
    assert report["status"] == "cancelled"


async def test_cancel_stops_a_running_run_driven_by_another_process(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_slow.py": SLOW_TEST})
    _commit_policy(repo)
    env = cli_env(settings, _one_step(write_script))
    with shipyard_process(env, "run", "--repo", str(repo), "add a") as proc:

        def validating() -> bool:
            return any((p / "validate-started").exists() for p in settings.workspaces.glob("*"))

        wait_while_running("validation to start", validating, proc)
        run_id = _run_id(settings)
        workspace = settings.workspaces / run_id
        assert _pids_with(str(workspace)), "the hanging check should be running"
        started = time.monotonic()
        cancelled = run_shipyard(env, "cancel", run_id[:8])
        assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
        assert f"run {run_id}: cancelled" in cancelled.stdout
        proc.wait(timeout=60)
        assert time.monotonic() - started < 30  # the 120 s check was killed, not waited for
        out = proc.stdout.read() if proc.stdout else ""
        assert proc.returncode == 1, out
        assert "cancelled" in out
    assert not _pids_with(str(workspace))
    _assert_cancelled(settings, run_id, await _state(settings, run_id))
    # The workspace and the branch are kept: the step's file is still there, uncommitted.
    assert (workspace / "a.txt").read_text() == "a\n"
    assert git(repo, "rev-parse", f"shipyard/{run_id}") == git(repo, "rev-parse", "main")
    again = run_shipyard(env, "cancel", run_id)
    assert again.returncode == 2 and "already ended: cancelled" in again.stderr


async def test_cancel_a_run_waiting_at_its_plan_approval(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    env = cli_env(settings, _one_step(write_script))
    started = run_shipyard(env, "run", "--repo", str(repo), "add a")
    assert started.returncode == 0, started.stdout + started.stderr
    run_id = _run_id(settings)
    assert _runs(settings)[0].status == "awaiting_approval"

    cancelled = run_shipyard(env, "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    _assert_cancelled(settings, run_id, await _state(settings, run_id))
    assert (settings.workspaces / run_id).is_dir()
    approve = run_shipyard(env, "approve", run_id)
    assert approve.returncode == 2 and "not waiting for an approval (cancelled)" in approve.stderr
    listed = run_shipyard(env, "runs")
    assert f"{run_id}  cancelled" in listed.stdout


def test_killed_run_shows_interrupted_and_resume_takes_it_over(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    _commit_policy(repo)
    slow = {"content": "thinking", "delay_s": 3, **call("write_file", path="b.txt", content="b")}
    env = cli_env(settings, _one_step(write_script, slow), SHIPYARD_LEASE_S="1")
    with shipyard_process(env, "run", "--repo", str(repo), "add a and b") as proc:
        wait_while_running("the run to start", lambda: bool(_runs(settings)), proc)
        run_id = _run_id(settings)
        wait_while_running("execute", (settings.workspaces / run_id / "a.txt").exists, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    wait_while_running("the lease to run out", lambda: _runs(settings)[0].interrupted, None)

    listed = run_shipyard(env, "runs")
    assert listed.returncode == 0, listed.stderr
    assert f"{run_id}  interrupted" in listed.stdout
    assert f"interrupted — resume with shipyard resume {run_id}" in listed.stdout
    shown = run_shipyard(env, "show", run_id)
    assert f"interrupted — resume with shipyard resume {run_id}" in shown.stdout
    assert _runs(settings)[0].status == "running"  # stored: the row is not rewritten

    resumed = run_shipyard(env, "resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "completed" in resumed.stdout
    run = _runs(settings)[0]
    assert run.status == "completed" and not run.interrupted
    assert git(repo, "show", f"shipyard/{run_id}:b.txt") == "b"


def test_resume_refuses_while_another_live_process_drives_the_run(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    _commit_policy(repo)
    slow = {"content": "thinking", "delay_s": 15, **call("write_file", path="b.txt", content="b")}
    env = cli_env(settings, _one_step(write_script, slow))
    with shipyard_process(env, "run", "--repo", str(repo), "add a and b") as proc:
        wait_while_running("the run to start", lambda: bool(_runs(settings)), proc)
        run_id = _run_id(settings)
        wait_while_running("execute", (settings.workspaces / run_id / "a.txt").exists, proc)
        listed = run_shipyard(env, "runs")
        assert f"{run_id}  running" in listed.stdout and "interrupted" not in listed.stdout
        refused = run_shipyard(env, "resume", run_id)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "is being driven by" in refused.stderr and "Traceback" not in refused.stderr
        assert proc.wait(timeout=120) == 0
    run = _runs(settings)[0]
    assert run.status == "completed"
    assert git(repo, "rev-list", "--count", f"main..shipyard/{run_id}") == "1"


@pytest.fixture
def own_postgres() -> Iterator[Path]:
    """An embedded Postgres of this test's own, so it can be stopped without harming others."""
    base = Path(tempfile.mkdtemp(prefix="shipyard-lifecycle-pg-"))
    pgdata = base / "pgdata"
    ensure_embedded(pgdata)
    try:
        yield pgdata
    finally:
        stop_embedded(pgdata)
        shutil.rmtree(base, ignore_errors=True)


def test_database_lost_mid_run_exits_3_then_resume_commits_the_step_once(
    own_postgres: Path, tmp_path: Path, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    settings = Settings(home=tmp_path / "home", database_url=ensure_embedded(own_postgres))
    migrate(settings.database_url or "")
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    _commit_policy(repo)
    slow = {"content": "thinking", "delay_s": 3, **call("write_file", path="b.txt", content="b")}
    env = cli_env(settings, _one_step(write_script, slow), SHIPYARD_DB_WAIT_S="4")
    with shipyard_process(env, "run", "--repo", str(repo), "add a and b") as proc:
        wait_while_running("the run to start", lambda: bool(_runs(settings)), proc)
        run_id = _run_id(settings)
        wait_while_running("execute", (settings.workspaces / run_id / "a.txt").exists, proc)
        stop_embedded(own_postgres)
        assert proc.wait(timeout=120) == 3
        out = proc.stdout.read() if proc.stdout else ""
        err = proc.stderr.read() if proc.stderr else ""
    assert "waiting up to 4 s" in out, out
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0] and f"shipyard resume {run_id}" in lines[0]

    ensure_embedded(own_postgres)
    listed = run_shipyard(env, "runs")
    assert f"interrupted — resume with shipyard resume {run_id}" in listed.stdout
    resumed = run_shipyard(env, "resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "completed" in resumed.stdout
    assert _runs(settings)[0].status == "completed"
    assert git(repo, "rev-list", "--count", f"main..shipyard/{run_id}") == "1"
    assert git(repo, "show", f"shipyard/{run_id}:b.txt") == "b"


def test_database_back_within_the_wait_lets_the_run_finish_in_the_same_process(
    own_postgres: Path, tmp_path: Path, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    settings = Settings(home=tmp_path / "home", database_url=ensure_embedded(own_postgres))
    migrate(settings.database_url or "")
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    _commit_policy(repo)
    slow = {"content": "thinking", "delay_s": 3, **call("write_file", path="b.txt", content="b")}
    env = cli_env(
        settings, _one_step(write_script, slow), SHIPYARD_DB_WAIT_S="90", PYTHONUNBUFFERED="1"
    )
    with shipyard_process(env, "run", "--repo", str(repo), "add a and b") as proc:
        wait_while_running("the run to start", lambda: bool(_runs(settings)), proc)
        run_id = _run_id(settings)
        wait_while_running("execute", (settings.workspaces / run_id / "a.txt").exists, proc)
        stop_embedded(own_postgres)
        noticed = _read_until(proc, "waiting up to 90 s")
        ensure_embedded(own_postgres)
        code = proc.wait(timeout=120)
        out = noticed + (proc.stdout.read() if proc.stdout else "")
        err = proc.stderr.read() if proc.stderr else ""
    assert code == 0, out + err
    assert "waiting up to 90 s" in out and "the database is back" in out, out
    assert "completed" in out and err == "", err
    assert _runs(settings)[0].status == "completed"
    assert git(repo, "rev-list", "--count", f"main..shipyard/{run_id}") == "1"
    assert git(repo, "show", f"shipyard/{run_id}:b.txt") == "b"


def test_cancel_a_run_whose_process_died_before_its_first_checkpoint(
    settings: Settings, write_script: WriteScript
) -> None:
    engine = make_engine(settings.database_url or "")
    try:
        RunStore(engine).create_run("g", "/repo", run_id="abcdef123456")  # running, no holder
    finally:
        engine.dispose()
    env = cli_env(settings, _one_step(write_script))
    assert "interrupted — resume" in run_shipyard(env, "runs").stdout
    cancelled = run_shipyard(env, "cancel", "abcdef123456")
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    run = _runs(settings)[0]
    assert run.status == "cancelled" and not run.interrupted and not run.cancel_requested
    assert run.error == "cancelled by cli before its first checkpoint"
