"""Start the official dev server (``langgraph dev``, from ``langgraph-cli[inmem]``) on the
probe graphs, for the compatibility test and the server benchmark.

``langgraph-cli[inmem]`` is not a project dependency: install it in a venv of its own and
point ``SHIPYARD_LANGGRAPH_DEV`` at that venv's ``langgraph`` executable::

    python3 -m venv /tmp/lgdev && /tmp/lgdev/bin/pip install "langgraph-cli[inmem]" -e .
    export SHIPYARD_LANGGRAPH_DEV=/tmp/lgdev/bin/langgraph
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
PROBES = ROOT / "src" / "shipyard" / "probe_graphs.py"
ENV_VAR = "SHIPYARD_LANGGRAPH_DEV"


def langgraph_executable() -> str | None:
    """The ``langgraph`` CLI named by ``SHIPYARD_LANGGRAPH_DEV``, or ``None``."""
    given = os.environ.get(ENV_VAR, "").strip()
    if not given:
        return None
    path = Path(given)
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PROBE_GRAPHS = {
    "probe_chain": f"{PROBES}:chain",
    "probe_interrupt": f"{PROBES}:interrupt_graph",
    "probe_chat": f"{PROBES}:chat_graph",
}
SHIPYARD_GRAPH = {"shipyard": f"{ROOT / 'src' / 'shipyard' / 'graph.py'}:graph"}


def write_config(directory: Path, graphs: Mapping[str, str] = PROBE_GRAPHS) -> Path:
    """A ``langgraph.json`` serving ``graphs`` (default: only the probe graphs)."""
    config = {"dependencies": [str(ROOT)], "graphs": dict(graphs)}
    path = directory / "langgraph.json"
    path.write_text(json.dumps(config))
    return path


def wait_ok(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ok", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server did not answer /ok within {timeout_s}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group; SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


@contextmanager
def langgraph_dev(
    executable: str,
    workdir: Path,
    timeout_s: float = 120.0,
    *,
    graphs: Mapping[str, str] = PROBE_GRAPHS,
    environ: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """``langgraph dev`` on a free port in ``workdir`` serving ``graphs``, with ``environ``
    added to its environment; yields its URL, stops it on exit."""
    port = free_port()
    config = write_config(workdir, graphs)
    env = {
        **os.environ,
        **(environ or {}),
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGSMITH_TRACING": "false",
    }
    env.pop("LANGSMITH_API_KEY", None)
    log = workdir / "langgraph-dev.log"
    command = [executable, "dev", "--no-browser", "--no-reload", "--port", str(port)]
    command += ["--config", str(config)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ok(url, process, log, timeout_s)
        yield url
    finally:
        stop(process)
        shutil.rmtree(workdir / ".langgraph_api", ignore_errors=True)


def process_pid(process: subprocess.Popen[bytes]) -> int:
    return process.pid
