"""Per-node overhead of Shipyard's graph machinery against a bare LangGraph graph.

Usage: ``.venv/bin/python benchmarks/node_overhead.py [--nodes 10] [--runs 40]``

Every configuration is a chain of ``--nodes`` trivial *sync* nodes (Shipyard's nodes are sync
functions too, so LangGraph runs both in its executor), compiled with a Postgres checkpointer
and run with ``ainvoke`` on a fresh thread. The configurations, from bare to full Shipyard:

* ``bare``: ``AsyncPostgresSaver.from_conn_string`` (one connection, default serializer),
  state ``{count: int}``, LangGraph's default durability (``"async"``: the checkpoint of a
  step is written while the next step runs).
* ``bare, sync``: the same with ``durability="sync"`` (each checkpoint is written before the
  next step starts).
* ``+ shipyard checkpointer, contract state``: ``shipyard.store.open_checkpointer`` (pool with
  health checks, serializer with the contract allowlist); each node returns a new ``Verdict``
  (one ``Evidence`` with an ``IsolationReport``) and ``Usage``; ``durability="sync"``.
* ``+ journal``: each node also opens an ``EffectLog`` and makes one journaled call
  through it the way a model call or a file tool is (``EffectLog.record``: on a step of a
  timeline begun in this run, intent and outcome are written together, behind, with the
  step's checkpoint). Each run is wrapped in ``effects.invocation()`` with its timeline
  declared, as the runner, the server's worker and intake do.
* ``shipyard (full)``: each node also appends a redacted audit event
  (``RunStore.append_event_behind`` after ``redact_obj``, as ``shipyard.nodes.inputs.event``
  does).
* diagnostics: the full configuration with the call journaled intent-first (as a command or
  a commit is: ``EffectLog.run``, one round trip before the effect), and with
  ``synchronous_commit=off`` (commits do not wait for the WAL flush: shows what the disk
  costs).

Configurations are interleaved round-robin. A run's time (``ainvoke``, including the input and
final checkpoints) divided by the node count is one sample of "ms per node"; the table gives
the median and p95 over ``--runs`` runs, and each configuration's ratio to ``bare``.
The database is a fresh one: on ``DATABASE_URL``'s server if set, else on an embedded Postgres
started under a temporary directory (and stopped and removed afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import StateGraph
from psycopg import sql

from shipyard.contracts import Evidence, IsolationReport, Usage, Verdict
from shipyard.effects import EffectLog, invocation, new_timeline
from shipyard.redact import redact_obj
from shipyard.store import (
    Journal,
    RunStore,
    ensure_embedded,
    make_engine,
    migrate,
    open_checkpointer,
    psycopg_conninfo,
    stop_embedded,
    with_database,
)


class BareState(TypedDict):
    count: int


class ShipyardState(TypedDict, total=False):
    run_id: str
    count: int
    verdict: Verdict | None
    usage: Usage


@contextlib.contextmanager
def fresh_database(database_url: str | None) -> Iterator[tuple[str, str]]:
    """A new empty database: ``(url, description)``; dropped (or its server removed) after."""
    if database_url:
        name = f"shipyard_bench_{uuid.uuid4().hex[:10]}"
        admin = psycopg_conninfo(database_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield with_database(database_url, name), f"DATABASE_URL server, database {name}"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                conn.execute(drop.format(sql.Identifier(name)))
        return
    base = Path(tempfile.mkdtemp(prefix="shipyard-bench-pg-"))
    try:
        yield ensure_embedded(base / "pgdata"), f"embedded Postgres in {base / 'pgdata'}"
    finally:
        stop_embedded(base / "pgdata")
        shutil.rmtree(base, ignore_errors=True)


def chain(state_type: type[Any], node: Callable[[Any, int], Any], n: int) -> StateGraph[Any]:
    """``n`` copies of ``node`` in a line."""
    builder: StateGraph[Any] = StateGraph(state_type)
    for i in range(n):
        builder.add_node(f"n{i}", lambda state, i=i: node(state, i))
        if i:
            builder.add_edge(f"n{i - 1}", f"n{i}")
    builder.set_entry_point("n0")
    builder.set_finish_point(f"n{n - 1}")
    return builder


def bare_node(state: BareState, _i: int) -> BareState:
    return {"count": state["count"] + 1}


def verdict(i: int) -> Verdict:
    """What validate puts in state: a verdict with one piece of evidence (log by reference)."""
    evidence = Evidence(
        check="pytest",
        command=["python", "-m", "pytest", "-q"],
        exit_code=0,
        passed=True,
        duration_s=0.42,
        summary=f"pytest: {i} passed, 0 failed, 0 errors, 0 skipped (exit 0)",
        log_ref=f"artifact://run/checks/pytest-{i:08x}.log",
        isolation=IsolationReport(level="bubblewrap", held=["user-ns", "net-ns", "seccomp"]),
    )
    return Verdict(passed=True, evidence=[evidence])


def shipyard_node(
    journal: Journal | None, runs: RunStore | None, *, intent_first: bool = False
) -> Callable[[Any, int], Any]:
    """A trivial node with Shipyard's per-node machinery (journal and event are optional).

    Its journaled call is recorded like a model call or a file tool (``EffectLog.record``),
    or with ``intent_first`` run like a command or a commit (``EffectLog.run``)."""

    def node(state: ShipyardState, i: int) -> ShipyardState:
        run_id = state["run_id"]
        if journal is not None:
            log = EffectLog(journal, run_id, f"{EPOCH}/node/{i}")
            if intent_first:
                log.run("effect", "bench", {"node": i}, lambda: {"ok": True}, lambda _: None)
            else:
                log.record("model.0", "model", {"node": i}, lambda: {"ok": True})
        if runs is not None:
            # As shipyard.nodes.inputs.event does: secrets masked before they are stored.
            runs.append_event_behind(run_id, "node", redact_obj({"node": i, "tool": "write_file"}))
        return {
            "count": state["count"] + 1,
            "verdict": verdict(i),
            "usage": state["usage"] + Usage(tool_calls=1, input_tokens=100),
        }

    return node


FULL = "shipyard (full: + audit event)"
INTENT_FIRST = "diagnostic: full, the call journaled intent-first"
NO_FLUSH = "diagnostic: full, synchronous_commit=off"
EPOCH = "e0"
"""The journal timeline of every run (each run is a new thread, so it begins there)."""


async def measure(url: str, nodes: int, runs_n: int, warmup: int) -> dict[str, list[float]]:
    """Per-node milliseconds of each run, by configuration."""
    migrate(url)
    # Same database, but commits do not wait for the WAL flush: shows what the disk costs.
    no_flush_url = f"{url}{'&' if '?' in url else '?'}options={quote('-csynchronous_commit=off')}"
    engine, no_flush_engine = make_engine(url), make_engine(no_flush_url)
    journal, runs = Journal(engine), RunStore(engine)
    try:
        async with (
            AsyncPostgresSaver.from_conn_string(psycopg_conninfo(url)) as plain,
            open_checkpointer(url) as saver,
            open_checkpointer(no_flush_url) as no_flush_saver,
        ):
            await plain.setup()
            bare = chain(BareState, bare_node, nodes)
            configs: dict[str, tuple[Any, str | None, bool]] = {
                "bare (default durability: async)": (bare.compile(checkpointer=plain), None, False),
                "bare, sync": (bare.compile(checkpointer=plain), "sync", False),
            }
            no_flush = (Journal(no_flush_engine), RunStore(no_flush_engine))
            for name, node, cp in [
                ("+ shipyard checkpointer, contract state", shipyard_node(None, None), saver),
                ("+ journal (a recorded call)", shipyard_node(journal, None), saver),
                (FULL, shipyard_node(journal, runs), saver),
                (INTENT_FIRST, shipyard_node(journal, runs, intent_first=True), saver),
                (NO_FLUSH, shipyard_node(*no_flush), no_flush_saver),
            ]:
                graph = chain(ShipyardState, node, nodes).compile(checkpointer=cp)
                configs[name] = (graph, "sync", True)
            samples: dict[str, list[float]] = {name: [] for name in configs}
            for rep in range(warmup + runs_n):
                for name, (graph, durability, rich) in configs.items():
                    ms = await one_run(graph, durability, rich, runs)
                    if rep >= warmup:
                        samples[name].append(ms / nodes)
            return samples
    finally:
        engine.dispose()
        no_flush_engine.dispose()


async def one_run(graph: Any, durability: str | None, rich: bool, runs: RunStore) -> float:
    """Milliseconds of one whole run on a new thread."""
    thread = uuid.uuid4().hex[:12]
    config = {"configurable": {"thread_id": thread}}
    state: dict[str, Any] = {"count": 0}
    if rich:
        # The run row exists before the graph starts (the runner creates it); not timed.
        runs.create_run("bench", "/bench", run_id=thread)
        state |= {"run_id": thread, "verdict": None, "usage": Usage()}
    kwargs = {"durability": durability} if durability else {}
    start = time.perf_counter()
    # As the runner and the server's worker do; intake declares the new timeline.
    with invocation():
        if rich:
            new_timeline(thread, EPOCH)
        out = await graph.ainvoke(state, config, **kwargs)
    elapsed = (time.perf_counter() - start) * 1000
    assert out["count"] > 0
    return elapsed


def server_settings(url: str) -> str:
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        values = [
            f"{name}={conn.execute(sql.SQL('SHOW {}').format(sql.Identifier(name))).fetchone()[0]}"  # type: ignore[index]
            for name in ("server_version", "fsync", "synchronous_commit")
        ]
    return ", ".join(values)


def report(samples: dict[str, list[float]], nodes: int) -> None:
    base = statistics.median(next(iter(samples.values())))
    print(f"{nodes} nodes per run, {len(next(iter(samples.values())))} runs per configuration\n")
    print("| configuration | median ms/node | p95 ms/node | added ms/node | ratio to bare |")
    print("|---|---:|---:|---:|---:|")
    for name, values in samples.items():
        med = statistics.median(values)
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"| {name} | {med:.2f} | {p95:.2f} | {med - base:+.2f} | {med / base:.2f}x |")
    full = statistics.median(samples[FULL])
    verdict_text = "meets" if full / base <= 1.5 else "misses"
    print(f"\nfull Shipyard / bare = {full / base:.2f}x ({verdict_text} the 1.5x target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nodes", type=int, default=10, help="nodes per graph")
    parser.add_argument("--runs", type=int, default=40, help="measured runs per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs first")
    args = parser.parse_args()
    with fresh_database(os.environ.get("DATABASE_URL")) as (url, where):
        print(f"database: {where}")
        print(f"server: {server_settings(url)}")
        samples = asyncio.run(measure(url, args.nodes, args.runs, args.warmup))
    report(samples, args.nodes)


if __name__ == "__main__":
    main()
