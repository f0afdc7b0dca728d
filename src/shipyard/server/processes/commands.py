"""The server's CLI commands (their arguments: ``server/processes/command_line.py``):

* ``shipyard serve [--host 127.0.0.1] [--port 2024] [--workers N] [--worker-processes N]
  [--config langgraph.json]``
* ``shipyard worker [--workers N]`` — run workers only (another process or machine)
* ``shipyard keys create NAME --owner O`` (prints the secret once) / ``list`` / ``revoke ID``

Each command opens its own resources (no ``Runner``: ``cli.dispatch.own_resources``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shipyard.cli.dispatch import own_resources
from shipyard.errors import UserInputError
from shipyard.notify import config as notify_config
from shipyard.server.processes.gc_tuning import threshold_from
from shipyard.settings import Settings


def _graphs(config: Path | None) -> tuple[dict[str, str] | None, Path | None]:
    from shipyard.server.stores.graphs import read_langgraph_json  # noqa: PLC0415

    if config is None:
        default = Path.cwd() / "langgraph.json"
        if not default.is_file():
            return None, None
        config = default
    return read_langgraph_json(config), config.resolve().parent


def _open_auth(settings: Settings) -> Any:
    from shipyard.server.stores.keys import Auth  # noqa: PLC0415
    from shipyard.store import check_reachable, make_engine, migrate, resolve_database_url  # noqa: PLC0415

    url = resolve_database_url(settings)
    check_reachable(url)
    migrate(url)
    return Auth(make_engine(url))


@own_resources
async def serve_command(args: argparse.Namespace, _runner: object, console: Console) -> int:
    """Serve until interrupted; refuses a non-loopback host while no API key exists."""
    import uvicorn  # noqa: PLC0415

    from shipyard.server.app import ServerOptions, create_app  # noqa: PLC0415
    from shipyard.server.processes.supervisor import (  # noqa: PLC0415
        default_processes,
        parse_processes,
        serve_with_worker_processes,
    )
    from shipyard.server.stores.keys import check_bind, is_loopback  # noqa: PLC0415

    if args.workers < 0:
        raise UserInputError("--workers must be 0 or more")
    given = args.worker_processes
    processes = parse_processes(given) if given is not None else default_processes()
    threshold_from(os.environ)  # a bad SHIPYARD_GC_THRESHOLD stops here, not in the lifespan
    notify_config.load()  # so does a bad notification configuration (``shipyard.notify``)
    settings = Settings.from_env()
    auth = _open_auth(settings)
    try:
        keys_exist = auth.any_active()
    finally:
        auth.engine.dispose()
    check_bind(args.host, keys_exist)
    graphs, base = _graphs(args.config)
    options = ServerOptions(
        workers=args.workers,
        require_keys=not is_loopback(args.host),
        cors_origins=tuple(args.cors_origins or ("*",)),
        graphs=graphs,
        graphs_base=base,
    )
    mode = (
        "API keys required"
        if keys_exist or options.require_keys
        else ("no API keys: single owner 'local', loopback only")
    )
    where = f"{processes} worker processes" if processes else "in this process"
    console.print(
        f"Shipyard server on http://{args.host}:{args.port} ({mode}; "
        f"{args.workers} worker(s) {'each, ' if processes else ''}{where})"
    )

    async def serve(serving: ServerOptions) -> None:
        app = create_app(settings, serving)
        config = uvicorn.Config(app, host=args.host, port=args.port, ws="none")
        await uvicorn.Server(config).serve()

    if processes:
        await serve_with_worker_processes(serve, processes, options)
    else:
        await serve(options)
    return 0


@own_resources
async def worker_command(args: argparse.Namespace, _runner: object, console: Console) -> int:
    """Run workers until SIGTERM/SIGINT (they drain before exiting)."""
    from shipyard.server.processes.worker_process import run_worker_process  # noqa: PLC0415  (heavy; only here)

    threshold_from(os.environ)
    notify_config.load()
    graphs, base = _graphs(args.config)
    console.print(f"shipyard worker: {args.workers} worker(s); stop with Ctrl-C")
    await run_worker_process(
        Settings.from_env(),
        args.workers,
        lease_s=args.lease_seconds,
        graphs=graphs,
        graphs_base=base,
    )
    return 0


@own_resources
async def keys_command(args: argparse.Namespace, _runner: object, console: Console) -> int:
    """``keys create|list|revoke``."""
    auth = _open_auth(Settings.from_env())
    try:
        if args.keys_command == "create":
            key, secret = auth.create(args.name, args.owner)
            console.print(f"created key {key.id} for owner {key.owner!r} ({key.name})")
            console.print("secret (shown once; send it as the x-api-key header):")
            console.print(secret, soft_wrap=True)
        elif args.keys_command == "list":
            console.print(_keys_table(auth.list()))
        else:
            key = auth.revoke(args.id)
            console.print(f"revoked key {key.id} of owner {key.owner!r}")
    finally:
        auth.engine.dispose()
    return 0


def _keys_table(keys: list[Any]) -> Table:
    table = Table("id", "owner", "name", "created", "revoked")
    for key in keys:
        revoked = key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else ""
        table.add_row(
            key.id, key.owner, key.name, key.created_at.isoformat(timespec="seconds"), revoked
        )
    return table
