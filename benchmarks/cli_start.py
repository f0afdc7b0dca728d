"""How long the ``shipyard`` command takes to start, against Python's own start.

Usage: ``.venv/bin/python benchmarks/cli_start.py [--repeat 15]``

Each sample is a new process, timed from outside, interleaved round-robin so the machine's
noise falls on every command alike; the table gives the median and the ratio to
``python -c pass`` (this interpreter):

* ``shipyard --help``: the parser only (target ≤ 3× ``python -c pass``);
* ``shipyard runs``: the newest runs, on a warm embedded Postgres under a temporary
  ``SHIPYARD_HOME`` (target ≤ 0.5 s);
* ``shipyard stats``: the same records, summed;
* ``shipyard show RUN``: one run of ``shipyard demo`` (made before the samples: checkpoints,
  evidence, approvals, a report).

Every sample is on a warm embedded Postgres (already running, schema migrated). A command
that has to start the server first pays for that too: the last line is one ``shipyard runs``
after the server was stopped (data kept). ``DATABASE_URL`` is removed from the commands'
environment so the embedded Postgres is the one measured; it is stopped and deleted at the
end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shipyard.store import stop_embedded

PYTHON = sys.executable
SHIPYARD = str(Path(PYTHON).with_name("shipyard"))


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="shipyard-cli-bench-", dir="/var/tmp"))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SHIPYARD_HOME=str(home), COLUMNS="100")
    try:
        timed([SHIPYARD, "runs"], env)  # starts the embedded Postgres and migrates: warm after
        commands = {
            "python -c pass": [PYTHON, "-c", "pass"],
            "shipyard --help": [SHIPYARD, "--help"],
            "shipyard runs": [SHIPYARD, "runs"],
            "shipyard stats": [SHIPYARD, "stats"],
            "shipyard show RUN": [SHIPYARD, "show", demo_run(home, env)],
        }
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):
            for name, argv in commands.items():
                samples[name].append(timed(argv, env))
        stop_embedded(home / "pgdata")
        cold = timed([SHIPYARD, "runs"], env)
    finally:
        stop_embedded(home / "pgdata")
        shutil.rmtree(home, ignore_errors=True)
    floor = statistics.median(samples["python -c pass"])
    print(f"| command | median ms | p90 ms | × python -c pass |  (n={args.repeat})")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        median, p90 = statistics.median(values), sorted(values)[int(0.9 * (len(values) - 1))]
        print(f"| `{name}` | {median * 1000:.0f} | {p90 * 1000:.0f} | {median / floor:.1f}× |")
    print(f"| `shipyard runs`, server stopped first (n=1) | {cold * 1000:.0f} | - | - |")
    print("(every other row on a warm embedded Postgres: already running, schema migrated)")


def demo_run(home: Path, env: dict[str, str]) -> str:
    """The id of a finished run, made by ``shipyard demo`` (offline, scripted model)."""
    subprocess.run(
        [SHIPYARD, "demo", "--dir", str(home / "demo")], env=env, check=True, capture_output=True
    )
    listed = subprocess.run(
        [SHIPYARD, "runs"], env=env, check=True, capture_output=True, text=True
    ).stdout
    return listed.splitlines()[1].split()[0]


if __name__ == "__main__":
    main()
