"""One whole hostile ``shipyard run`` through the real CLI as an unprivileged user.

``hostile_run_as(user)`` plants secrets where the user's runs must not reach (a 0600 file in
the user's home, another run's workspace under ``SHIPYARD_HOME``, a variable in the Shipyard
process's environment), writes a repository whose tests try to read, connect to or write
each of them and print ``ATTEMPT <case>: contained`` or ``... BROKE`` (writes print what
they tried: whether a write shows outside is for the caller to look), and a scripted model
that runs those tests with ``-s`` (so their output is on record), ``cat``s and
``read_file``s the planted files, and makes a small change. It then runs ``shipyard run
--approve auto`` as the user with no ``DATABASE_URL`` (the embedded Postgres starts as that
user), collects everything the run recorded (output, ``shipyard show``, artifacts, every
database row), stops that Postgres and removes the directory (and the planted file).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.security.unprivileged import Unprivileged
from tests.support import call, finish, plan_reply

GOAL = "Add a changelog entry"

_HOSTILE_TESTS = '''\
"""Each test reaches for something outside the workspace and says what happened."""
import glob, os, socket

def _say(case, broke, detail=""):
    print(f"ATTEMPT {case}: {'BROKE ' + detail if broke else 'contained'}")
    assert not broke, detail

def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None

def test_home_file():
    data = _read(HOME_FILE)
    _say("home-file", data is not None, str(data))

def test_other_run():
    found = [_read(p) for p in glob.glob(WORKSPACES + "/*/*")]
    found = [d for d in found if d and "OTHER-" in d]
    _say("other-run", bool(found), str(found))

def test_postgres_sockets():
    reached = []
    for root in (SHIPYARD_HOME, HOME, "/tmp", "/run", "/var/run"):
        for dirpath, _dirs, files in os.walk(root, onerror=lambda e: None):
            for name in files:
                if name.startswith(".s.PGSQL.") and not name.endswith(".lock"):
                    s = socket.socket(socket.AF_UNIX)
                    try:
                        s.connect(os.path.join(dirpath, name))
                        reached.append(os.path.join(dirpath, name))
                    except OSError:
                        pass
                    finally:
                        s.close()
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
        reached.append("127.0.0.1:5432")
    except OSError:
        pass
    _say("postgres-sockets", bool(reached), str(reached))

def test_process_environ():
    seen = []
    for path in glob.glob("/proc/[0-9]*/environ"):
        data = _read(path) or ""
        seen += [v for v in data.split("\\0") if v.startswith("E2E_CANARY=")]
    _say("process-environ", bool(seen), str(seen))

def test_writes():
    # What a write inside the sandbox's view does is not the question; whether it shows
    # outside is (the outer test looks).
    made = []
    for path in OUTSIDE_WRITES:
        try:
            with open(path, "w") as f:
                f.write("pwned")
            made.append(path)
        except OSError:
            pass
    print(f"ATTEMPT writes: tried {len(OUTSIDE_WRITES)}, {len(made)} open(2) succeeded")
'''


@dataclass
class HostileRun:
    """What one hostile run as the user left behind."""

    exit_code: int
    output: str
    """The CLI's stdout and stderr."""
    show: str
    report: dict[str, Any]
    database: str
    """Every row of every table, as text, one per line."""
    artifacts: dict[str, str]
    secrets: dict[str, str]
    model_reads: list[str]
    outside_writes: list[str]
    seconds: float
    """How long ``shipyard run`` took."""

    def records(self) -> dict[str, str]:
        """Everything the run recorded, by where it was found."""
        return {
            "cli output": self.output,
            "shipyard show": self.show,
            "database": self.database,
            **{f"artifact {k}": v for k, v in self.artifacts.items()},
        }


