"""The outbox (``shipyard.notify.outbox``): the migrated table matches its declaration, an
event is written once per key and per endpoint that wants it, and ending a run with a
``webhook`` writes its delivery in the same transaction."""

from __future__ import annotations

import json

import psycopg
import pytest

from shipyard.notify import emit, load
from shipyard.notify.announce import approval_requested, run_ended
from shipyard.notify.outbox import OutboxRow
from shipyard.store import make_engine, psycopg_conninfo
from tests.support import schema_diff

ENV = {
    "SHIPYARD_NOTIFY_URL": "http://127.0.0.1:9/hook",
    "SHIPYARD_NOTIFY_SECRET": "s3cret",
    "SHIPYARD_HOME": "/nonexistent-shipyard-home",
}


def rows(db_url: str) -> list[tuple[str, str, str, str, str]]:
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        return conn.execute(
            "SELECT kind, key, target, event, status FROM outbox ORDER BY id"
        ).fetchall()


def test_migrated_outbox_matches_its_declaration(db_url: str) -> None:
    diff, tables = schema_diff(db_url, {OutboxRow.__tablename__})
    assert diff == []
    assert "outbox" in tables


def test_an_event_is_written_once_per_key(db_url: str) -> None:
    engine = make_engine(db_url)
    config = load(ENV)
    try:
        data = {"run_id": "r1", "url": "https://forge.example/pr/1"}
        assert emit(engine, "delivery.opened", data, key="k1", config=config) == 1
        assert emit(engine, "delivery.opened", data, key="k1", config=config) == 0
        assert emit(engine, "delivery.opened", data, key="k2", config=config) == 1
    finally:
        engine.dispose()
    assert rows(db_url) == [
        ("notify", "k1", "env", "delivery.opened", "pending"),
        ("notify", "k2", "env", "delivery.opened", "pending"),
    ]


def test_emit_joins_the_callers_transaction(db_url: str) -> None:
    engine = make_engine(db_url)
    config = load(ENV)
    try:
        with pytest.raises(RuntimeError), engine.begin() as conn:
            emit(conn, "run.failed", {"run_id": "r1"}, key="gone", config=config)
            raise RuntimeError("the caller's transaction rolls back")
        with engine.begin() as conn:
            emit(conn, "run.failed", {"run_id": "r1"}, key="kept", config=config)
    finally:
        engine.dispose()
    assert [r[1] for r in rows(db_url)] == ["kept"]


def test_no_endpoint_no_row_and_endpoints_filter_events(db_url: str, tmp_path) -> None:
    engine = make_engine(db_url)
    file = tmp_path / "server.toml"
    file.write_text(
        '[notify.endpoints.ops]\nurl = "https://hooks.example/ops"\nformat = "slack"\n'
        'events = ["run.failed"]\n'
    )
    only_ops = load({"SHIPYARD_NOTIFY_CONFIG": str(file)})
    try:
        assert emit(engine, "run.failed", {"run_id": "r"}, key="a", config=load({})) == 0
        assert emit(engine, "run.completed", {"run_id": "r"}, key="b", config=only_ops) == 0
        assert emit(engine, "run.failed", {"run_id": "r"}, key="c", config=only_ops) == 1
    finally:
        engine.dispose()
    assert rows(db_url) == [("notify", "c", "ops", "run.failed", "pending")]


def test_announcements_name_their_event_and_key(db_url: str, monkeypatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    engine = make_engine(db_url)
    try:
        assert run_ended(engine, "r1", "cancelled") == 0  # not announced
        assert run_ended(engine, "r1", "needs_human_review", goal="g", attempt="a1") == 1
        assert run_ended(engine, "r1", "needs_human_review", goal="g", attempt="a1") == 0
        assert (
            approval_requested(
                engine, "r1", kind="plan", summary="s", interrupt_id="i1", content_hash="h"
            )
            == 1
        )
    finally:
        engine.dispose()
    assert [(r[1], r[3]) for r in rows(db_url)] == [
        ("run.needs_human_review:r1:a1", "run.needs_human_review"),
        ("approval.requested:r1:i1", "approval.requested"),
    ]


def test_a_run_ending_with_a_webhook_writes_its_delivery_in_that_transaction(db_url: str) -> None:
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        for run_id, hook in (("with", "http://hooks.example/a"), ("without", None)):
            conn.execute(
                "INSERT INTO threads (thread_id, owner, values) VALUES (%s, 'local', %s)",
                [run_id, '{"x": 1}'],
            )
            kwargs = json.dumps({"webhook": hook} if hook else {})
            conn.execute(
                "INSERT INTO api_runs (run_id, thread_id, owner, assistant_id, kwargs, metadata,"
                " multitask_strategy, status) VALUES (%s, %s, 'local', 'a', %s, '{}',"
                " 'enqueue', 'running')",
                [run_id, run_id, kwargs],
            )
        conn.commit()
        conn.execute("UPDATE api_runs SET status = 'success' WHERE run_id = 'with'")
        conn.rollback()  # not ended after all: no delivery either
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        conn.execute("UPDATE api_runs SET status = 'success'")
        conn.execute("UPDATE api_runs SET status = 'success'")  # no change: no second row
        conn.commit()
        got = conn.execute(
            "SELECT kind, key, url, event, payload->'run'->>'status', payload->'values' FROM outbox"
        ).fetchall()
    assert got == [
        ("webhook", "with", "http://hooks.example/a", "run.success", "success", {"x": 1})
    ]
