"""Run every benchmark script in this directory and print its table.

Usage: ``.venv/bin/python -m benchmarks [NAME ...]`` (``make bench``); NAMEs are script names
without ``.py`` (default: all of them, in alphabetical order). ``--list`` prints the names.

Each script runs in its own process with its default arguments (see each script's
``--help``), one after another so they do not compete for the machine. The exit code is 1 if
any of them failed; the others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> dict[str, Path]:
    """Benchmark scripts by name: every ``*.py`` here except this package's own modules."""
    return {path.stem: path for path in sorted(HERE.glob("*.py")) if not path.name.startswith("_")}


def main() -> int:
    available = scripts()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("names", nargs="*", help=f"any of: {', '.join(available)}")
    parser.add_argument("--list", action="store_true", help="print the benchmark names")
    args = parser.parse_args()
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [name for name in args.names if name not in available]
    if unknown:
        choices = ", ".join(available)
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {choices}")
    failed = []
    for name in args.names or list(available):
        print(f"\n## {name}\n", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(available[name])], check=False)
        print(f"\n({name}: {time.perf_counter() - start:.0f} s, exit code {done.returncode})")
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
