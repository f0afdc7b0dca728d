"""``shipyard db``: the embedded Postgres is started on demand, reported, and stopped."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from shipyard.cli import main
from shipyard.store import psycopg_conninfo


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (out + err).replace("\n", "")


def test_db_url_starts_the_embedded_server_and_stop_stops_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    code, url = _run(capsys, "db", "url")
    assert code == 0 and str(tmp_path / "pgdata").replace("/", "%2F") in url
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert _run(capsys, "db", "stop") == (0, f"embedded Postgres in {tmp_path / 'pgdata'}: stopped")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(psycopg_conninfo(url), connect_timeout=2)
    code, out = _run(capsys, "db", "stop")
    assert code == 0 and out.endswith("not running")


def test_db_stop_refuses_a_server_it_does_not_own(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql://me:hunter2@127.0.0.1:1/db")
    code, out = _run(capsys, "db", "url")
    assert code == 0 and "hunter2" not in out and "127.0.0.1:1/db" in out
    code, out = _run(capsys, "db", "stop")
    assert code == 2 and "not Shipyard's to stop" in out
