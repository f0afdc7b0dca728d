"""Shipyard's LangGraph-compatible server (docs/architecture.md §9): FastAPI app, stores,
auth, routes.

Importing does no I/O, and imports the app (FastAPI, LangGraph) only when one of its names is
used (``lazy_exports``). ``create_app(settings, options)`` builds the app; its lifespan opens
the database, checkpointer, graphs and workers.
"""

from __future__ import annotations

from shipyard import lazy_exports

TYPE_CHECKING = False  # not typing's: importing typing would cost the CLI's --help

if TYPE_CHECKING:
    from typing import Any

    from shipyard.server.app import ServerOptions, create_app
    from shipyard.server.deps import ServerState, server_state

__all__ = ["ServerOptions", "ServerState", "create_app", "server_state"]

_EXPORTS = {
    "ServerOptions": "shipyard.server.app",
    "create_app": "shipyard.server.app",
    "ServerState": "shipyard.server.deps",
    "server_state": "shipyard.server.deps",
}


def __getattr__(name: str) -> Any:
    return lazy_exports.attribute(__name__, _EXPORTS, name)
