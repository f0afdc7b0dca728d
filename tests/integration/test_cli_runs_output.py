"""What ``shipyard runs`` prints, byte for byte, from rows the test writes itself: each way a
run's status is shown (stored, or ``interrupted`` when nothing drives it), the interrupted
runs' notes, redaction of secret values, the goal fitted to the width, and the URL forms the
command accepts. The real command runs in a subprocess against the test's own database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine, psycopg_conninfo

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
SECRET = "q7Xv9Lm2Rt5Wz8Kp"
"""The value of a secret-named variable in the command's environment: never shown."""


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _command(home: Path, url: str, columns: str = "100") -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "COLUMNS"))}
    environ.update(
        SHIPYARD_HOME=str(home), DATABASE_URL=url, COLUMNS=columns, SHIPYARD_PIN_API_KEY=SECRET
    )
    return subprocess.run(
        [SHIPYARD, "runs"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _runs(settings: Settings, env_url: str | None = None, columns: str = "100") -> str:
    done = _command(settings.home, env_url or settings.database_url or "", columns)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    return done.stdout


def _dead_pid() -> int:
    """The pid of a process of this host that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def pinned_runs(settings: Settings) -> Settings:
    """Six runs, one per way a status is shown, with fixed times (newest first: 1 … 6)."""
    engine = make_engine(settings.database_url or "")
    try:
        store = RunStore(engine)
        for n in range(1, 7):
            store.create_run(f"goal {n}", "/repo", run_id=_id(n))
        store.update_run(_id(1), status="completed")
        store.update_run(_id(2), status="awaiting_approval")
    finally:
        engine.dispose()
    host = socket.gethostname()
    leases = {
        3: (f"{host}:{os.getpid()}:abc123", "now() + interval '10 minutes'"),  # live: running
        4: (None, "NULL"),  # never leased: interrupted
        5: ("elsewhere:1:x", "now() - interval '1 second'"),  # lease ran out: interrupted
        6: (f"{host}:{_dead_pid()}:abc123", "now() + interval '10 minutes'"),  # dead here
    }
    goals = {
        1: "fix the\n  parser   when the date has a timezone and the locale is unusual",
        2: f"rotate the key {SECRET} and sk-proj-{'A' * 24}",
        3: "short",
    }
    with psycopg.connect(psycopg_conninfo(settings.database_url or "")) as conn:
        for n in range(1, 7):
            owner, expires = leases.get(n, (None, "NULL"))
            conn.execute(
                "UPDATE runs SET created_at = timestamptz '2026-03-01 10:00:00' - %(n)s * "
                "interval '1 minute', updated_at = timestamptz '2026-03-02 11:00:00' + "
                f"%(n)s * interval '1 second', lease_owner = %(owner)s, "
                f"lease_expires_at = {expires}, goal = %(goal)s WHERE id = %(id)s",
                {"n": n, "owner": owner, "goal": goals.get(n, f"goal {n}"), "id": _id(n)},
            )
    return settings


def _note(n: int, fold: str) -> str:
    """An interrupted run's note, folded (a line break after a space) where ``fold`` says."""
    first, second = (" \n", " ") if fold == "after with" else (" ", " \n")
    return f"{_id(n)}: interrupted — resume with{first}shipyard resume{second}{_id(n)}\n"


def test_runs_prints_every_status_its_notes_and_no_secret(pinned_runs: Settings) -> None:
    out = _runs(pinned_runs)
    assert out == (
        "run                                   status             updated              goal\n"
        f"{_id(1)}  completed          2026-03-02 11:00:01  fix the parser when t…\n"
        f"{_id(2)}  awaiting_approval  2026-03-02 11:00:02  rotate the key [REDAC…\n"
        f"{_id(3)}  running            2026-03-02 11:00:03  short\n"
        f"{_id(4)}  interrupted        2026-03-02 11:00:04  goal 4\n"
        f"{_id(5)}  interrupted        2026-03-02 11:00:05  goal 5\n"
        f"{_id(6)}  interrupted        2026-03-02 11:00:06  goal 6\n"
        + "".join(_note(n, "after resume") for n in (4, 5, 6))
    )
    assert SECRET[:4] not in out  # the goal is masked before it is cut, not after


def test_runs_on_a_narrow_terminal_puts_goals_below_and_masks_them(pinned_runs: Settings) -> None:
    # The masked goal is what is fitted to the width (masking after cutting made it longer).
    assert _runs(pinned_runs, columns="70") == (
        "run  status  updated\n"
        "  goal\n"
        f"{_id(1)}  completed  2026-03-02 11:00:01\n"
        "  fix the parser when the date has a timezone and the locale is unusu…\n"
        f"{_id(2)}  awaiting_approval  2026-03-02 \n11:00:02\n"
        "  rotate the key [REDACTED:SHIPYARD_PIN_API_KEY] and [REDACTED:openai…\n"
        f"{_id(3)}  running  2026-03-02 11:00:03\n"
        "  short\n"
        f"{_id(4)}  interrupted  2026-03-02 11:00:04\n"
        "  goal 4\n"
        f"{_id(5)}  interrupted  2026-03-02 11:00:05\n"
        "  goal 5\n"
        f"{_id(6)}  interrupted  2026-03-02 11:00:06\n"
        "  goal 6\n" + "".join(_note(n, "after with") for n in (4, 5, 6))
    )


def test_runs_reads_a_server_workers_run_as_running(pinned_runs: Settings) -> None:
    with psycopg.connect(psycopg_conninfo(pinned_runs.database_url or "")) as conn:
        conn.execute("INSERT INTO threads (thread_id, owner) VALUES (%s, 'w')", (_id(4),))
        conn.execute(
            "INSERT INTO api_runs (run_id, thread_id, owner, assistant_id, status, "
            "multitask_strategy) VALUES ('r-4', %s, 'w', 'shipyard', 'running', 'reject')",
            (_id(4),),
        )
    out = _runs(pinned_runs)
    assert f"{_id(4)}  running  " in out
    assert f"{_id(4)}: interrupted" not in out and f"{_id(5)}: interrupted" in out


def test_runs_accepts_both_url_forms_and_an_empty_database(settings: Settings) -> None:
    url = psycopg_conninfo(settings.database_url or "")
    assert url.startswith("postgresql://")
    assert _runs(settings, env_url=url) == "no runs yet\n"
    assert _runs(settings, env_url=url.replace("postgresql://", "postgres://", 1)) == (
        "no runs yet\n"
    )


def test_runs_refuses_a_url_that_is_not_postgres(tmp_path: Path) -> None:
    done = _command(tmp_path, "mysql://someone:hunter22@127.0.0.1/db")
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr.startswith("error: unsupported database URL scheme 'mysql' in ")
    assert "hunter22" not in done.stderr and "Traceback" not in done.stderr


def test_runs_names_what_libpq_refuses_in_a_url(settings: Settings) -> None:
    url = psycopg_conninfo(settings.database_url or "") + "&sslmode=sometimes"
    done = _command(settings.home, url if "?" in url else url.replace("&", "?", 1))
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.startswith("error: cannot reach Postgres at postgresql://")
    assert 'invalid sslmode value: "sometimes"' in done.stderr
    assert "Fix: start that Postgres server (or correct DATABASE_URL)" in done.stderr


NOT_FOR_A_LISTING = ("sqlalchemy", "pydantic", "alembic", "langgraph", "langchain_core", "openai")


def test_runs_imports_no_orm_no_contracts_and_no_langgraph(pinned_runs: Settings) -> None:
    probe = (
        "import sys; from shipyard.cli import main; code = main(['runs']); "
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({NOT_FOR_A_LISTING!r})))"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    environ.update(SHIPYARD_HOME=str(pinned_runs.home), DATABASE_URL=pinned_runs.database_url or "")
    done = subprocess.run(
        [sys.executable, "-c", probe], env=environ, capture_output=True, text=True, check=True
    )
    assert f"{_id(6)}: interrupted" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
