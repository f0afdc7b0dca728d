"""Shipyard's LangGraph-compatible server (DESIGN §9): FastAPI app, stores, auth, routes.

Importing does no I/O. ``create_app(settings, options)`` builds the app; its lifespan opens
the database, checkpointer, graphs and workers.
"""

from __future__ import annotations

from shipyard.server.app import ServerOptions, create_app
from shipyard.server.state import ServerState, server_state

__all__ = ["ServerOptions", "ServerState", "create_app", "server_state"]
