"""The checkpointer's group commit (``store.group_commit``) on a real Postgres: concurrent
runs share transactions, the rows are the ones a lone run writes, and a refused row fails
only the caller that handed it over."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig

from shipyard.probe_graphs import build_chain
from shipyard.store import open_checkpointer, psycopg_conninfo
from shipyard.store.group_commit import Rows
from shipyard.store.saver import ShipyardSaver


def _query(db_url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


async def test_concurrent_runs_share_transactions_and_write_every_row(db_url: str) -> None:
    threads = [f"gc-{i}" for i in range(8)]
    async with open_checkpointer(db_url) as saver:
        graph = build_chain().compile(checkpointer=saver)

        async def one(thread: str) -> int:
            config: RunnableConfig = {"configurable": {"thread_id": thread}}
            result = await graph.ainvoke({"count": 0}, config, durability="async")
            return int(result["count"])

        assert await one("gc-alone") == 10
        assert await asyncio.gather(*(one(t) for t in threads)) == [10] * 8
        for thread in threads:  # every history complete and readable
            history = [s async for s in graph.aget_state_history(_config(thread))]
            assert len(history) == 12  # the input, the start and ten nodes
            assert history[0].values == {"count": 10, "visited": [f"n{i}" for i in range(10)]}
    # Row for row what the same run wrote alone (ids and versions aside).
    counts = "SELECT thread_id, count(*) FROM {} GROUP BY thread_id"
    for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
        per_thread = dict(_query(db_url, counts.format(table)))
        assert all(per_thread[t] == per_thread["gc-alone"] for t in threads), (table, per_thread)
    checkpoints = _query(db_url, "SELECT xmin::text FROM checkpoints WHERE thread_id ~ 'gc-[0-9]'")
    assert len(checkpoints) == 8 * 12
    # Eight runs stepping side by side: far fewer commits than checkpoints.
    assert len({xmin for (xmin,) in checkpoints}) <= len(checkpoints) // 2


def _config(thread: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread}}


async def test_a_refused_row_fails_only_the_caller_that_handed_it(db_url: str) -> None:
    table = f"gc_probe_{uuid.uuid4().hex[:8]}"
    _query(db_url, f"CREATE TABLE {table} (x int PRIMARY KEY); INSERT INTO {table} VALUES (1)")
    insert = f"INSERT INTO {table} (x) VALUES (%s)"
    async with open_checkpointer(db_url) as saver:
        assert isinstance(saver, ShipyardSaver)
        # Handed over in the same turn of the loop: one transaction, which Postgres refuses.
        outcomes = await asyncio.gather(
            saver.group.send(Rows(statements=[(insert, [2])])),
            saver.group.send(Rows(statements=[(insert, [1])])),  # duplicate key
            saver.carry(insert, [3]),
            return_exceptions=True,
        )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], psycopg.errors.UniqueViolation)
    assert _query(db_url, f"SELECT x FROM {table} ORDER BY x") == [(1,), (2,), (3,)]


async def test_upserts_of_one_key_in_one_transaction_keep_the_last(db_url: str) -> None:
    # Two interrupt writes of one task slot handed over together: sent one by one the last
    # would win; in one statement Postgres refuses to touch a row twice unless deduplicated.
    async with open_checkpointer(db_url) as saver:
        assert isinstance(saver, ShipyardSaver)
        config: RunnableConfig = {
            "configurable": {"thread_id": "gc-up", "checkpoint_ns": "", "checkpoint_id": "c1"}
        }
        await asyncio.gather(
            saver.aput_writes(config, [("__interrupt__", "first")], "task"),
            saver.aput_writes(config, [("__interrupt__", "second")], "task"),
        )
        tuple_ = await saver.aget_tuple(config)
    assert tuple_ is None  # no checkpoint c1: the writes are stored, nothing to read them by
    rows = _query(db_url, "SELECT count(*) FROM checkpoint_writes WHERE thread_id = 'gc-up'")
    assert rows == [(1,)]
    blob = _query(db_url, "SELECT blob FROM checkpoint_writes WHERE thread_id = 'gc-up'")
    assert b"second" in bytes(blob[0][0])


@pytest.mark.parametrize("durability", ["sync", "async"])
async def test_a_lone_run_still_sends_a_steps_writes_with_its_checkpoint(
    db_url: str, durability: Any
) -> None:
    thread = f"gc-lone-{durability}"
    async with open_checkpointer(db_url) as saver:
        graph = build_chain().compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": thread}}
        assert (await graph.ainvoke({"count": 0}, config, durability=durability))["count"] == 10
    commits = _query(
        db_url,
        "SELECT count(DISTINCT xmin::text) FROM (SELECT xmin FROM checkpoints WHERE thread_id"
        " = %(t)s UNION ALL SELECT xmin FROM checkpoint_writes WHERE thread_id = %(t)s) AS r",
        {"t": thread},
    )
    assert commits[0][0] <= 12  # one per checkpoint at most: no write went alone
