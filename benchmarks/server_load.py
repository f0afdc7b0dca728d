"""Shipyard's server against ``langgraph dev`` with ``langgraph-sdk``.

Usage: ``.venv/bin/python benchmarks/server_load.py [--seconds 20] [--clients 1,8,32]
[--rounds 3] [--samples 30] [--approvals 500] [--workers 10] [--worker-processes 2]
[--skip-dev] [--skip-crash]``

Both servers serve the probe graphs (``probe_chain``: 10 nodes, ``probe_interrupt``) from a
temporary ``langgraph.json``. Shipyard runs as ``shipyard serve --workers N`` (``--workers``,
default 10 like the dev server's ``--n-jobs-per-worker``; its default layout: the workers in
the server process) on a fresh database (``DATABASE_URL``'s server if set, else an embedded
Postgres), and again as ``shipyard serve --worker-processes K`` (default 2; 0 skips it: HTTP
in the server process, graphs in K worker processes with ``--workers`` loops each) on a
second fresh database of the same Postgres server; the dev server as
``$SHIPYARD_LANGGRAPH_DEV dev`` (skipped with a message when unset). All of them are up for
the whole run; each measurement drives one server at a time, the others idle:

* ``runs.wait`` latency, one client, a new thread per run (thread creation not timed);
* time to the first stream event (``metadata``) of ``runs.stream``;
* interrupt → resume → idle: ``runs.wait`` with ``command.resume`` on a waiting thread until
  ``threads.get`` says ``idle``;
* runs completed per second with 1, 8 and 32 clients, each looping create thread + wait:
  ``--rounds`` rounds of one ``--seconds`` pass per server, the order rotated each round, so
  the VM's drift falls on every server alike; the median pass is reported, with the ratio to
  the dev server of each round (passes of the same round are minutes apart at most) and of
  the best passes (both servers slow as their threads pile up, the dev server's in memory);
  a target counts as met only when all of them are;
* server RSS (the process tree) after the load;
* the floor: the same chain in-process (``ainvoke``) on LangGraph's ``AsyncPostgresSaver``
  and on Shipyard's checkpointer (the server's), interleaved.

Shipyard only: ``--approvals`` threads left waiting at the interrupt (worker busy count and
RSS before/after, from ``/metrics``), and a ``shipyard worker`` killed with SIGKILL mid-run
(time until another worker holds the run, and until it finished) with the default lease.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.langgraph_dev import (  # noqa: E402
    free_port,
    langgraph_dev,
    langgraph_executable,
    stop,
    wait_ok,
)

from benchmarks.node_overhead import fresh_database  # noqa: E402

PROBES = ROOT / "src" / "shipyard" / "probe_graphs.py"
SLOW = ROOT / "tests" / "e2e" / "slow_graph.py"
SHIPYARD = str(Path(sys.executable).parent / "shipyard")


def write_config(directory: Path) -> Path:
    graphs = {
        "probe_chain": f"{PROBES}:chain",
        "probe_interrupt": f"{PROBES}:interrupt_graph",
        "slow": f"{SLOW}:slow",
    }
    path = directory / "langgraph.json"
    path.write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
    return path


@contextlib.contextmanager
def shipyard_serve(
    url: str,
    config: Path,
    log: Path,
    workers: int = 1,
    processes: int | None = None,
    environ: dict[str, str] | None = None,
) -> Iterator[tuple[str, int]]:
    """``shipyard serve`` on a free port (``--worker-processes``: its default when
    ``None``; ``environ``: variables set for it only); yields (base URL, pid of the server)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "OTEL_TRACES_EXPORTER": "none", **(environ or {})}
    command = [SHIPYARD, "serve", "--port", str(port), "--workers", str(workers)]
    if processes is not None:
        command += ["--worker-processes", str(processes)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*command, "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ok(base, process, log, 120)
        yield base, process.pid
    finally:
        stop(process)


def spawn_worker(url: str, config: Path, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url, "OTEL_TRACES_EXPORTER": "none"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [SHIPYARD, "worker", "--config", str(config), "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def tree_rss_mb(pid: int | list[int]) -> float:
    """RSS of the process trees of ``pid`` (one or several), in MB."""
    total = 0
    for root in [pid] if isinstance(pid, int) else pid:
        process = psutil.Process(root)
        total += process.memory_info().rss
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
    return total / 2**20


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def wait_latency(sdk: LangGraphClient, n: int) -> list[float]:
    samples = []
    for _ in range(n + 2):
        thread = await sdk.threads.create()
        tid = thread["thread_id"]
        samples.append(
            await timed(lambda t=tid: sdk.runs.wait(t, "probe_chain", input={"count": 0}))
        )
    return samples[2:]  # two warm-up runs


async def throughput(sdk: LangGraphClient, clients: int, seconds: float) -> float:
    deadline = time.perf_counter() + seconds
    done = 0

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            thread = await sdk.threads.create()
            result = await sdk.runs.wait(thread["thread_id"], "probe_chain", input={"count": 0})
            assert result["count"] == 10, result
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def first_event(sdk: LangGraphClient, n: int) -> list[float]:
    samples = []
    for _ in range(n + 2):
        thread = await sdk.threads.create()
        started = time.perf_counter()
        first: float | None = None
        async for _part in sdk.runs.stream(thread["thread_id"], "probe_chain", input={"count": 0}):
            if first is None:
                first = (time.perf_counter() - started) * 1000
        assert first is not None
        samples.append(first)
    return samples[2:]


async def resume_to_idle(sdk: LangGraphClient, n: int) -> list[float]:
    samples = []
    for _ in range(n + 2):
        thread = await sdk.threads.create()
        tid = thread["thread_id"]
        await sdk.runs.wait(tid, "probe_interrupt", input={"topic": "t"})
        started = time.perf_counter()
        await sdk.runs.wait(tid, "probe_interrupt", command={"resume": "yes"})
        while (await sdk.threads.get(tid))["status"] != "idle":
            await asyncio.sleep(0.005)
        samples.append((time.perf_counter() - started) * 1000)
    return samples[2:]


async def latencies(base: str, pid: int | list[int], args: argparse.Namespace) -> dict[str, Any]:
    """The one-client latencies of one server (the others idle) and its RSS before load."""
    sdk = get_client(url=base, api_key=None)
    out: dict[str, Any] = {"rss_start_mb": tree_rss_mb(pid)}
    try:
        out["wait"] = stats(await wait_latency(sdk, args.samples))
        out["first_event"] = stats(await first_event(sdk, args.samples))
        out["resume_idle"] = stats(await resume_to_idle(sdk, args.samples))
    finally:
        await sdk.aclose()
    return out


async def throughput_rounds(
    servers: dict[str, tuple[str, int | list[int]]],
    results: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    """For each client count, ``--rounds`` rounds of one pass per server, the order rotated
    each round, so a drift of the machine falls on every server alike: ``rps{N}`` is the
    median pass, ``passes{N}`` every pass (in round order)."""
    names = list(servers)
    for clients in args.clients:
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                sdk = get_client(url=servers[name][0], api_key=None)
                try:
                    rate = await throughput(sdk, clients, args.seconds)
                finally:
                    await sdk.aclose()
                results[name].setdefault(f"passes{clients}", []).append(rate)
                print(f"  {clients} clients, round {r + 1}, {name}: {rate:.1f} runs/s", flush=True)
        for name in names:
            results[name][f"rps{clients}"] = statistics.median(results[name][f"passes{clients}"])
    for name, (_base, pid) in servers.items():
        results[name]["rss_after_mb"] = tree_rss_mb(pid)


async def in_process_floor(url: str, n: int) -> dict[str, tuple[float, float]]:
    """The chain ``ainvoke``d in-process (default ``async`` durability): on LangGraph's own
    ``AsyncPostgresSaver`` (one connection) — the floor the database sets — and on
    Shipyard's checkpointer (``open_checkpointer``), which the server uses. Interleaved."""
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # noqa: PLC0415

    from shipyard.probe_graphs import build_chain  # noqa: PLC0415
    from shipyard.store import open_checkpointer, psycopg_conninfo  # noqa: PLC0415

    samples: dict[str, list[float]] = {"stock": [], "shipyard": []}
    async with (
        AsyncPostgresSaver.from_conn_string(psycopg_conninfo(url)) as stock,
        open_checkpointer(url) as ours,
    ):
        await stock.setup()
        graphs = {
            "stock": build_chain().compile(checkpointer=stock),
            "shipyard": build_chain().compile(checkpointer=ours),
        }
        for _ in range(n + 2):
            for name, graph in graphs.items():
                config = {"configurable": {"thread_id": str(uuid.uuid4())}}
                ms = await timed(lambda g=graph, c=config: g.ainvoke({"count": 0}, c))
                samples[name].append(ms)
    return {name: stats(values[2:]) for name, values in samples.items()}


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await http.get("/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def approvals(base: str, pid: int, count: int) -> dict[str, float]:
    """``count`` threads left waiting at ``interrupt()``: workers busy and RSS before/after."""
    sdk = get_client(url=base, api_key=None)
    async with httpx.AsyncClient(base_url=base) as http:
        before = await scrape(http)
        rss_before = tree_rss_mb(pid)
        gate = asyncio.Semaphore(8)

        async def one() -> None:
            async with gate:
                thread = await sdk.threads.create()
                await sdk.runs.create(thread["thread_id"], "probe_interrupt", input={"topic": "x"})

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        target = before[("shipyard_approvals_waiting", ())] + count
        while (after := await scrape(http))[("shipyard_approvals_waiting", ())] < target:
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
    await sdk.aclose()
    return {
        "waiting": after[("shipyard_approvals_waiting", ())],
        "busy_before": before[("shipyard_workers", (("state", "busy"),))],
        "busy_after": after[("shipyard_workers", (("state", "busy"),))],
        "rss_before_mb": rss_before,
        "rss_after_mb": tree_rss_mb(pid),
        "seconds": elapsed,
    }


async def worker_death(url: str, config: Path, workdir: Path) -> dict[str, float]:
    """Two ``shipyard worker`` processes; SIGKILL the one running a run (in its ``hold``
    node): time until the other re-executes ``hold`` from the last checkpoint, and until
    the run succeeded (default lease and poll; ``hold`` lasts 5 s)."""
    effects = workdir / "effects"
    effects.mkdir(exist_ok=True)
    log = effects / "effects"

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    with shipyard_serve(url, config, workdir / "crash.log", workers=0) as (base, _pid):
        workers = [spawn_worker(url, config, workdir / f"worker-{i}.log") for i in range(2)]
        sdk = get_client(url=base, api_key=None)
        try:
            await asyncio.sleep(5.0)  # both workers up and polling
            thread = await sdk.threads.create()
            tid = thread["thread_id"]
            run = await sdk.runs.create(tid, "slow", input={"dir": str(effects), "hold_s": 5})
            while "hold-start" not in lines():
                await asyncio.sleep(0.02)
            owner = await _lease_owner(url, run["run_id"])
            victim = next(w for w in workers if f":{w.pid}:" in owner)
            victim.send_signal(signal.SIGKILL)
            killed = time.perf_counter()
            victim.wait()
            while lines().count("hold-start") < 2:
                await asyncio.sleep(0.05)
            continued = time.perf_counter() - killed
            await sdk.runs.join(tid, run["run_id"])
            finished = time.perf_counter() - killed
            status = (await sdk.runs.get(tid, run["run_id"]))["status"]
        finally:
            await sdk.aclose()
            for process in workers:
                stop(process)
    once = lines().count("first") == 1 and lines().count("last") == 1
    return {
        "continued_s": continued,
        "finished_s": finished,
        "status_ok": status == "success" and once,
    }


async def _lease_owner(url: str, run_id: str) -> str:
    import psycopg  # noqa: PLC0415

    from shipyard.store import psycopg_conninfo  # noqa: PLC0415

    async with await psycopg.AsyncConnection.connect(psycopg_conninfo(url)) as conn:
        cur = await conn.execute("SELECT lease_owner FROM api_runs WHERE run_id = %s", [run_id])
        row = await cur.fetchone()
    assert row is not None and row[0], row
    return str(row[0])


def fmt(pair: tuple[float, float] | None) -> str:
    return "–" if pair is None else f"{pair[0]:.1f} / {pair[1]:.1f}"


def passes(result: dict[str, Any], clients: int) -> str:
    each = ", ".join(f"{rate:.1f}" for rate in result[f"passes{clients}"])
    return f"{result[f'rps{clients}']:.1f} ({each})"


def report(
    ours: dict[str, Any],
    dev: dict[str, Any] | None,
    floors: dict[str, tuple[float, float]],
    args: argparse.Namespace,
) -> None:
    print("\n| measurement | shipyard | langgraph dev |\n|---|---:|---:|")
    rows = [
        ("runs.wait ms (median / p95), 1 client", "wait"),
        ("first stream event ms (median / p95)", "first_event"),
        ("interrupt → resume → idle ms (median / p95)", "resume_idle"),
    ]
    for label, key in rows:
        print(f"| {label} | {fmt(ours[key])} | {fmt(dev[key] if dev else None)} |")
    for clients in args.clients:
        theirs = passes(dev, clients) if dev else "–"
        print(
            f"| runs/s, {clients} clients, {args.seconds:.0f} s (median; each round) "
            f"| {passes(ours, clients)} | {theirs} |"
        )
    for label, key in (("RSS at start MB", "rss_start_mb"), ("RSS after load MB", "rss_after_mb")):
        theirs = f"{dev[key]:.0f}" if dev else "–"
        print(f"| {label} | {ours[key]:.0f} | {theirs} |")
    print(f"| in-process chain, AsyncPostgresSaver ms | {fmt(floors['stock'])} | |")
    print(f"| in-process chain, Shipyard's saver ms | {fmt(floors['shipyard'])} | |")
    targets(ours, dev, floors, args)


def targets(
    ours: dict[str, Any],
    dev: dict[str, Any] | None,
    floors: dict[str, tuple[float, float]],
    args: argparse.Namespace,
) -> None:
    """Issue 4's targets, each with its ratio and whether it is met."""
    print("\n| target | measured | met |\n|---|---:|---|")
    for name, floor in floors.items():
        ratio = ours["wait"][0] / floor[0]
        met = "yes" if ratio <= 2 else "no"
        print(f"| median runs.wait ≤ 2× in-process ({name} saver) | {ratio:.2f}× | {met} |")
    if dev:
        first = ours["first_event"][0] / dev["first_event"][0]
        print(
            f"| first event < 1/20 of dev | 1/{1 / first:.0f} | {'yes' if first < 0.05 else 'no'} |"
        )
        for clients in (8, 32):
            if clients in args.clients:
                r = ours[f"rps{clients}"] / dev[f"rps{clients}"]
                pairs = zip(ours[f"passes{clients}"], dev[f"passes{clients}"], strict=True)
                rounds = [a / b for a, b in pairs]
                each = ", ".join(f"{x:.2f}" for x in rounds)
                # Both slow as their threads pile up: the best passes too.
                best = max(ours[f"passes{clients}"]) / max(dev[f"passes{clients}"])
                met = "yes" if min(r, best, *rounds) >= 1.5 else "no"
                print(
                    f"| runs/s at {clients} ≥ 1.5× dev (median; each round; best passes) "
                    f"| {r:.2f}× ({each}; {best:.2f}×) | {met} |"
                )


def start_servers(
    stack: contextlib.ExitStack, url: str, config: Path, workdir: Path, args: argparse.Namespace
) -> dict[str, tuple[str, int | list[int]]]:
    """Every server, up until ``stack`` closes: name → (base URL, pid or pids). Each Shipyard
    layout has its own database (of the same Postgres server), so one's workers never take
    the other's runs."""
    servers: dict[str, tuple[str, int | list[int]]] = {}
    serve = (url, config, workdir / "serve.log", args.workers, 0)
    servers["shipyard"] = stack.enter_context(shipyard_serve(*serve))
    if args.worker_processes:
        second, _ = stack.enter_context(fresh_database(url))
        log = workdir / "serve-spread.log"
        spread = (second, config, log, args.workers, args.worker_processes)
        servers["spread"] = stack.enter_context(shipyard_serve(*spread))
    executable = langgraph_executable()
    if args.skip_dev or executable is None:
        print("langgraph dev: skipped (set SHIPYARD_LANGGRAPH_DEV to its langgraph CLI)")
    else:
        devdir = workdir / "dev"
        devdir.mkdir()
        base = stack.enter_context(langgraph_dev(executable, devdir))
        servers["dev"] = (base, _listening_pid(base))
    return servers


async def main_async(args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="shipyard-bench-server-"))
        url, where = stack.enter_context(fresh_database(os.environ.get("DATABASE_URL")))
        workdir = Path(tmp)
        config = write_config(workdir)
        print(f"database: {where}", flush=True)
        floors = await in_process_floor(url, args.samples)
        print(f"in-process floor: {floors}", flush=True)
        servers = start_servers(stack, url, config, workdir, args)
        results: dict[str, dict[str, Any]] = {}
        for name, (base, pid) in servers.items():
            print(f"{name}: latencies", flush=True)
            results[name] = await latencies(base, pid, args)
        await throughput_rounds(servers, results, args)
        if args.approvals:
            base, pid = servers["shipyard"]
            assert isinstance(pid, int)
            results["shipyard"]["approvals"] = await approvals(base, pid, args.approvals)
    crash = None
    if not args.skip_crash:
        with (
            tempfile.TemporaryDirectory(prefix="shipyard-bench-crash-") as tmp,
            fresh_database(os.environ.get("DATABASE_URL")) as (url, _where),
        ):
            crash = await worker_death(url, write_config(Path(tmp)), Path(tmp))
    dev = results.get("dev")
    print("\nshipyard serve (default: workers in the server process)")
    report(results["shipyard"], dev, floors, args)
    if "spread" in results:
        print(f"\nshipyard serve --worker-processes {args.worker_processes}:")
        report(results["spread"], dev, floors, args)
    print_extras(results["shipyard"].get("approvals"), crash, args)


def print_extras(
    approvals: dict[str, float] | None, crash: dict[str, float] | None, args: argparse.Namespace
) -> None:
    """The Shipyard-only measurements: runs parked at an approval, a worker's death."""
    if approvals:
        a = approvals
        print(
            f"\n{args.approvals} waiting threads: approvals_waiting={a['waiting']:.0f}, workers "
            f"busy {a['busy_before']:.0f} → {a['busy_after']:.0f}, RSS {a['rss_before_mb']:.0f}"
            f" → {a['rss_after_mb']:.0f} MB (created in {a['seconds']:.1f} s)"
        )
    if crash:
        print(
            f"worker SIGKILL → run continued elsewhere {crash['continued_s']:.1f} s, finished "
            f"{crash['finished_s']:.1f} s, status success: {crash['status_ok']}"
        )


def _listening_pid(base: str) -> int:
    port = int(base.rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == "LISTEN" and conn.pid:
            return conn.pid
    raise RuntimeError(f"no process listens on {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput passes per server and client count"
    )
    parser.add_argument("--approvals", type=int, default=500)
    parser.add_argument(
        "--workers", type=int, default=10, help="shipyard serve --workers (dev server: 10 jobs)"
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=2,
        help="also measure serve --worker-processes K (0: skip)",
    )
    parser.add_argument("--skip-dev", action="store_true")
    parser.add_argument("--skip-crash", action="store_true")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",") if c]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
