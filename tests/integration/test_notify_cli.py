"""Notifications of CLI runs, which have no sender in the background: the command that
drove the run sends its events before it exits; an endpoint that is down keeps them queued
for ``shipyard notify status`` to show and ``shipyard notify drain`` to send; nothing is
sent twice; without an endpoint the CLI never touches the outbox. Real ``shipyard``
subprocesses, a real HTTP receiver, the test's own database."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from shipyard.notify import emit, load
from shipyard.notify.flush import flush
from shipyard.notify.signing import verify
from shipyard.settings import Settings
from shipyard.store import make_engine, psycopg_conninfo
from tests.integration.conftest import MakeRepo, WriteScript
from tests.receiver import Receiver
from tests.support import PASSING_TEST, SHIPYARD, cli_env, plan_reply, run_shipyard

pytestmark = pytest.mark.slow  # whole CLI runs: left out of `./dev quick`

SECRET = "cli-notify-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def _notifying(url: str) -> dict[str, str]:
    return {"SHIPYARD_NOTIFY_URL": url, "SHIPYARD_NOTIFY_SECRET": SECRET}


def _start_run(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``shipyard run`` that stops at the plan's approval (nobody at the terminal)."""
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = write_script({"planner": [plan_reply(("s1", "add a"))]})
    return run_shipyard(cli_env(settings, script, **extra), "run", "--repo", str(repo), "add a")


