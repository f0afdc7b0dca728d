"""``ShipyardSaver`` writes exactly the rows LangGraph's own ``AsyncPostgresSaver`` writes.

It re-implements ``aput`` / ``aput_writes`` to serialize on the event loop; this test runs the
same graph (primitives, contracts, ``None``, lists, an interrupt and its resume, an error
write) through both savers on one database and compares every table row by row, ids aside.
If a LangGraph release changes how it stores checkpoints, this fails before anything else.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from psycopg.rows import dict_row

from shipyard.contracts import Usage, Verdict
from shipyard.probe_graphs import build_chain
from shipyard.store import make_serializer, open_checkpointer, psycopg_conninfo
from shipyard.store.saver import thread_known_empty


class _State(TypedDict, total=False):
    count: int
    label: str | None
    ratio: float
    usage: Usage
    verdict: Verdict | None
    notes: Annotated[list[str], operator.add]
    answer: Any


_FAILED: set[str] = set()


def _graph() -> StateGraph[_State]:
    def first(state: _State) -> _State:
        return {"count": 1, "label": None, "ratio": 0.5, "usage": Usage(model_calls=1)}

    def flaky(state: _State) -> _State:
        # Fails the first time (stored as an error write); the run is then resumed.
        if not _FAILED:
            _FAILED.add("failed")
            raise ValueError("flaky once")
        return {"notes": ["flaky ran"], "verdict": Verdict(passed=True)}

    def ask(state: _State) -> _State:
        return {"answer": interrupt({"question": "go?"}), "notes": ["asked"]}

    builder = StateGraph(_State)
    builder.add_node("first", first)
    builder.add_node("flaky", flaky)
    builder.add_node("ask", ask)
    builder.add_edge(START, "first")
    builder.add_edge("first", "flaky")
    builder.add_edge("flaky", "ask")
    builder.add_edge("ask", END)
    return builder


async def _drive(saver: AsyncPostgresSaver, thread: str) -> None:
    _FAILED.clear()
    graph = _graph().compile(checkpointer=saver)
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    with pytest.raises(ValueError, match="flaky once"):
        await graph.ainvoke({"notes": []}, config, durability="sync")
    await graph.ainvoke(None, config, durability="sync")
    await graph.ainvoke(Command(resume={"go": True}), config, durability="sync")


def _version(version: str) -> str:
    """A channel version without its random tie-breaker (``<counter>.<random>``)."""
    return version.split(".", maxsplit=1)[0]


def _payload(channel: str, type_: str, blob: bytes) -> object:
    """A write's bytes; for an interrupt, its values (its id derives from the thread)."""
    if channel != "__interrupt__":
        return blob
    return repr([i.value for i in make_serializer().loads_typed((type_, blob))])


