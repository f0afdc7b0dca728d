"""The run queue against a real Postgres: claims, leases, multitask strategies, NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from shipyard.server.runs.queue import NewRun, NoSuchThreadError, Pool, RunQueue, ThreadBusyError
from shipyard.server.stores.listener import CANCEL_CHANNEL, RUNS_CHANNEL, Listener
from shipyard.store import open_checkpointer, psycopg_conninfo
from tests.support import eventually


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[Pool]:
    async with open_checkpointer(db_url) as saver:
        yield saver.conn  # type: ignore[misc]


async def make_thread(pool: Pool, thread_id: str, owner: str = "o") -> str:
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO threads (thread_id, owner) VALUES (%s, %s)", [thread_id, owner]
        )
    return thread_id


def new(thread_id: str, strategy: str = "enqueue") -> NewRun:
    return NewRun(
        thread_id=thread_id,
        owner="o",
        assistant_id="a",
        kwargs={"graph_id": "g", "input": {"n": 1}},
        metadata={},
        multitask_strategy=strategy,  # type: ignore[arg-type]
    )


async def test_claims_are_fifo_and_one_run_per_thread(pool: Pool) -> None:
    queue = RunQueue(pool)
    a, b = await make_thread(pool, "A"), await make_thread(pool, "B")
    a1, _ = await queue.enqueue(new(a))
    a2, _ = await queue.enqueue(new(a))
    b1, _ = await queue.enqueue(new(b))

    first = await queue.claim("w1")
    second = await queue.claim("w2")
    assert first is not None and first.run_id == a1.run_id and first.status == "running"
    assert first.lease_owner == "w1" and first.attempts == 1
    assert second is not None and second.run_id == b1.run_id
    assert await queue.claim("w3") is None  # a2 waits for a1: same thread

    assert await queue.finish(a1.run_id, "w1", "success")
    third = await queue.claim("w3")
    assert third is not None and third.run_id == a2.run_id
    done = await queue.get(a1.run_id)
    assert done is not None and done.status == "success" and done.lease_owner is None


async def test_concurrent_claims_never_run_two_runs_of_a_thread(pool: Pool) -> None:
    queue = RunQueue(pool)
    threads = [await make_thread(pool, f"T{i}") for i in range(4)]
    for thread_id in threads:
        for _ in range(3):
            await queue.enqueue(new(thread_id))
    claimed = await asyncio.gather(*(queue.claim(f"w{i}") for i in range(12)))
    runs = [r for r in claimed if r is not None]
    assert sorted(r.thread_id for r in runs) == sorted(threads)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT thread_id, count(*) AS n FROM api_runs WHERE status = 'running' "
            "GROUP BY thread_id"
        )
        assert {r["thread_id"]: r["n"] for r in await cur.fetchall()} == dict.fromkeys(threads, 1)


async def test_database_refuses_a_second_running_run_on_a_thread(pool: Pool) -> None:
    queue = RunQueue(pool)
    thread_id = await make_thread(pool, "T")
    await queue.enqueue(new(thread_id))
    second, _ = await queue.enqueue(new(thread_id))
    assert await queue.claim("w1") is not None
    async with pool.connection() as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            await conn.execute(
                "UPDATE api_runs SET status = 'running' WHERE run_id = %s", [second.run_id]
            )


async def test_an_expired_lease_is_claimed_again_and_the_old_owner_loses_it(pool: Pool) -> None:
    queue = RunQueue(pool, lease_s=30)
    thread_id = await make_thread(pool, "T")
    run, _ = await queue.enqueue(new(thread_id))
    assert (await queue.claim("dead")) is not None
    assert await queue.renew(run.run_id, "dead") == (True, None)
    assert await queue.claim("other") is None  # lease still valid

    # The last heartbeat of a worker about to die: a lease that runs out at once.
    assert await RunQueue(pool, lease_s=0.2).renew(run.run_id, "dead") == (True, None)
    again = await eventually(lambda: queue.claim("other"), what="the expired lease claimed")
    assert again.run_id == run.run_id
    assert again.attempts == 2 and again.lease_owner == "other"
    assert await queue.renew(run.run_id, "dead") == (False, None)
    assert not await queue.finish(run.run_id, "dead", "success")  # a zombie cannot record
    assert await queue.finish(run.run_id, "other", "success")


async def test_release_puts_a_running_run_back_in_the_queue(pool: Pool) -> None:
    queue = RunQueue(pool)
    thread_id = await make_thread(pool, "T")
    run, _ = await queue.enqueue(new(thread_id))
    assert await queue.claim("w1") is not None
    assert await queue.release(run.run_id, "w1")
    again = await queue.claim("w2")
    assert again is not None and again.run_id == run.run_id and again.attempts == 2


async def test_multitask_strategies(pool: Pool) -> None:
    queue = RunQueue(pool)
    thread_id = await make_thread(pool, "T")
    running, _ = await queue.enqueue(new(thread_id))
    assert await queue.claim("w1") is not None
    waiting, _ = await queue.enqueue(new(thread_id))

    with pytest.raises(ThreadBusyError, match="already running"):
        await queue.enqueue(new(thread_id, "reject"))
    assert len(await queue.active(thread_id)) == 2  # nothing was added

    newest, superseded = await queue.enqueue(new(thread_id, "interrupt"))
    assert superseded == [running.run_id, waiting.run_id]
    pending = await queue.get(waiting.run_id)
    assert pending is not None and pending.status == "interrupted"
    busy = await queue.get(running.run_id)
    assert busy is not None and busy.status == "running" and busy.cancel_action == "interrupt"
    assert await queue.renew(running.run_id, "w1") == (True, "interrupt")

    _, superseded = await queue.enqueue(new(thread_id, "rollback"))
    assert newest.run_id in superseded
    assert await queue.get(newest.run_id) is None  # a pending run is deleted at once


async def test_after_seconds_delays_the_claim(pool: Pool) -> None:
    queue = RunQueue(pool)
    later, soon = await make_thread(pool, "L"), await make_thread(pool, "S")
    await queue.enqueue(NewRun(**{**new(later).__dict__, "after_seconds": 600}))
    assert await queue.claim("w") is None
    short, _ = await queue.enqueue(NewRun(**{**new(soon).__dict__, "after_seconds": 0.3}))
    claimed = await eventually(lambda: queue.claim("w"), what="the short delay over")
    assert claimed.run_id == short.run_id
    assert await queue.claim("w") is None  # the long delay still holds


async def test_notify_wakes_listeners(pool: Pool, db_url: str) -> None:
    queue = RunQueue(pool)
    thread_id = await make_thread(pool, "T")
    listener = Listener(psycopg_conninfo(db_url))
    await listener.start()
    woken: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    listener.on(RUNS_CHANNEL, lambda p: woken.put_nowait((RUNS_CHANNEL, p)))
    listener.on(CANCEL_CHANNEL, lambda p: woken.put_nowait((CANCEL_CHANNEL, p)))
    try:
        run, _ = await queue.enqueue(new(thread_id))
        assert await asyncio.wait_for(woken.get(), 5) == (RUNS_CHANNEL, run.run_id)
        assert await queue.claim("w") is not None
        await queue.cancel(run, "interrupt")
        seen = {await asyncio.wait_for(woken.get(), 5) for _ in range(2)}
        assert seen == {(CANCEL_CHANNEL, run.run_id), (RUNS_CHANNEL, run.run_id)}
    finally:
        await listener.stop()


async def test_a_run_created_for_a_local_worker_is_claimed_when_its_thread_is_free(
    pool: Pool, db_url: str
) -> None:
    queue = RunQueue(pool, lease_s=7.0)
    thread_id = await make_thread(pool, "C")
    async with pool.connection() as conn:  # the thread has a checkpoint: the run's start
        await conn.execute(
            "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, checkpoint,"
            " metadata) VALUES (%s, '', 'ck-1', '{}', '{}')",
            [thread_id],
        )
    listener = Listener(psycopg_conninfo(db_url))
    await listener.start()
    woken: asyncio.Queue[str] = asyncio.Queue()
    listener.on(RUNS_CHANNEL, woken.put_nowait)
    try:
        first, _ = await queue.enqueue(new(thread_id), claim_for="w-local")
        assert first.status == "running" and first.lease_owner == "w-local"
        assert first.attempts == 1 and first.start_checkpoint_id == "ck-1"
        assert first.latest_checkpoint_id == "ck-1"
        stored = await queue.get(first.run_id)
        assert stored is not None and stored.lease_expires_at is not None
        # Behind a running run it is queued as usual, and workers are woken for it.
        second, _ = await queue.enqueue(new(thread_id), claim_for="w-other")
        assert second.status == "pending" and second.lease_owner is None
        assert await asyncio.wait_for(woken.get(), 5) == second.run_id
        assert woken.empty()  # the claimed run woke nobody
        assert await queue.claim("w") is None  # nothing claimable: one run per thread
        assert await queue.finish(first.run_id, "w-local", "success")
        third = await queue.claim("w")
        assert third is not None and third.run_id == second.run_id
    finally:
        await listener.stop()


async def test_concurrent_runs_created_for_local_workers_run_one_at_a_time(pool: Pool) -> None:
    queue = RunQueue(pool)
    thread_id = await make_thread(pool, "D")
    created = await asyncio.gather(
        *(queue.enqueue(new(thread_id), claim_for=f"w{i}") for i in range(6))
    )
    statuses = sorted(run.status for run, _ in created)
    assert statuses == ["pending"] * 5 + ["running"]


async def test_enqueue_refuses_a_thread_that_is_not_the_owners_and_tags_the_thread(
    pool: Pool,
) -> None:
    queue = RunQueue(pool)
    theirs = await make_thread(pool, "theirs", owner="someone-else")
    running, _ = await queue.enqueue(NewRun(**{**new(theirs).__dict__, "owner": "someone-else"}))
    for strategy in ("enqueue", "reject", "interrupt", "rollback"):
        for claim_for in (None, "w-local"):
            with pytest.raises(NoSuchThreadError):
                await queue.enqueue(new(theirs, strategy), claim_for=claim_for)
            with pytest.raises(NoSuchThreadError):
                await queue.enqueue(new("missing", strategy), claim_for=claim_for)
    # Nothing of the other owner's changed: no run added, none cancelled.
    assert [r.run_id for r in await queue.active(theirs)] == [running.run_id]
    assert (await queue.get(running.run_id)).cancel_action is None  # type: ignore[union-attr]

    mine = await make_thread(pool, "mine")
    tags = {"graph_id": "g", "assistant_id": "a"}
    await queue.enqueue(NewRun(**{**new(mine).__dict__, "tags": tags}), claim_for="w")
    await queue.enqueue(NewRun(**{**new(mine).__dict__, "tags": {"graph_id": "other"}}))
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT metadata, status FROM threads WHERE thread_id = 'mine'")
        ).fetchone()
    assert row == {"metadata": tags, "status": "busy"}  # tagged once, never re-tagged
