"""The server's garbage-collector tuning against CPython's defaults, side by side.

Usage: ``.venv/bin/python benchmarks/server_gc.py [--seconds 10] [--passes 6] [--clients 8]
[--workers 10]``

Two ``shipyard serve --workers N`` processes (the default layout) serve the probe graphs,
each on its own fresh database (``DATABASE_URL``'s server if set, else an embedded
Postgres): one with ``SHIPYARD_GC_THRESHOLD=off`` (CPython's thresholds, nothing frozen),
one with the default tuning (``shipyard.server.processes.gc_tuning``). Both are up for the
whole run; ``--passes`` times, each is driven by ``--clients`` clients looping create
thread + ``runs.wait`` on ``probe_chain`` for ``--seconds`` after a 2 s warm-up, the order
rotated each pass so the machine's drift falls on both alike. Prints every pass, the median of each,
their ratio, and each server's RSS before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

from langgraph_sdk import get_client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.node_overhead import fresh_database
from benchmarks.server_load import (
    shipyard_serve,
    throughput,
    tree_rss_mb,
    write_config,
)

VARIANTS = {"CPython defaults": "off", "tuned (default)": ""}


async def passes(bases: dict[str, str], args: argparse.Namespace) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {name: [] for name in bases}
    names = list(bases)
    for n in range(args.passes):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            sdk = get_client(url=bases[name], api_key=None)
            try:
                await throughput(sdk, args.clients, 2.0)
                rate = await throughput(sdk, args.clients, args.seconds)
            finally:
                await sdk.aclose()
            rates[name].append(rate)
            print(f"  pass {n + 1}, {name}: {rate:.1f} runs/s", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=10)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shipyard-gc-")))
        config = write_config(workdir)
        bases, pids = {}, {}
        for i, (name, value) in enumerate(VARIANTS.items()):
            url, _ = stack.enter_context(fresh_database(os.environ.get("DATABASE_URL")))
            environ = {"SHIPYARD_GC_THRESHOLD": value}
            log = workdir / f"serve-{i}.log"
            served = shipyard_serve(url, config, log, args.workers, environ=environ)
            bases[name], pids[name] = stack.enter_context(served)
        started = {name: tree_rss_mb(pid) for name, pid in pids.items()}
        rates = asyncio.run(passes(bases, args))
        print(f"\n{args.clients} clients, {args.passes} passes of {args.seconds:.0f} s\n")
        print("| server | runs/s median | passes | RSS start / after MB |\n|---|---:|---|---:|")
        for name, pid in pids.items():
            each = ", ".join(f"{r:.1f}" for r in rates[name])
            rss = f"{started[name]:.0f} / {tree_rss_mb(pid):.0f}"
            print(f"| {name} | {statistics.median(rates[name]):.1f} | {each} | {rss} |")
        base, tuned = (statistics.median(rates[name]) for name in VARIANTS)
        print(f"\ntuned / defaults: {tuned / base:.2f}×")


if __name__ == "__main__":
    main()