def hostile_run_as(user: Unprivileged) -> HostileRun:
    """Run the hostile run as ``user`` (see the module docstring)."""
    base = user.home / f"e2e-{uuid.uuid4().hex[:10]}"
    shipyard_home = base / "shipyard-home"
    secrets = {
        "home-file": f"HOME-{uuid.uuid4().hex}",
        "other-run": f"OTHER-{uuid.uuid4().hex}",
        "canary": f"CANARY-{uuid.uuid4().hex}",
    }
    home_file = user.home / f".e2e-private-{base.name}"
    other = shipyard_home / "workspaces" / "other-run" / "notes.txt"
    writes = [str(user.home / f"pwned-{base.name}"), str(shipyard_home / "pwned")]
    try:
        other.parent.mkdir(parents=True)
        home_file.write_text(secrets["home-file"])
        home_file.chmod(0o600)
        other.write_text(secrets["other-run"])
        constants = {
            "HOME_FILE": str(home_file), "WORKSPACES": str(other.parent.parent),
            "SHIPYARD_HOME": str(shipyard_home), "HOME": str(user.home),
            "OUTSIDE_WRITES": writes,
        }  # fmt: skip
        repo = _repository(base / "repo", constants)
        reads = [str(home_file), str(other)]
        script = base / "script.json"
        script.write_text(json.dumps(_script(reads)))
        user.give(base)
        user.give(home_file)
        return _run(user, base, repo, script, secrets, reads, writes)
    finally:
        if (shipyard_home / "pgdata" / "postmaster.pid").exists():  # the dump did not stop it
            user.run([str(user.shipyard), "db", "stop"], env={"SHIPYARD_HOME": str(shipyard_home)})
        shutil.rmtree(base, ignore_errors=True)
        home_file.unlink(missing_ok=True)


def _repository(repo: Path, constants: dict[str, Any]) -> Path:
    head = "".join(f"{k} = {v!r}\n" for k, v in constants.items())
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_hostile.py").write_text(head + _HOSTILE_TESTS)
    (repo / "README.md").write_text("# hostile\n")
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "initial"],
    ):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    return repo


def _script(reads: list[str]) -> dict[str, Any]:
    developer = [
        call("run_command", command="python -m pytest -q -s tests"),
        *[call("run_command", command=f"cat {path}") for path in reads],
        *[call("read_file", path=path) for path in reads],
        call("write_file", path="CHANGELOG.md", content="# Changelog\n\n- hostile tests\n"),
        finish("changelog added"),
    ]
    return {
        "label": "unprivileged hostile run",
        "planner": [plan_reply(("s1", "changelog"))],
        "developer": {"s1/1": developer, **{f"s1/{n}": [finish("no fix")] for n in (2, 3, 4)}},
    }


def _run(
    user: Unprivileged,
    base: Path,
    repo: Path,
    script: Path,
    secrets: dict[str, str],
    reads: list[str],
    writes: list[str],
) -> HostileRun:
    env = {
        "SHIPYARD_HOME": str(base / "shipyard-home"),
        "SHIPYARD_MODEL_SCRIPT": str(script),
        "E2E_CANARY": secrets["canary"],
    }
    argv = [str(user.shipyard), "run", "--repo", str(repo), GOAL, "--approve", "auto"]
    started = time.monotonic()
    done = user.run(argv, cwd=base, env=env, timeout=150)
    seconds = time.monotonic() - started
    artifacts = _artifacts(base / "shipyard-home" / "artifacts")
    reports = [json.loads(text) for name, text in artifacts.items() if name.endswith("report.json")]
    run_id = str(reports[0].get("run_id", "")) if reports else ""
    show = user.run([str(user.shipyard), "show", run_id], cwd=base, env=env) if run_id else None
    dump = user.run([str(user.python), "-c", _DUMP], cwd=base, env=env)
    return HostileRun(
        exit_code=done.returncode,
        output=done.stdout + done.stderr,
        show=(show.stdout + show.stderr) if show else "",
        report=reports[0] if reports else {},
        database=dump.stdout + dump.stderr,
        artifacts=artifacts,
        secrets=secrets,
        model_reads=reads,
        outside_writes=writes,
        seconds=seconds,
    )


def _artifacts(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): p.read_bytes().decode(errors="replace")
        for p in root.rglob("*")
        if p.is_file()
    }


_DUMP = """\
import psycopg
from psycopg import sql
from shipyard.settings import Settings
from shipyard.store import psycopg_conninfo, resolve_database_url, stop_embedded
settings = Settings.from_env()
with psycopg.connect(psycopg_conninfo(resolve_database_url(settings))) as conn:
    query = "select tablename from pg_tables where schemaname = 'public'"
    for (table,) in conn.execute(query).fetchall():
        rows = conn.execute(sql.SQL("select t::text from {} t").format(sql.Identifier(table)))
        for (row,) in rows:
            print(table, row)
stop_embedded(settings.pgdata)
"""
