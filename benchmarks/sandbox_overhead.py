"""Per-command overhead of each isolation level against a bare ``subprocess.run``.

Usage: ``.venv/bin/python benchmarks/sandbox_overhead.py [--n 40]``

All configurations run the same command in the same process, interleaved round-robin so
machine noise hits them alike; the table gives medians, the milliseconds added over bare,
and the ratio. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from shipyard.sandbox.launcher import SandboxLauncher

CONFIGS: dict[str, dict[str, object]] = {
    "process (rlimits only)": {
        "prefer": "process",
        "disable": ("landlock", "seccomp", "pids-cgroup"),
    },
    "process (+landlock, seccomp, pids cgroup)": {"prefer": "process"},
    "namespace (+netns)": {"prefer": "namespace"},
    "bubblewrap (without pids cgroup)": {"prefer": "bubblewrap", "disable": ("pids-cgroup",)},
    "bubblewrap (full)": {"prefer": "bubblewrap"},
}
COMMANDS = {"true": ["true"], "python -c pass": [sys.executable, "-c", "pass"]}


def _timer(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def measure(n: int, workspace: Path) -> list[tuple[str, str, float, float, float, float]]:
    launchers = {name: SandboxLauncher(**cfg) for name, cfg in CONFIGS.items()}  # type: ignore[arg-type]
    for name, launcher in launchers.items():
        assert launcher.level in name, (name, launcher.report())
    rows = []
    for cmd_name, argv in COMMANDS.items():
        runs: dict[str, Callable[[], object]] = {
            "bare subprocess.run": lambda argv=argv: subprocess.run(
                argv, capture_output=True, check=True, cwd=workspace
            )
        }
        for name, launcher in launchers.items():
            runs[name] = lambda launcher=launcher, argv=argv: launcher.run(
                argv, workspace=workspace
            )
        for fn in runs.values():  # warm caches
            fn()
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(n):
            for name, fn in runs.items():
                times[name].append(_timer(fn))
        bare = statistics.median(times["bare subprocess.run"])
        for name, samples in times.items():
            med = statistics.median(samples)
            p90 = statistics.quantiles(samples, n=10)[-1]
            rows.append((cmd_name, name, med, p90, med - bare, med / bare))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=40, help="repetitions per configuration")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.n, Path(tmp))
    print(f"n={args.n} per configuration, interleaved\n")
    print("| command | configuration | median ms | p90 ms | added ms | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for cmd, name, med, p90, added, ratio in rows:
        print(f"| `{cmd}` | {name} | {med:.2f} | {p90:.2f} | {added:+.2f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
