"""The evaluation harness's overhead per task, and ``--concurrency 2`` against 1.

Generates ``--tasks`` small tasks (a git repository with a bug, its fix as the reference
patch, a hidden test as the test patch, ``--tests`` passing tests named as PASS_TO_PASS),
then measures:

* **tests alone**: the task's hidden test command on the fixed tree, once through a bare
  ``subprocess.run`` and once through Shipyard's sandbox (what the harness does at the end);
* **the harness per task** (``shipyard eval --oracle`` in this process, concurrency 1): its
  phases — source (clone at the base commit), run (a whole Shipyard run through the graph:
  intake, plan, execute, validate with the repository's own checks, finalize) and hidden
  (worktree, ``git apply``, the tests in the sandbox) — and the harness's own share, which
  is everything but the run, against the tests alone;
* **throughput**: the same tasks with ``--concurrency 1`` and ``--concurrency 2``.

Needs Postgres: ``DATABASE_URL`` (else the embedded one under a temporary SHIPYARD_HOME).

    .venv/bin/python benchmarks/eval_overhead.py [--tasks 6] [--tests 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shipyard.evals.harness import EvalOptions, evaluate, prepare
from shipyard.lifecycle.runner import Runner
from shipyard.sandbox.launcher import Limits, make_launcher
from shipyard.settings import Settings

BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
POLICY = "[budgets]\nattempts_per_step = 1\n\n[checks]\ncache = false\n"
"""No check result is reused: both evals of the same tasks do all their work."""
HIDDEN = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout


def _diff(repo: Path, name: str, text: str) -> str:
    (repo / name).write_text(text)
    _git(repo, "add", "-A")
    patch = _git(repo, "diff", "--cached", "HEAD")
    _git(repo, "reset", "-q", "--hard", "HEAD")
    return patch


def build(root: Path, tasks: int, tests: int) -> tuple[Path, list[str]]:
    """One repository per task (each differs, so no check result is reused between tasks),
    the tasks file, and the first repository with the hidden test ids."""
    p2p = [f"tests/test_ok.py::test_ok_{i}" for i in range(tests)]
    lines = []
    for n in range(tasks):
        repo = root / f"calc{n}"
        (repo / "tests").mkdir(parents=True)
        (repo / "calc.py").write_text(f"# task {n}\n{BUGGY}")
        body = "".join(
            f"\n\ndef test_ok_{i}():\n    assert {i} + 1 == {i + 1}\n" for i in range(tests)
        )
        (repo / "tests" / "test_ok.py").write_text(body.lstrip())
        (repo / ".shipyard.toml").write_text(POLICY)
        _git(root, "init", "-q", "-b", "main", str(repo))
        _git(repo, "add", "-A")
        _git(repo, "-c", "user.name=B", "-c", "user.email=b@b", "commit", "-qm", "calc")
        base = _git(repo, "rev-parse", "HEAD").strip()
        patch = _diff(repo, "calc.py", f"# task {n}\n{FIXED}")
        test_patch = _diff(repo, "tests/test_add.py", HIDDEN)
        task = {"instance_id": f"t{n}", "repo": repo.name, "base_commit": base,
                "problem_statement": "add subtracts", "patch": patch, "test_patch": test_patch,
                "FAIL_TO_PASS": ["tests/test_add.py::test_add"], "PASS_TO_PASS": p2p}  # fmt: skip
        lines.append(json.dumps(task))
    (root / "tasks.jsonl").write_text("\n".join(lines) + "\n")
    return root / "calc0", ["tests/test_add.py::test_add", *p2p]


def tests_alone(repo: Path, ids: list[str], repeat: int) -> tuple[float, float]:
    """Median seconds of the hidden test command on the fixed tree: bare and sandboxed."""
    (repo / "calc.py").write_text(FIXED)  # the fixed tree, as the run leaves it
    (repo / "tests" / "test_add.py").write_text(HIDDEN)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--tb=short", *ids]
    launcher = make_launcher()
    bare, boxed = [], []
    for _ in range(repeat):
        began = time.monotonic()
        subprocess.run(argv, cwd=repo, capture_output=True, check=True)
        bare.append(time.monotonic() - began)
        result = launcher.run(argv, workspace=repo, limits=Limits(timeout_s=120))
        assert result.exit_code == 0, result.stdout[-500:]
        boxed.append(result.duration_s)
    _git(repo, "checkout", "-q", "calc.py")
    (repo / "tests" / "test_add.py").unlink()
    return statistics.median(bare), statistics.median(boxed)


class _Quiet:
    def print(self, text: str, /) -> None:
        pass


async def run_eval(root: Path, name: str, concurrency: int) -> tuple[float, dict[str, Any]]:
    """Wall seconds of an oracle eval of every task, and its report."""
    options = EvalOptions(tasks_file=root / "tasks.jsonl", out=root / name, cache=root / "cache",
                          concurrency=concurrency, oracle=True)  # fmt: skip
    selection = prepare(options)
    async with Runner.open(Settings.from_env()) as runner:
        began = time.monotonic()
        data = await evaluate(options, selection, runner, _Quiet())
        wall = time.monotonic() - began
    errors = [r["error"] for r in data["results"] if r["error"]]
    assert data["totals"]["resolved"] == len(selection.tasks), errors[:1]
    return wall, data


def _phases(data: dict[str, Any]) -> dict[str, float]:
    results = data["results"]
    out = {
        p: statistics.median(r["phases"][p] for r in results) for p in ("source", "run", "hidden")
    }
    out["total"] = statistics.median(r["seconds"] for r in results)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--tests", type=int, default=30, help="PASS_TO_PASS tests per task")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-eval-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("SHIPYARD_HOME", str(root / "home"))
        repo, ids = build(root, args.tasks, args.tests)
        bare, boxed = tests_alone(repo, ids, repeat=args.tasks)
        wall1, data1 = asyncio.run(run_eval(root, "c1", 1))
        wall2, _ = asyncio.run(run_eval(root, "c2", 2))
    ph = _phases(data1)
    harness = ph["total"] - ph["run"]
    print(f"tasks: {args.tasks}, tests per task: {len(ids)} (medians, seconds)")
    print("| measure | s |\n|---|---:|")
    print(f"| tests alone, bare subprocess | {bare:.2f} |")
    print(f"| tests alone, in the sandbox | {boxed:.2f} |")
    for name in ("source", "run", "hidden", "total"):
        print(f"| harness per task: {name} | {ph[name]:.2f} |")
    print(f"| harness per task without the run (source + hidden + bookkeeping) | {harness:.2f} |")
    print(f"\nharness share / tests alone (bare): {harness / bare:.2f}x; "
          f"(sandboxed): {harness / boxed:.2f}x")  # fmt: skip
    print(f"throughput: concurrency 1 {args.tasks / wall1 * 60:.1f} tasks/min ({wall1:.1f} s), "
          f"concurrency 2 {args.tasks / wall2 * 60:.1f} tasks/min ({wall2:.1f} s): "
          f"{wall1 / wall2:.2f}x")  # fmt: skip
    print(f"cost per task: ${data1['totals']['cost_usd'] / args.tasks:.4f} (oracle: no model)")


if __name__ == "__main__":
    main()
