"""Checkpoint bytes per step of real Shipyard runs whose checks print ~1 MB of logs.

Usage: ``.venv/bin/python benchmarks/checkpoint_size.py [--steps 1 3 6] [--log-kb 1024]
[--failing 50]``

Each run goes through ``shipyard.lifecycle.runner.Runner`` with the scripted model (plan
approval off, so nothing waits) on a fresh git repository whose only check is pytest run
with ``-s``: a test prints ``--log-kb`` of output on every validation. Every plan step
writes one file and passes. One more run (``--failing``, 0 to skip) makes each step's first
attempt fail ``--failing`` parametrized tests (the same output spread over them), then
refine and pass.

For each run the checkpoint rows of its thread are read back and every superstep charged
with what it wrote: the ``checkpoints`` row (checkpoint JSON + metadata), the
``checkpoint_blobs`` rows its new channel versions point to, and the ``checkpoint_writes``
rows of the tasks that produced it. Reported: bytes per superstep (mean, max), per plan step
(total / steps), the largest channel blob, and the artifact bytes the logs took on disk.
Runs on a fresh database (``DATABASE_URL``'s server if set, else an embedded Postgres under a
temporary directory, removed afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from shipyard.store import psycopg_conninfo, resolve_database_url, stop_embedded, with_database

TARGET = 16 * 1024

NOISE = """import sys

