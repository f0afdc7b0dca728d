"""Several server processes on one port (``shipyard serve --processes N``).

One Python process runs one thread of Python at a time: graph steps, HTTP parsing and the
database driver of every run share it. ``serve_processes`` binds the port once and starts
``N`` identical processes on it (uvicorn's supervisor: a process that dies is replaced, and
SIGTERM/SIGINT reach every process, which drains its runs as a single server does). Each
process is a whole server — HTTP, its own worker loops, pools and listener — and a run a
client waits for runs in the process that took the request (``routes.runs.create_run``), so
nothing crosses processes but what always goes through Postgres. The options reach the
processes through ``CHILD_ENV``: the supervisor starts them fresh (``spawn``) and they build
their app with ``app_from_env``.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI

from shipyard.errors import UserInputError
from shipyard.server.app import ServerOptions, create_app
from shipyard.settings import Settings

CHILD_ENV = "SHIPYARD_SERVE_CHILD"
"""The options of a process started by ``serve_processes`` (JSON)."""

PROCESSES_ENV = "SHIPYARD_SERVE_PROCESSES"
"""Default for ``--processes``."""

MAX_DEFAULT_PROCESSES = 4
POOL_CONNECTIONS = 40
"""Database connections the processes' checkpointer pools share (each gets at least 10)."""


def default_processes() -> int:
    """``SHIPYARD_SERVE_PROCESSES``, else one per CPU, at most ``MAX_DEFAULT_PROCESSES``."""
    given = os.environ.get(PROCESSES_ENV)
    if given:
        return parse_processes(given, PROCESSES_ENV)
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_PROCESSES))


def parse_processes(text: str, source: str = "--processes") -> int:
    """A process count from the command line or the environment (``UserInputError`` if bad)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UserInputError(f"{source} must be a whole number of at least 1, not {text!r}")
    return value


def serve_processes(host: str, port: int, processes: int, options: ServerOptions) -> None:
    """Serve on ``host:port`` from ``processes`` processes until SIGTERM/SIGINT (blocks)."""
    import uvicorn  # noqa: PLC0415  (heavy; only here)
    from uvicorn.supervisors import Multiprocess  # noqa: PLC0415

    pool_size = max(10, POOL_CONNECTIONS // processes)
    os.environ[CHILD_ENV] = json.dumps(_encode(replace(options, pool_size=pool_size)))
    config = uvicorn.Config(
        f"{__name__}:app_from_env",
        factory=True,
        host=host,
        port=port,
        ws="none",
        workers=processes,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def app_from_env() -> FastAPI:
    """The app of one process started by ``serve_processes``."""
    encoded = os.environ.get(CHILD_ENV)
    if not encoded:
        raise RuntimeError(f"{CHILD_ENV} is not set: start processes with serve_processes")
    return create_app(Settings.from_env(), _decode(json.loads(encoded)))


def _encode(options: ServerOptions) -> dict[str, object]:
    return {
        "workers": options.workers,
        "require_keys": options.require_keys,
        "cors_origins": list(options.cors_origins),
        "max_body_bytes": options.max_body_bytes,
        "drain_s": options.drain_s,
        "graphs": options.graphs,
        "graphs_base": str(options.graphs_base) if options.graphs_base else None,
        "pool_size": options.pool_size,
    }


def _decode(data: dict[str, object]) -> ServerOptions:
    base = data.get("graphs_base")
    return ServerOptions(
        workers=int(str(data["workers"])),
        require_keys=bool(data["require_keys"]),
        cors_origins=tuple(str(o) for o in data["cors_origins"]),  # type: ignore[attr-defined]
        max_body_bytes=int(str(data["max_body_bytes"])),
        drain_s=float(str(data["drain_s"])),
        graphs=data["graphs"],  # type: ignore[arg-type]
        graphs_base=Path(str(base)) if base else None,
        pool_size=int(str(data["pool_size"])),
    )
