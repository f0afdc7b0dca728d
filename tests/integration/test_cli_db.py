"""``shipyard db``: the embedded Postgres is started on demand, reported, and stopped; its URL
works for its owner and names the password file instead of holding the password."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from shipyard.cli import main
from shipyard.store import psycopg_conninfo
from shipyard.store.embedded_programs import bin_dir


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (out + err).replace("\n", "")


def test_db_url_starts_the_embedded_server_and_stop_stops_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "1000")  # long paths stay on one line
    code, url = _run(capsys, "db", "url")
    assert code == 0 and str(tmp_path / "pgdata").replace("/", "%2F") in url, url
    passfile = tmp_path / "pgdata.pgpass"
    assert f"passfile={str(passfile).replace('/', '%2F')}" in url
    assert passfile.read_text().split(":")[-1].strip() not in url  # the password is not in it
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    # The owner's other tools take the same URL (psql here, with a clean environment).
    psql = subprocess.run(
        [str(bin_dir() / "psql"), url, "-tAc", "SELECT current_database()"],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        check=False,
        timeout=30,
    )
    assert (psql.returncode, psql.stdout.strip()) == (0, "shipyard"), psql.stderr

    assert _run(capsys, "db", "stop") == (0, f"embedded Postgres in {tmp_path / 'pgdata'}: stopped")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(psycopg_conninfo(url), connect_timeout=2)
    code, out = _run(capsys, "db", "stop")
    assert code == 0 and out.endswith("not running")

    # A password file others could read is refused (exit 3) before anything starts.
    passfile.chmod(0o644)
    code, out = _run(capsys, "db", "url")
    assert code == 3 and str(passfile) in out and "chmod 600" in out
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()


def test_db_stop_refuses_a_server_it_does_not_own(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql://me:hunter2@127.0.0.1:1/db")
    code, out = _run(capsys, "db", "url")
    assert code == 0 and "hunter2" not in out and "127.0.0.1:1/db" in out
    code, out = _run(capsys, "db", "stop")
    assert code == 2 and "not Shipyard's to stop" in out
