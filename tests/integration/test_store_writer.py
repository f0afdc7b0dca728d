"""Rows written behind (``store.writer``) against a real Postgres and a real LangGraph run:
they commit in the step's own checkpoint transaction, a process reads its own writes, rows
that cannot be written stay queued, and rows Postgres refuses never block later steps."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any, TypedDict

import psycopg
import pytest
import sqlalchemy
from langgraph.graph import StateGraph
from psycopg import sql

from shipyard.store import Journal, RunStore, make_engine, open_checkpointer, psycopg_conninfo
from shipyard.store import writer as writer_module
from shipyard.store.writer import WriteBehindError, writer_for


class _State(TypedDict):
    run_id: str
    key: str
    count: int


@pytest.fixture
def engine(db_url: str) -> Iterator[sqlalchemy.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def no_linger(monkeypatch: pytest.MonkeyPatch) -> None:
    """The background sender never fires: only checkpoints and reads carry the rows."""
    monkeypatch.setattr(writer_module, "LINGER_S", 3600.0)


def _graph(engine: sqlalchemy.Engine) -> StateGraph[_State]:
    journal, runs = Journal(engine), RunStore(engine)

    def step(state: _State) -> dict[str, Any]:
        run_id = state["run_id"]
        _, fresh = journal.claim(run_id, state["key"], "call", "tool", {})
        assert fresh
        journal.complete_behind(run_id, state["key"], "call", {"out": "a\x00b"})
        runs.append_event_behind(run_id, "node", {"count": state["count"]})
        return {"count": state["count"] + 1}

    builder: StateGraph[_State] = StateGraph(_State)
    builder.add_node("step", step)
    builder.set_entry_point("step")
    builder.set_finish_point("step")
    return builder


def _xmins(db_url: str, run_id: str) -> dict[str, set[str]]:
    """Transaction ids that wrote the run's rows, read on a connection of our own."""
    queries = {
        "journal": "SELECT xmin::text FROM journal WHERE thread_id = %s AND status = 'done'",
        "events": "SELECT xmin::text FROM run_events WHERE run_id = %s",
        # The checkpoint after the node's step.
        "step": """
            SELECT xmin::text FROM checkpoints
            WHERE thread_id = %(t)s AND (metadata->>'step')::int = 1
        """,
    }
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        return {
            name: {
                row[0]
                for row in conn.execute(query, {"t": run_id} if "%(t)s" in query else [run_id])
            }
            for name, query in queries.items()
        }


@pytest.mark.usefixtures("no_linger")
def test_rows_written_behind_commit_in_the_steps_checkpoint_transaction(
    db_url: str, engine: sqlalchemy.Engine
) -> None:
    run_id = RunStore(engine).create_run("goal", "/repo").id

    async def run() -> None:
        async with open_checkpointer(db_url) as saver:
            graph = _graph(engine).compile(checkpointer=saver)
            await graph.ainvoke(
                {"run_id": run_id, "key": "0/step", "count": 0},
                {"configurable": {"thread_id": run_id}},
                durability="sync",
            )

    asyncio.run(run())
    xmins = _xmins(db_url, run_id)
    # The node's journal outcome and event went in the transaction of the checkpoint after
    # the node's step: that checkpoint never exists without them.
    assert len(xmins["journal"]) == 1, xmins
    assert xmins["journal"] == xmins["events"] == xmins["step"], xmins
    [entry] = Journal(engine).entries(run_id)
    assert entry.status == "done"
    assert entry.outcome == {"out": "a\ufffdb"}  # NUL replaced


@pytest.mark.usefixtures("no_linger")
def test_a_process_reads_its_own_rows_written_behind(engine: sqlalchemy.Engine) -> None:
    runs = RunStore(engine)
    run_id = runs.create_run("goal", "/repo").id
    runs.append_event_behind(run_id, "node", {"n": 1})
    runs.append_event_behind(run_id, "node", {"n": 2})
    assert [e.payload for e in runs.events(run_id)] == [{"n": 1}, {"n": 2}]
    assert not writer_for(engine).pending


def test_rows_left_queued_are_sent_by_the_background_sender(
    db_url: str, engine: sqlalchemy.Engine
) -> None:
    runs = RunStore(engine)
    run_id = runs.create_run("goal", "/repo").id
    runs.append_event_behind(run_id, "node", {"n": 1})
    deadline = time.monotonic() + 10
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        while time.monotonic() < deadline:
            query = "SELECT count(*) FROM run_events WHERE run_id = %s"
            if conn.execute(query, [run_id]).fetchone() == (1,):
                return
            time.sleep(0.02)
    pytest.fail("the queued event never reached Postgres")


def _allow_connections(db_url: str, allow: bool) -> None:
    name = sqlalchemy.make_url(db_url).database
    admin = psycopg_conninfo(db_url).replace(f"/{name}", "/postgres", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(str(name)), sql.SQL("true" if allow else "false")
            )
        )
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            )


@pytest.mark.usefixtures("no_linger")
def test_rows_that_cannot_be_written_stay_queued_until_the_database_is_back(
    db_url: str, engine: sqlalchemy.Engine
) -> None:
    runs = RunStore(engine)
    run_id = runs.create_run("goal", "/repo").id
    writer = writer_for(engine)
    writer.now("SELECT 1", {})  # an idle connection that the outage will break
    runs.append_event_behind(run_id, "node", {"n": 1})
    _allow_connections(db_url, False)
    try:
        with pytest.raises(WriteBehindError, match="not written yet"):
            writer.send()
        assert writer.pending  # nothing lost
    finally:
        _allow_connections(db_url, True)
    writer.send()
    assert not writer.pending
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        rows = conn.execute("SELECT payload FROM run_events WHERE run_id = %s", [run_id])
        assert [row[0] for row in rows] == [{"n": 1}]


@pytest.mark.usefixtures("no_linger")
def test_a_row_postgres_refuses_is_dropped_and_never_blocks_checkpoints(
    db_url: str, engine: sqlalchemy.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    runs = RunStore(engine)
    run_id = runs.create_run("goal", "/repo").id
    writer = writer_for(engine)

    async def run(thread: str) -> dict[str, Any]:
        async with open_checkpointer(db_url) as saver:
            graph = _graph(engine).compile(checkpointer=saver)
            config = {"configurable": {"thread_id": thread}}
            state = {"run_id": run_id, "key": thread, "count": 0}
            result: dict[str, Any] = await graph.ainvoke(state, config, durability="sync")
            return result

    writer.behind("INSERT INTO no_such_table (x) VALUES (%(x)s)", {"x": 1})
    # The input checkpoint's transaction carries the queued row: Postgres refuses it, so the
    # row is dropped (logged, not queued again) and the checkpoint is sent again without it.
    assert asyncio.run(run(uuid.uuid4().hex))["count"] == 1
    assert "refused a journal/event row" in caplog.text
    assert not writer.pending
    assert len(runs.events(run_id)) == 1  # the step's own row, carried by its checkpoint
    assert asyncio.run(run(uuid.uuid4().hex))["count"] == 1
    assert len(runs.events(run_id)) == 2
