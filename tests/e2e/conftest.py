"""End-to-end fixtures: the real server (uvicorn) on a free port, driven by the official
``langgraph_sdk`` async client.

* ``start_server(options=None, settings=None) -> RunningServer`` (function): starts
  ``create_app(settings, options)`` under uvicorn in a background thread, on a socket bound to
  ``127.0.0.1:0`` (never a fixed port), against the test's ``db_url`` database (through the
  ``settings`` fixture). Returns once the lifespan has finished (migrations, checkpointer,
  graphs, workers). Every server started is stopped (lifespan shutdown, workers drained) at
  teardown; ``RunningServer.stop()`` stops one earlier.
* ``server`` (function): ``start_server()`` with default options (one in-process worker when
  ``shipyard.server.runs.worker`` exists).
* ``client(api_key=None) -> LangGraphClient`` (function): an SDK client for ``server``; clients
  are closed at teardown. ``api_key=None`` sends no key (and ignores ``LANGSMITH_API_KEY``).
* ``make_client(url, api_key=None)``: the same for any ``RunningServer.url``.
* ``RunningServer.state``: the lifespan's ``ServerState`` (engine, saver, stores, auth, graphs)
  for arranging and asserting rows directly — e.g. ``state.auth.create("k", "alice")``.
* ``js_sdk`` (session): the official JavaScript SDK's folder (``tests/e2e/js``), installed
  once per lockfile; skips when node/npm are absent or the registry is unreachable.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from shipyard.server import ServerOptions, ServerState, create_app
from shipyard.settings import Settings
from tests.e2e.js_sdk import Unavailable as JsSdkUnavailable
from tests.e2e.js_sdk import install as js_sdk_install

_START_TIMEOUT_S = 60.0


@dataclass
class RunningServer:
    """A server started by ``start_server``."""

    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)

    @property
    def state(self) -> ServerState:
        """The running app's ``ServerState``."""
        state = self.app.state.server
        assert isinstance(state, ServerState)
        return state

    def stop(self) -> None:
        """Run the lifespan's shutdown and wait for the thread to end."""
        self.server.should_exit = True
        self.thread.join(timeout=_START_TIMEOUT_S)
        assert not self.thread.is_alive(), "server did not stop"


def run_server(settings: Settings, options: ServerOptions | None = None) -> RunningServer:
    """Start the app on a free loopback port in a thread; return when it serves."""
    app = create_app(settings, options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none")
    server = uvicorn.Server(config)
    running = RunningServer(f"http://127.0.0.1:{port}", app, server, threading.Thread())

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # reported by the fixture, not lost in the thread
            running.errors.append(err)
        finally:
            sock.close()

    running.thread = threading.Thread(target=serve, name=f"uvicorn-{port}", daemon=True)
    running.thread.start()
    waited = threading.Event()
    while not server.started and running.thread.is_alive():
        waited.wait(0.02)
    if not server.started:
        raise RuntimeError(f"server did not start: {running.errors!r}")
    return running


@pytest.fixture
def start_server(settings: Settings) -> Iterator[Callable[..., RunningServer]]:
    """Factory: ``start_server(options=None, settings=None)``; all are stopped at teardown."""
    started: list[RunningServer] = []

    def start(
        options: ServerOptions | None = None, settings_: Settings | None = None
    ) -> RunningServer:
        running = run_server(settings_ or settings, options)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()
        assert running.errors == [], running.errors


@pytest.fixture
def server(start_server: Callable[..., RunningServer]) -> RunningServer:
    """A server with default options."""
    return start_server()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., LangGraphClient]]:
    """Factory: ``make_client(url, api_key=None)``; clients are closed at teardown."""
    clients: list[LangGraphClient] = []

    def make(url: str, api_key: str | None = None) -> LangGraphClient:
        made = get_client(url=url, api_key=api_key)
        clients.append(made)
        return made

    yield make
    for made in clients:
        await made.aclose()


@pytest.fixture
def client(
    server: RunningServer, make_client: Callable[..., LangGraphClient]
) -> Callable[..., LangGraphClient]:
    """Factory: ``client(api_key=None)`` for ``server``."""
    return lambda api_key=None: make_client(server.url, api_key)


@pytest.fixture(scope="session")
def js_sdk() -> Path:
    """The official JavaScript SDK installed under ``tests/e2e/js`` (see ``tests/e2e/js_sdk.py``);
    skips with the reason when node/npm are absent or the registry is unreachable."""
    try:
        return js_sdk_install()
    except JsSdkUnavailable as err:
        pytest.skip(f"JavaScript SDK unavailable: {err}")