def _rows(url: str, thread: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(psycopg_conninfo(url), row_factory=dict_row) as conn:
        checkpoints = conn.execute(
            "SELECT checkpoint_id, checkpoint, metadata FROM checkpoints"
            " WHERE thread_id = %s ORDER BY checkpoint_id",
            [thread],
        ).fetchall()
        order = {row["checkpoint_id"]: i for i, row in enumerate(checkpoints)}
        blobs = conn.execute(
            "SELECT channel, version, type, blob FROM checkpoint_blobs WHERE thread_id = %s",
            [thread],
        ).fetchall()
        writes = conn.execute(
            "SELECT checkpoint_id, task_path, idx, channel, type, blob FROM checkpoint_writes"
            " WHERE thread_id = %s",
            [thread],
        ).fetchall()
    return {
        "checkpoints": [
            (
                row["checkpoint"]["channel_values"],
                {k: _version(v) for k, v in row["checkpoint"]["channel_versions"].items()},
                row["checkpoint"]["versions_seen"].keys(),
                {k: v for k, v in row["metadata"].items() if k not in ("thread_id",)},
            )
            for row in checkpoints
        ],
        "blobs": sorted(
            (r["channel"], _version(r["version"]), r["type"], bytes(r["blob"] or b""))
            for r in blobs
        ),
        "writes": sorted(
            (
                order[r["checkpoint_id"]],
                r["task_path"],
                r["idx"],
                r["channel"],
                r["type"],
                _payload(r["channel"], r["type"], bytes(r["blob"])),
            )
            for r in writes
        ),
    }


async def test_shipyard_saver_writes_the_same_rows_as_langgraphs_saver(db_url: str) -> None:
    async with open_checkpointer(db_url) as ours:
        stock = AsyncPostgresSaver(ours.conn, serde=ours.serde)
        await _drive(stock, "t-stock")
        await _drive(ours, "t-ours")

    stock_rows, our_rows = _rows(db_url, "t-stock"), _rows(db_url, "t-ours")
    assert len(our_rows["checkpoints"]) >= 5
    assert any(channel == "verdict" for channel, *_ in our_rows["blobs"])
    assert {w[3] for w in our_rows["writes"]} >= {"__error__", "__interrupt__", "__resume__"}
    for table in ("checkpoints", "blobs", "writes"):
        assert our_rows[table] == stock_rows[table], table


async def test_a_sync_step_writes_its_tasks_writes_with_its_checkpoint(db_url: str) -> None:
    # One round trip per step: the task's writes wait for the step's checkpoint (which a
    # ``sync`` step sends at once) and commit in its transaction.
    async with open_checkpointer(db_url) as saver:
        graph = build_chain().compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": "t-one-trip"}}
        assert (await graph.ainvoke({"count": 0}, config, durability="sync"))["count"] == 10
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        steps = {r[0] for r in conn.execute("SELECT xmin::text FROM checkpoints")}
        writes = conn.execute(
            "SELECT task_path, xmin::text FROM checkpoint_writes WHERE thread_id = 't-one-trip'"
        ).fetchall()
    nodes = [(path, xmin) for path, xmin in writes if not path.endswith("__start__")]
    assert len(nodes) == 29  # count, visited and the edge to the next, for ten nodes
    assert all(xmin in steps for _, xmin in nodes), nodes


async def test_shipyard_saver_reads_back_what_langgraphs_saver_reads(db_url: str) -> None:
    # Its own ``_load_checkpoint_tuple`` (on the event loop) against the stock one, on the
    # same rows: history and latest checkpoint, pending writes included.
    async with open_checkpointer(db_url) as ours:
        stock = AsyncPostgresSaver(ours.conn, serde=ours.serde)
        await _drive(ours, "t-read")
        config: RunnableConfig = {"configurable": {"thread_id": "t-read"}}
        theirs = [t async for t in stock.alist(config)]
        mine = [t async for t in ours.alist(config)]
        assert len(mine) >= 5 and any(t.pending_writes for t in mine)
        assert mine == theirs
        assert await ours.aget_tuple(config) == await stock.aget_tuple(config)


async def test_a_head_known_empty_is_answered_once_without_reading(db_url: str) -> None:
    # The server's worker knows from its claim that a new thread has no checkpoint: the
    # read LangGraph makes as the run starts is answered at once — only that first read of
    # that thread's root head, only inside the block.
    async with open_checkpointer(db_url) as saver:
        graph = build_chain().compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": "t-known"}}
        await graph.ainvoke({"count": 0}, config)  # the thread does have checkpoints now
        head = await saver.aget_tuple(config)
        assert head is not None
        other: RunnableConfig = {"configurable": {"thread_id": "t-other"}}
        exact: RunnableConfig = {"configurable": {**head.config["configurable"]}}
        with thread_known_empty("t-known"):
            assert await saver.aget_tuple(other) is None  # another thread: really read
            assert await saver.aget_tuple(exact) == head  # a given checkpoint: read
            assert await saver.aget_tuple(config) is None  # the head: answered
            assert await saver.aget_tuple(config) == head  # once
        with thread_known_empty("t-known"):
            # A run inside the block starts from nothing, as on a new thread.
            assert len((await graph.ainvoke({"count": 0}, config))["visited"]) == 10
        assert len((await graph.ainvoke({"count": 0}, config))["visited"]) == 20  # read
        assert (await saver.aget_tuple(config)) != head
        assert await saver.aget_tuple(config) is not None
