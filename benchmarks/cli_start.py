"""How long the ``shipyard`` command takes to start, against Python's own start.

Usage: ``.venv/bin/python benchmarks/cli_start.py [--repeat 15]``

Each sample is a new process, timed from outside, interleaved round-robin so the machine's
noise falls on every command alike, after one warm-up round that is not counted. The table
gives, per command, the median and p90 wall time and the median CPU time (user + system of
the process, from ``getrusage``: what the machine's load changes least), each as a ratio to
``python -c pass`` (this interpreter) measured in the same rounds:

* ``shipyard --help``: the parser only (target ≤ 3× ``python -c pass``);
* ``shipyard runs``: the newest runs, on a warm embedded Postgres under a temporary
  ``SHIPYARD_HOME`` (target ≤ 0.5 s);
* ``shipyard stats``: the same records, summed;
* ``shipyard show RUN``: one run of ``shipyard demo`` (made before the samples: checkpoints,
  evidence, approvals, a report), and one run waiting at its plan approval (made by
  ``shipyard run`` with the demo's scripted model: nothing in its checkpoints needs
  LangGraph's serializer).

Every sample is on a warm embedded Postgres (already running, schema migrated). A command
that has to start the server first pays for that too: the last line is one ``shipyard runs``
after the server was stopped (data kept). ``DATABASE_URL`` is removed from the commands'
environment so the embedded Postgres is the one measured; it is stopped and deleted at the
end. The commands keep their compiled bytecode as an installed package does: in a
directory under the temporary home (``PYTHONPYCACHEPREFIX``), written by the warm-up, even
where ``PYTHONDONTWRITEBYTECODE`` is set (it is removed from their environment).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard.cli.demo import GOAL, copy_example, example_dir
from shipyard.store import stop_embedded

PYTHON = sys.executable
SHIPYARD = str(Path(PYTHON).with_name("shipyard"))


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="shipyard-cli-bench-", dir="/var/tmp"))
    drop = ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE", "SHIPYARD_MODEL_SCRIPT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(SHIPYARD_HOME=str(home), COLUMNS="100", PYTHONPYCACHEPREFIX=str(home / "pyc"))
    load_before = os.getloadavg()
    try:
        timed([SHIPYARD, "runs"], env)  # starts the embedded Postgres and migrates: warm after
        commands = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "shipyard --help": [SHIPYARD, "--help"],
            "shipyard runs": [SHIPYARD, "runs"],
            "shipyard stats": [SHIPYARD, "stats"],
            "shipyard show RUN (completed)": [SHIPYARD, "show", demo_run(home, env)],
            "shipyard show RUN (at plan approval)": [SHIPYARD, "show", waiting_run(home, env)],
        }
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for round_ in range(args.repeat + 1):
            for name, argv in commands.items():
                sample = timed(argv, env)
                if round_:  # the first round writes the bytecode caches: not counted
                    samples[name].append(sample)
        stop_embedded(home / "pgdata")
        cold, _ = timed([SHIPYARD, "runs"], env)
    finally:
        stop_embedded(home / "pgdata")
        shutil.rmtree(home, ignore_errors=True)
    print_table(samples, args.repeat, cold, (load_before, os.getloadavg()))


def print_table(
    samples: dict[str, list[tuple[float, float]]],
    repeat: int,
    cold: float,
    loads: tuple[tuple[float, float, float], ...],
) -> None:
    """The medians, p90s and ratios to ``python -c pass``, as a Markdown table."""
    floor_wall = statistics.median(w for w, _ in samples["python -c pass"])
    floor_cpu = statistics.median(c for _, c in samples["python -c pass"])
    print(f"| command | median ms | p90 ms | × pass | CPU ms | CPU × pass |  (n={repeat})")
    print("|---|---:|---:|---:|---:|---:|")
    for name, values in samples.items():
        walls = sorted(w for w, _ in values)
        median, p90 = statistics.median(walls), walls[int(0.9 * (len(walls) - 1))]
        cpu = statistics.median(c for _, c in values)
        print(
            f"| `{name}` | {median * 1000:.0f} | {p90 * 1000:.0f} | {median / floor_wall:.1f}× "
            f"| {cpu * 1000:.0f} | {cpu / floor_cpu:.1f}× |"
        )
    print(f"| `shipyard runs`, server stopped first (n=1) | {cold * 1000:.0f} | - | - | - | - |")
    print("(every other row on a warm embedded Postgres: already running, schema migrated)")
    shown = ", ".join(f"{one:.1f}" for one, _, _ in loads)
    print(f"load average (1 min) before, after: {shown}; {os.cpu_count()} CPUs")


def demo_run(home: Path, env: dict[str, str]) -> str:
    """The id of a finished run, made by ``shipyard demo`` (offline, scripted model)."""
    subprocess.run(
        [SHIPYARD, "demo", "--dir", str(home / "demo")], env=env, check=True, capture_output=True
    )
    return newest_run(env)


def waiting_run(home: Path, env: dict[str, str]) -> str:
    """The id of a run waiting at its plan approval (the demo's repository and script)."""
    repo = copy_example(home / "waiting" / "invoices")
    scripted = {**env, "SHIPYARD_MODEL_SCRIPT": str(example_dir() / "invoices.script.json")}
    subprocess.run(
        [SHIPYARD, "run", "--repo", str(repo), GOAL],
        env=scripted,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    return newest_run(env)


def newest_run(env: dict[str, str]) -> str:
    listed = subprocess.run(
        [SHIPYARD, "runs"], env=env, check=True, capture_output=True, text=True
    ).stdout
    return listed.splitlines()[1].split()[0]


if __name__ == "__main__":
    main()
