"""A worker process killed with SIGKILL mid-run: another worker process picks the run up
when the lease expires, continues from the last checkpoint, and no completed side effect
happens twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shipyard.server import ServerOptions
from shipyard.settings import Settings
from tests.e2e.runs_support import GRAPHS, ROOT, effects

LEASE_S = 2.0


def spawn_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    assert settings.database_url is not None
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.e2e.worker_main",
                str(settings.home),
                settings.database_url,
                str(LEASE_S),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


async def wait_for(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


async def test_killed_worker_run_is_finished_by_another_without_repeating_effects(
    start_server, make_client, settings: Settings, tmp_path: Path
) -> None:
    # The API server runs no workers: only the worker processes execute runs.
    running = start_server(ServerOptions(workers=0, graphs=GRAPHS, graphs_base=ROOT))
    sdk = make_client(running.url)
    work = tmp_path / "effects-dir"
    work.mkdir()
    first = spawn_worker(settings, tmp_path / "worker-a.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        tid = (await sdk.threads.create())["thread_id"]
        run = await sdk.runs.create(
            tid, "slow", input={"dir": str(work), "hold_s": 1.0}, durability="sync"
        )
        await wait_for(lambda: "hold-start" in effects(work))
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        assert (await sdk.runs.get(tid, run["run_id"]))["status"] == "running"

        second = spawn_worker(settings, tmp_path / "worker-b.log")
        result = await sdk.runs.join(tid, run["run_id"])
        recovered_s = time.monotonic() - killed_at
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)

    assert result["log"] == ["first", "hold", "last"]
    done = await sdk.runs.get(tid, run["run_id"])
    assert done["status"] == "success"
    # "first" completed before the crash and is not repeated; "hold" was cut short and ran
    # again from its start; everything after it ran once.
    assert effects(work) == ["first", "hold-start", "hold-start", "hold-done", "last"]
    assert (await sdk.threads.get(tid))["status"] == "idle"
    print(f"\nkill -> run completed elsewhere: {recovered_s:.2f}s (lease {LEASE_S}s)")
