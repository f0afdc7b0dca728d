"""Embedded Postgres start times: cold (initdb + start), warm reuse, and restart.

Usage: ``.venv/bin/python benchmarks/embedded_start.py [--repeat 3]``

Every measurement is a new Python process calling ``shipyard.store.ensure_embedded`` on a
data directory under a temporary directory, as a CLI command would:

* cold: the data directory does not exist (``initdb``, start, create database ``shipyard``);
* warm: a server is already running there (another process started it): read
  ``postmaster.pid``, connect, find the database;
* restart: after ``stop_embedded`` (data kept), start the server again (no ``initdb``).

Two times per case: the ``ensure_embedded`` call measured inside the process, and the whole
process (interpreter start and imports included: what a user waits for before a command
does anything). Medians of ``--repeat`` repetitions (warm: 3 × that many).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard.store import stop_embedded

CHILD = """
import sys, time
from pathlib import Path
from shipyard.store import ensure_embedded
start = time.perf_counter()
ensure_embedded(Path(sys.argv[1]))
print((time.perf_counter() - start) * 1000)
"""


def ensure_in_new_process(pgdata: Path) -> tuple[float, float]:
    """``(ms inside ensure_embedded, ms of the whole process)``."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(pgdata)], capture_output=True, text=True, check=False
    )
    wall = (time.perf_counter() - start) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"ensure_embedded failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1]), wall


def timed_stop(pgdata: Path) -> float:
    start = time.perf_counter()
    assert stop_embedded(pgdata), "no server was running"
    return (time.perf_counter() - start) * 1000


def measure(repeat: int) -> dict[str, list[tuple[float, float]]]:
    samples: dict[str, list[tuple[float, float]]] = {
        "cold (initdb + start)": [],
        "warm (server already running)": [],
        "stop (fast shutdown)": [],
        "restart (data kept)": [],
    }
    for _ in range(repeat):
        base = Path(tempfile.mkdtemp(prefix="shipyard-bench-embedded-"))
        pgdata = base / "pgdata"
        try:
            samples["cold (initdb + start)"].append(ensure_in_new_process(pgdata))
            for _ in range(3):
                samples["warm (server already running)"].append(ensure_in_new_process(pgdata))
            stop_ms = timed_stop(pgdata)
            samples["stop (fast shutdown)"].append((stop_ms, stop_ms))
            samples["restart (data kept)"].append(ensure_in_new_process(pgdata))
        finally:
            stop_embedded(pgdata)
            shutil.rmtree(base, ignore_errors=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh data directories")
    args = parser.parse_args()
    samples = measure(args.repeat)
    print(f"{args.repeat} fresh data directories; medians\n")
    print("| case | ensure_embedded ms | whole process ms | samples |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        inner = statistics.median(v[0] for v in values)
        wall = statistics.median(v[1] for v in values)
        shown = "-" if name.startswith("stop") else f"{wall:.0f}"
        print(f"| {name} | {inner:.0f} | {shown} | {len(values)} |")


if __name__ == "__main__":
    main()