def _outbox(settings: Settings) -> list[dict[str, Any]]:
    conninfo = psycopg_conninfo(settings.database_url or "")
    with psycopg.connect(conninfo, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM outbox ORDER BY id").fetchall()


def _run_id(settings: Settings) -> str:
    conninfo = psycopg_conninfo(settings.database_url or "")
    with psycopg.connect(conninfo) as conn:
        [(run_id,)] = conn.execute("SELECT id FROM runs").fetchall()
    return str(run_id)


def _assert_approval_requested(receiver: Receiver, run_id: str) -> None:
    """Exactly one request: the run's signed ``approval.requested`` event."""
    [got] = receiver.requests
    assert got.headers["x-shipyard-event"] == "approval.requested"
    stamp = got.headers["x-shipyard-timestamp"]
    signed = got.headers["x-shipyard-signature"]
    assert verify(SECRET, got.body, stamp, signed, now=time.time())
    event = got.json()
    assert event["event"] == "approval.requested" and event["run_id"] == run_id
    assert event["data"]["kind"] == "plan" and event["data"]["summary"] == "test plan"
    assert event["id"] == got.headers["x-shipyard-delivery"]
    assert event["id"].startswith(f"approval.requested:{run_id}:")


def test_a_cli_run_sends_its_approval_request_before_it_exits(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript, receiver: Receiver
) -> None:
    done = _start_run(settings, make_repo, write_script, **_notifying(receiver.url))
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = _run_id(settings)
    _assert_approval_requested(receiver, run_id)
    [row] = _outbox(settings)
    assert row["status"] == "sent" and row["attempts"] == 1
    assert "notify:" not in done.stderr  # nothing left to report
    env = cli_env(settings, Path("unused"), **_notifying(receiver.url))
    drained = run_shipyard(env, "notify", "drain")
    assert drained.returncode == 0, drained.stdout + drained.stderr
    assert "sent 0; nothing pending" in drained.stdout
    assert len(receiver.requests) == 1  # sent once: the drain found nothing to send


def test_a_down_endpoint_keeps_the_event_until_notify_drain_sends_it(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    down = Receiver()
    port = down.port
    down.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}"
    done = _start_run(settings, make_repo, write_script, **_notifying(url))
    assert done.returncode == 0, done.stdout + done.stderr  # the run's outcome stands
    assert "1 event(s) pending" in done.stderr and "notify drain" in done.stderr
    [row] = _outbox(settings)
    assert row["status"] == "pending" and row["attempts"] == 1
    env = cli_env(settings, Path("unused"), **_notifying(url))
    status = run_shipyard(env, "notify", "status")
    assert status.returncode == 0, status.stderr
    assert f"endpoint env ({url}): 1 pending, 0 failed, 0 sent" in status.stdout
    assert "oldest pending since" in status.stdout and "ConnectError" in status.stdout
    still_down = run_shipyard(env, "notify", "drain", "--wait", "0")
    assert still_down.returncode == 3, still_down.stdout + still_down.stderr
    [line] = still_down.stderr.strip().splitlines()
    assert f"endpoint env ({url}) unreachable" in line and "1 event(s) pending" in line
    up = Receiver(port_wanted=port)
    try:
        drained = run_shipyard(env, "notify", "drain", "--wait", "60")
        assert drained.returncode == 0, drained.stdout + drained.stderr
        assert "sent 1; nothing pending" in drained.stdout
        _assert_approval_requested(up, _run_id(settings))
        again = run_shipyard(env, "notify", "drain")
        assert again.returncode == 0 and "sent 0" in again.stdout
        assert len(up.requests) == 1
    finally:
        up.close()
    [row] = _outbox(settings)
    assert row["status"] == "sent" and row["attempts"] >= 2
    status = run_shipyard(env, "notify", "status")
    assert f"endpoint env ({url}): 0 pending, 0 failed, 1 sent" in status.stdout


@pytest.fixture
def outbox_locked(settings: Settings) -> Iterator[psycopg.Connection[Any]]:
    """The outbox locked against every access (even reads) for the test's duration; yields
    another connection, to watch who waits for the lock."""
    conninfo = psycopg_conninfo(settings.database_url or "")
    holder = psycopg.connect(conninfo)
    watcher = psycopg.connect(conninfo, autocommit=True)
    try:
        holder.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
        yield watcher
    finally:
        watcher.close()
        holder.close()


WAITERS = """SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'outbox'::regclass
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


def _drive_watching(
    watcher: psycopg.Connection[Any], argv: list[str], env: dict[str, str]
) -> tuple[bool, int | None]:
    """Run ``shipyard argv``: whether it came to wait for the outbox's lock (it is killed
    then), and its exit code if it ended on its own."""
    proc = subprocess.Popen(
        [SHIPYARD, *argv], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 170
        while proc.poll() is None and time.monotonic() < deadline:
            [(waiting,)] = watcher.execute(WAITERS).fetchall()
            if waiting:
                return True, None
            time.sleep(0.05)
        return False, proc.poll()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_without_an_endpoint_the_cli_never_touches_the_outbox(
    settings: Settings,
    make_repo: MakeRepo,
    write_script: WriteScript,
    outbox_locked: psycopg.Connection[Any],
) -> None:
    # Any statement on the outbox, even a read, would wait for the lock: pg_locks shows it.
    script = write_script({"planner": [plan_reply(("s1", "add a"))]})
    argv = ["run", "--repo", str(make_repo({"tests/test_ok.py": PASSING_TEST})), "add a"]
    waited, code = _drive_watching(outbox_locked, argv, cli_env(settings, script))
    assert not waited and code == 0
    assert _run_id(settings)
    # The same run with an endpoint does come to the outbox (and is stopped there).
    argv[2] = str(make_repo({"tests/test_ok.py": PASSING_TEST}))
    env = cli_env(settings, script, **_notifying("http://127.0.0.1:9"))
    waited, code = _drive_watching(outbox_locked, argv, env)
    assert waited, f"the run ended ({code}) without waiting for the outbox"


async def test_a_flush_takes_only_the_rows_of_endpoints_configured_here(
    settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    both = tmp_path / "server.toml"
    both.write_text(f'[notify.endpoints.ops]\nurl = "{receiver.url}/ops"\nsecret_env = "OPS"\n')
    here = {"SHIPYARD_HOME": str(tmp_path / "none"), **_notifying(receiver.url)}
    everywhere = load({**here, "SHIPYARD_NOTIFY_CONFIG": str(both), "OPS": "ops-secret"})
    engine = make_engine(settings.database_url or "")
    try:
        emit(engine, "run.failed", {"run_id": "r1"}, key="run.failed:r1:0", config=everywhere)
    finally:
        engine.dispose()
    [left] = await flush(settings.database_url or "", load(here), wait_s=30)
    assert (left.target, left.pending, left.sent) == ("env", 0, 1)
    assert [r.path for r in receiver.requests] == ["/"]
    rows = {r["target"]: r for r in _outbox(settings)}
    assert rows["env"]["status"] == "sent"
    assert rows["ops"]["status"] == "pending" and rows["ops"]["attempts"] == 0


def test_bad_waits_are_refused_and_the_commands_outcome_stands(
    settings: Settings, receiver: Receiver
) -> None:
    env = cli_env(settings, Path("unused"), **_notifying(receiver.url))
    negative = run_shipyard(env, "notify", "drain", "--wait", "-1")
    assert negative.returncode == 2
    assert "--wait -1.0: expected 0 or more seconds" in negative.stderr
    env["SHIPYARD_NOTIFY_CLI_WAIT_S"] = "soon"
    cancelled = run_shipyard(env, "cancel", "no-such-run")
    assert cancelled.returncode == 2, cancelled.stderr  # the command's own error and code
    assert "no-such-run" in cancelled.stderr
    assert "notify: SHIPYARD_NOTIFY_CLI_WAIT_S='soon'" in cancelled.stderr
    assert receiver.requests == []