def test_noise():
    sys.stdout.write(("x" * 99 + "\\n") * ({size} // 100))
"""
GATE = """import pathlib
import sys

import pytest

@pytest.mark.parametrize("i", range({count}))
def test_gate(i):
    sys.stdout.write(("y" * 99 + "\\n") * ({size} // 100 // {count}))
    assert pathlib.Path("gate.txt").read_text() == "open", f"gate {{i}} is closed"
"""


STEP_NODES = frozenset({"execute", "validate", "refine"})
"""Supersteps that repeat per plan step; the others happen once per run."""


@dataclass
class Sizes:
    """What one run wrote to the checkpoint tables: ``(node, bytes)`` per superstep."""

    label: str
    steps: int
    supersteps: list[tuple[str, int]]
    biggest: tuple[str, int]
    logs: int

    @property
    def total(self) -> int:
        return sum(size for _, size in self.supersteps)

    def row(self) -> str:
        sizes = [size for _, size in self.supersteps]
        per_step = sum(n for node, n in self.supersteps if node in STEP_NODES) / self.steps
        once = sum(n for node, n in self.supersteps if node not in STEP_NODES)
        top_node, top = max(self.supersteps, key=lambda item: item[1])
        mark = "yes" if top < TARGET and per_step < TARGET else "NO"
        cells = [
            self.label,
            str(self.steps),
            str(len(sizes)),
            f"{sum(sizes) / len(sizes) / 1024:.1f}",
            f"{top / 1024:.1f} ({top_node})",
            f"{per_step / 1024:.1f}",
            f"{once / 1024:.1f}",
            f"`{self.biggest[0]}` {self.biggest[1] / 1024:.1f}",
            f"{self.logs / 1024:.0f}",
            mark,
        ]
        return "| " + " | ".join(cells) + " |"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_repo(root: Path, log_bytes: int, failing: int) -> Path:
    """A repository whose pytest check prints ``log_bytes``; with ``failing``, a gate too."""
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_noise.py").write_text(NOISE.format(size=log_bytes))
    check = {"name": "pytest", "command": [sys.executable, "-m", "pytest", "-q", "-s"]}
    policy = "[approvals]\nplan = 'never'\n\n[[checks.run]]\n"
    policy += f"name = 'pytest'\ncommand = {json.dumps(check['command'])}\nkind = 'pytest'\n"
    if failing:
        (root / "tests" / "test_gate.py").write_text(GATE.format(size=log_bytes, count=failing))
        (root / "tests" / "test_noise.py").unlink()
        (root / "gate.txt").write_text("open")
    (root / ".shipyard.toml").write_text(policy)
    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "add", "-A")
    git(root, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "initial")
    return root


def script(steps: int, failing: bool) -> dict[str, Any]:
    """Planner: ``steps`` steps. Developer: each step writes a file (and, with ``failing``,
    closes the gate on attempt 1 and opens it on attempt 2)."""
    plan = {
        "summary": "benchmark plan",
        "risk": "low",
        "steps": [
            {"id": f"s{k}", "title": f"step {k}", "instructions": f"write step{k}.txt"}
            for k in range(1, steps + 1)
        ],
    }
    developer: dict[str, Any] = {}
    for k in range(1, steps + 1):
        write = {"name": "write_file", "args": {"path": f"step{k}.txt", "content": f"{k}\n"}}
        attempts = [("open", 1)] if not failing else [("closed", 1), ("open", 2)]
        for gate, attempt in attempts:
            calls = [write, {"name": "write_file", "args": {"path": "gate.txt", "content": gate}}]
            developer[f"s{k}/{attempt}"] = [
                {"tool_calls": calls if failing else [write]},
                {"tool_calls": [{"name": "finish", "args": {"summary": "done"}}]},
            ]
    return {"label": "benchmark", "planner": [{"json": plan}], "developer": developer}


SIZES_SQL = """
SELECT checkpoint_id, parent_checkpoint_id, checkpoint->'channel_versions' AS versions,
       octet_length(checkpoint::text) + octet_length(metadata::text) AS size
FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id
"""
BLOBS_SQL = """
SELECT channel, version, coalesce(octet_length(blob), 0) FROM checkpoint_blobs
WHERE thread_id = %s AND checkpoint_ns = ''
"""
WRITES_SQL = """
SELECT checkpoint_id, task_path, octet_length(blob) FROM checkpoint_writes
WHERE thread_id = %s AND checkpoint_ns = ''
"""


def measure_thread(url: str, thread: str) -> tuple[list[tuple[str, int]], tuple[str, int]]:
    """``(node, bytes)`` charged to each superstep of ``thread``; its largest channel blob.

    A superstep's bytes: its checkpoint row, the blobs of the channel versions that are new
    in it, and the writes of the tasks that ran from its parent (which produced it).
    """
    with psycopg.connect(psycopg_conninfo(url)) as conn:
        rows = conn.execute(SIZES_SQL, [thread]).fetchall()
        blobs = {(ch, v): n for ch, v, n in conn.execute(BLOBS_SQL, [thread])}
        writes: dict[str, tuple[str, int]] = {}
        for cid, path, size in conn.execute(WRITES_SQL, [thread]):
            node = path.rsplit(", ", 1)[-1] if path else "?"
            writes[cid] = (node, writes.get(cid, ("", 0))[1] + size)
    seen: dict[str, dict[str, str]] = {}
    supersteps = []
    for cid, parent, versions, size in rows:
        before = seen.get(parent or "", {})
        new = sum(blobs.get((ch, v), 0) for ch, v in versions.items() if before.get(ch) != v)
        node, written = writes.get(parent or "", ("input", 0))
        supersteps.append((node, size + new + written))
        seen[cid] = versions
    (channel, _), size = max(blobs.items(), key=lambda item: item[1], default=(("-", ""), 0))
    return supersteps, (channel, size)


async def one_run(
    settings: Settings, base: Path, steps: int, log_bytes: int, failing: int
) -> Sizes:
    """One whole run (its own scripted model) and what its thread wrote."""
    name = f"{'fail' if failing else 'pass'}-{steps}-{uuid.uuid4().hex[:6]}"
    repo = make_repo(base / name, log_bytes, failing)
    path = base / f"{name}.json"
    path.write_text(json.dumps(script(steps, bool(failing))))
    async with Runner.open(replace(settings, model_script=path)) as runner:
        stop = await runner.start(RunInput(goal="benchmark", repo=str(repo)))
    assert stop.status == "completed", (stop.status, stop.error)
    logs = sum(p.stat().st_size for p in (settings.artifacts / stop.run_id).rglob("*.log"))
    url = resolve_database_url(settings)
    sizes, biggest = measure_thread(url, stop.run_id)
    label = f"{failing} failing tests on attempt 1" if failing else "every step passes"
    return Sizes(label, steps, sizes, biggest, logs)


async def measure(settings: Settings, base: Path, args: argparse.Namespace) -> list[Sizes]:
    log_bytes = args.log_kb * 1024
    results = [await one_run(settings, base, n, log_bytes, 0) for n in args.steps]
    if args.failing:
        results.append(await one_run(settings, base, max(args.steps), log_bytes, args.failing))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 3, 6], help="plan sizes")
    parser.add_argument("--log-kb", type=int, default=1024, help="output of each pytest run")
    parser.add_argument("--failing", type=int, default=50, help="failing tests (0: skip)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="shipyard-bench-ckpt-"))
    external = os.environ.get("DATABASE_URL")
    name = f"shipyard_bench_{uuid.uuid4().hex[:10]}"
    try:
        if external:
            with psycopg.connect(psycopg_conninfo(external), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"database: DATABASE_URL server, database {name}")
        else:
            print(f"database: embedded Postgres in {base / 'home' / 'pgdata'}")
        url = with_database(external, name) if external else None
        settings = Settings(home=base / "home", database_url=url)
        results = asyncio.run(measure(settings, base, args))
    finally:
        if external:
            with psycopg.connect(psycopg_conninfo(external), autocommit=True) as conn:
                drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                conn.execute(drop.format(sql.Identifier(name)))
        else:
            stop_embedded(base / "home" / "pgdata")
        shutil.rmtree(base, ignore_errors=True)
    report(results, args.log_kb)


def report(results: list[Sizes], log_kb: int) -> None:
    print(f"each pytest run prints {log_kb} KB; target < {TARGET // 1024} KB per step\n")
    print(
        "| run | plan steps | supersteps | mean KB/superstep | max KB/superstep (node) | "
        "KB per plan step | KB once per run | largest blob | log KB on disk | < 16 KB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for result in results:
        print(result.row())
    passing = [r for r in results if r.label == "every step passes"]
    if len(passing) > 1:
        first, last = passing[0], passing[-1]
        marginal = (last.total - first.total) / (last.steps - first.steps)
        print(
            f"\nmarginal cost of one more plan step ({first.steps} -> {last.steps} steps): "
            f"{marginal / 1024:.1f} KB"
        )


if __name__ == "__main__":
    main()
