"""The server's sub-commands of ``shipyard`` (``serve``, ``worker``, ``keys``): their
arguments only. What they do is in ``server/processes/commands.py``, imported when one runs, so the
CLI's parser stays as cheap to build as Python is to start.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing would cost the CLI's --help
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

_COMMANDS = "shipyard.server.processes.commands"


def path(text: str) -> Path:
    """An argument that names a path (``pathlib`` is imported when one is given)."""
    from pathlib import Path  # noqa: PLC0415

    return Path(text)


def add_server_commands(sub: Any) -> None:
    """Add ``serve``, ``worker`` and ``keys`` to the CLI's sub-parsers."""
    serve = sub.add_parser("serve", help="the LangGraph-compatible API server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=2024)
    serve.add_argument("--workers", type=int, default=1, help="worker loops in each worker process")
    serve.add_argument(
        "--worker-processes",
        help="worker processes to start, each with --workers loops (default 0: the workers "
        "run in the server process; or SHIPYARD_WORKER_PROCESSES)",
    )
    serve.add_argument("--config", type=path, help="langgraph.json (default: ./langgraph.json)")
    serve.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        metavar="ORIGIN",
        help="allowed browser origin (repeatable; default: any)",
    )
    serve.set_defaults(command=f"{_COMMANDS}:serve_command")
    worker = sub.add_parser("worker", help="run queued runs (no HTTP listener)")
    worker.add_argument("--workers", type=int, default=1)
    worker.add_argument("--config", type=path, help="langgraph.json (default: ./langgraph.json)")
    worker.add_argument(
        "--lease-seconds", type=float, help="how long a claimed run is held without a heartbeat"
    )
    worker.set_defaults(command=f"{_COMMANDS}:worker_command")
    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key and print its secret once")
    create.add_argument("name")
    create.add_argument("--owner", required=True)
    keys.add_parser("list", help="list keys (never their secrets)")
    revoke = keys.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id")
    for parser in keys.choices.values():
        parser.set_defaults(command=f"{_COMMANDS}:keys_command")
