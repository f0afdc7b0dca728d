"""No notification is lost when the sending process dies: a ``shipyard worker`` process
killed with SIGKILL while its POST is in flight leaves the event in the outbox; the next
process sends it (and one emitted while none ran). The receiver, dropping repeats by the
idempotency key, sees each event exactly once."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from shipyard.notify import emit, load
from shipyard.settings import Settings
from shipyard.store import make_engine, psycopg_conninfo
from tests.e2e.runs_support import ROOT
from tests.receiver import Receiver

SECRET = "kill-test-secret"


def notify_env(settings: Settings, receiver: Receiver) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "DATABASE_URL": settings.database_url,
        "SHIPYARD_HOME": str(settings.home),
        "SHIPYARD_NOTIFY_URL": receiver.url + "/events",
        "SHIPYARD_NOTIFY_SECRET": SECRET,
        "SHIPYARD_NOTIFY_TIMEOUT": "10",
    }


def spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "shipyard.cli", "worker", "--workers", "0"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )


def rows(settings: Settings) -> dict[str, dict]:
    assert settings.database_url is not None
    with psycopg.connect(psycopg_conninfo(settings.database_url), row_factory=dict_row) as conn:
        found = conn.execute("SELECT key, status, attempts, last_error FROM outbox").fetchall()
    return {row["key"]: row for row in found}


def wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_an_event_in_flight_when_the_sender_is_killed_arrives_after_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    receiver = Receiver(hold_first=True)  # the first POST is never answered
    env = notify_env(settings, receiver)
    config = load({**env, "SHIPYARD_HOME": "/nonexistent-shipyard-home"})
    engine = make_engine(env["DATABASE_URL"])
    first = spawn_worker(env, tmp_path / "worker-a.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        data = {"run_id": "run-k", "status": "completed", "goal": "g"}
        emit(engine, "run.completed", data, key="run.completed:run-k:1", config=config)
        wait_until(receiver.got.is_set, "the first sender's POST")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        in_flight = rows(settings)["run.completed:run-k:1"]
        # Killed mid-send: no outcome was recorded, the row waits for its lease to run out.
        assert (in_flight["status"], in_flight["attempts"]) == ("pending", 1)
        assert in_flight["last_error"] is None
        emit(engine, "run.failed", {"run_id": "run-j"}, key="run.failed:run-j:1", config=config)

        second = spawn_worker(env, tmp_path / "worker-b.log")
        wait_until(
            lambda: {r["status"] for r in rows(settings).values()} == {"sent"},
            f"both events sent: {rows(settings)}",
        )
    finally:
        engine.dispose()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        receiver.close()

    assert len(receiver.requests) == 3  # the cut-off attempt, its repeat, the other event
    seen: dict[str, int] = {}
    for request in receiver.requests:
        stamp = request.headers["x-shipyard-timestamp"]
        mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + request.body, hashlib.sha256)
        assert request.headers["x-shipyard-signature"] == "sha256=" + mac.hexdigest()
        key = request.json()["id"]
        seen[key] = seen.get(key, 0) + 1
    assert seen == {"run.completed:run-k:1": 2, "run.failed:run-j:1": 1}
    assert rows(settings)["run.completed:run-k:1"]["attempts"] == 2
