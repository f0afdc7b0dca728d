"""``shipyard serve --worker-processes N`` through the CLI and ``langgraph-sdk``: runs
complete in the worker processes, a killed worker process is replaced while the others keep
working, SIGTERM stops every process; a bad count is refused before anything starts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from langgraph_sdk.client import LangGraphClient

from shipyard.settings import Settings
from tests.e2e.langgraph_dev import free_port, wait_ok
from tests.e2e.runs_support import ROOT


def _serve(settings: Settings, port: int, log: Path) -> subprocess.Popen[bytes]:
    assert settings.database_url is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SHIPYARD_HOME": str(settings.home),
        "OTEL_TRACES_EXPORTER": "none",
    }
    command = [sys.executable, "-m", "shipyard.cli", "serve", "--port", str(port)]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*command, "--worker-processes", "2", "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _worker_processes(parent: int) -> list[psutil.Process]:
    """The worker processes under the server (not multiprocessing's helpers)."""
    found = []
    for child in psutil.Process(parent).children():
        try:
            if "resource_tracker" not in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


async def _chain_runs(sdk: LangGraphClient, n: int) -> list[int]:
    async def one() -> int:
        thread = await sdk.threads.create()
        result = await sdk.runs.wait(thread["thread_id"], "probe_chain", input={"count": 0})
        return int(result["count"])  # type: ignore[index, call-overload]

    return await asyncio.gather(*(one() for _ in range(n)))


async def test_worker_processes_run_the_runs_and_a_dead_one_is_replaced(
    settings: Settings, tmp_path: Path, make_client: Callable[..., LangGraphClient]
) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    process = _serve(settings, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ok(url, process, log, 120)
        sdk = make_client(url)
        deadline = time.monotonic() + 60
        while len(_worker_processes(process.pid)) < 2:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        assert await _chain_runs(sdk, 12) == [10] * 12

        victim = _worker_processes(process.pid)[0]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        assert await _chain_runs(sdk, 6) == [10] * 6  # the other process works meanwhile
        while (
            victim.pid in {p.pid for p in _worker_processes(process.pid)}
            or len(_worker_processes(process.pid)) < 2
        ):
            assert time.monotonic() < deadline + 60, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        assert f"worker process {victim.pid} exited" in log.read_text()
        assert await _chain_runs(sdk, 6) == [10] * 6

        children = _worker_processes(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert not any(child.is_running() and child.status() != "zombie" for child in children)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # whatever is left of the group
        process.wait(10)


def _refused(settings: Settings, args: list[str], **environ: str) -> str:
    """Run ``shipyard ARGS``, which must exit 2 before it starts anything: its stderr."""
    assert settings.database_url is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SHIPYARD_HOME": str(settings.home),
        **environ,
    }
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    return done.stderr


def test_a_bad_process_count_is_refused(settings: Settings) -> None:
    for bad in ("-1", "two"):
        stderr = _refused(settings, ["serve", "--port", "0", "--worker-processes", bad])
        assert f"--worker-processes must be a whole number (0 or more), not {bad!r}" in stderr


def test_a_bad_gc_threshold_is_refused_before_anything_starts(settings: Settings) -> None:
    for command in (["serve", "--port", "0"], ["worker"]):
        stderr = _refused(settings, command, SHIPYARD_GC_THRESHOLD="lots")
        assert "SHIPYARD_GC_THRESHOLD must be 'off'" in stderr
        assert "not 'lots'" in stderr


async def test_worker_processes_stop_when_the_server_is_killed(
    settings: Settings, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    process = _serve(settings, port, log)
    try:
        wait_ok(f"http://127.0.0.1:{port}", process, log, 120)
        children = _worker_processes(process.pid)
        assert len(children) == 2
        process.send_signal(signal.SIGKILL)  # no chance to stop them itself
        process.wait(10)
        _, alive = psutil.wait_procs(children, timeout=60)
        assert not alive, [p.pid for p in alive]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
