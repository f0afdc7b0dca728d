"""Stored stream events and their SSE encoding, against a real Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig

from shipyard.probe_graphs import build_chain
from shipyard.server.runs.events import HEARTBEAT, EventBatch, EventLog, Follow, follow, sse_frame
from shipyard.server.runs.queue import NewRun, Pool, QueuedRun, RunQueue
from shipyard.server.stores.listener import Listener
from shipyard.store import open_checkpointer, psycopg_conninfo
from tests.support import eventually


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[Pool]:
    async with open_checkpointer(db_url) as saver:
        yield saver.conn  # type: ignore[misc]


@pytest.fixture
async def listener(db_url: str) -> AsyncIterator[Listener]:
    made = Listener(psycopg_conninfo(db_url))
    await made.start()
    yield made
    await made.stop()


async def running_run(pool: Pool) -> tuple[RunQueue, QueuedRun]:
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO threads (thread_id, owner) VALUES ('T', 'o')")
    queue = RunQueue(pool)
    await queue.enqueue(NewRun("T", "o", "a", {"graph_id": "g"}, {}))
    run = await queue.claim("w")
    assert run is not None
    return queue, run


def test_sse_frames_match_the_reference_wire_format() -> None:
    assert sse_frame("values", {"a": 1}) == b'event: values\r\ndata: {"a":1}\r\n\r\n'
    assert sse_frame("updates|sub:1", [1], "7") == (
        b"event: updates|sub:1\r\ndata: [1]\r\nid: 7\r\n\r\n"
    )
    assert HEARTBEAT == b": heartbeat\r\n\r\n"


async def test_events_are_stored_in_order_and_duplicates_refused(pool: Pool) -> None:
    _, run = await running_run(pool)
    log = EventLog(pool)
    assert await log.next_seq(run.run_id) == 1
    nxt = await log.append(run.run_id, 1, [("values", {"x": 1}), ("updates", {"n": {"x": 1}})])
    assert nxt == 3 and await log.next_seq(run.run_id) == 3
    with pytest.raises(psycopg.errors.UniqueViolation):  # a zombie writer cannot interleave
        await log.append(run.run_id, 2, [("values", {})])
    assert [(e.seq, e.event, e.data) for e in await log.after(run.run_id, 1)] == [
        (2, "updates", {"n": {"x": 1}})
    ]


async def test_follow_streams_a_live_run_until_it_ends(pool: Pool, listener: Listener) -> None:
    queue, run = await running_run(pool)
    log = EventLog(pool)
    spec = Follow(run.run_id, resumable=True, modes=["values"], heartbeat_s=0.2, poll_s=0.1)
    chunks: list[bytes] = []

    async def consume() -> None:
        async for chunk in follow(log, listener, spec):
            chunks.append(chunk)

    task = asyncio.create_task(consume())
    await eventually(lambda: HEARTBEAT in chunks, what="a heartbeat while nothing happens")
    seq = await log.append(run.run_id, 1, [("values", {"v": 1}), ("updates", {"skip": 1})])
    await log.append(run.run_id, seq, [("error", {"error": "E", "message": "m"})])
    await queue.finish(run.run_id, "w", "error")
    await asyncio.wait_for(task, 10)

    assert chunks[0] == sse_frame("metadata", {"run_id": run.run_id, "attempt": 1}, "0")
    assert HEARTBEAT in chunks
    events = [c for c in chunks[1:] if c != HEARTBEAT]
    assert events == [
        sse_frame("values", {"v": 1}, "1"),
        sse_frame("error", {"error": "E", "message": "m"}, "3"),
    ]


async def test_follow_replays_after_an_event_id_and_ends_for_an_ended_run(
    pool: Pool, listener: Listener
) -> None:
    queue, run = await running_run(pool)
    log = EventLog(pool)
    await log.append(run.run_id, 1, [("values", {"i": i}) for i in range(5)])
    await queue.finish(run.run_id, "w", "success")
    spec = Follow(run.run_id, after_seq=3, resumable=False)
    chunks = [c async for c in follow(log, listener, spec)]
    assert chunks[1:] == [sse_frame("values", {"i": 3}), sse_frame("values", {"i": 4})]


async def test_event_batches_commit_with_the_checkpoint_writes(db_url: str) -> None:
    async with open_checkpointer(db_url) as saver:
        pool: Pool = saver.conn  # type: ignore[assignment]
        _, run = await running_run(pool)
        log = EventLog(pool)
        graph = build_chain().compile(checkpointer=saver)
        events = EventBatch(log, run.run_id, 1, saver.carry)
        config: RunnableConfig = {"configurable": {"thread_id": "T"}}
        async for part in graph.astream({"count": 0}, config, stream_mode="updates"):
            events.add("updates", part)
        assert await events.flush() == 11
        # No checkpoint follows now: the batch is committed alone, at once.
        lone = EventBatch(log, run.run_id, 11, saver.carry)
        lone.add("custom", {"late": True})
        assert await lone.flush() == 12
        assert [e.event for e in await log.after(run.run_id, 10)] == ["custom"]
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        steps = {r[0] for r in conn.execute("SELECT xmin::text FROM checkpoints")}
        stored = conn.execute(
            "SELECT seq, xmin::text FROM run_stream_events WHERE run_id = %s ORDER BY seq",
            [run.run_id],
        ).fetchall()
    assert [seq for seq, _ in stored] == list(range(1, 12))
    ridden = [seq for seq, xmin in stored if xmin in steps]
    assert len(ridden) >= 5, stored  # most steps' updates went in their checkpoint's commit
    assert 11 not in ridden
