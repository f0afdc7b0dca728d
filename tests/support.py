"""Helpers for tests that drive whole runs (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from shipyard.settings import Settings

T = TypeVar("T")

WAIT_S = 30.0
"""How long ``wait_until`` / ``eventually`` wait by default: generous, so a loaded machine
(CI, several pytest sessions on two cores) only makes a test slower, never red."""

_POLL_S = 0.02

SHIPYARD = str(Path(sys.executable).with_name("shipyard"))
"""The ``shipyard`` command of the interpreter running the tests."""


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its stdout."""
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def wait_until(check: Callable[[], T], timeout: float = WAIT_S, what: str = "") -> T:
    """Call ``check`` until it returns something truthy and return that; fail (an
    ``AssertionError`` naming ``what``) once ``timeout`` seconds have passed without it.

    For tests that would otherwise sleep a fixed time and then assert: they wait for the
    condition instead, as briefly as the machine allows."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or check!r}")
        time.sleep(_POLL_S)
    return found


async def eventually(
    check: Callable[[], T | Awaitable[T]], timeout: float = WAIT_S, what: str = ""
) -> T:
    """``wait_until`` for async tests: ``check`` may be a plain or an async callable; the
    event loop keeps running between calls."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or check!r}")
        await asyncio.sleep(_POLL_S)


def cli_env(settings: Settings, script: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a ``shipyard`` subprocess on ``settings``' home and database, with
    the scripted model ``script``: this process's, without its Shipyard and OpenAI settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "OPENAI_"))}
    env.update(
        SHIPYARD_HOME=str(settings.home), DATABASE_URL=settings.database_url or "", COLUMNS="200"
    )
    if script is not None:
        env["SHIPYARD_MODEL_SCRIPT"] = str(script)
    env.update(extra)
    return env


def run_shipyard(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``shipyard ARGS`` to its end, its output captured (no check of the exit code)."""
    return subprocess.run(
        [SHIPYARD, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def shipyard_process(
    env: dict[str, str], *args: str, merge_stderr: bool = False, quiet: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """``shipyard ARGS`` in a process group of its own, killed (SIGKILL to the group: a crash
    of the process and its commands) and reaped when the block is left. ``quiet``: its
    output is dropped (for a test that never reads it, so no pipe fills up)."""
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    proc = subprocess.Popen(
        [SHIPYARD, *args],
        env=env,
        stdout=out,
        stderr=out if quiet or not merge_stderr else subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def wait_while_running(
    what: str, found: Callable[[], bool], proc: subprocess.Popen[str] | None, timeout: float = 90
) -> None:
    """Poll ``found`` until it is true; fail naming ``what`` if ``proc`` ends first (with its
    output) or ``timeout`` seconds pass. ``proc=None`` only waits."""
    deadline = time.monotonic() + timeout
    while not found():
        if proc is not None and proc.poll() is not None:
            output = "".join(s.read() for s in (proc.stdout, proc.stderr) if s)
            raise AssertionError(
                f"the process ended (exit {proc.returncode}) before {what}:\n{output}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def outbound_address() -> str | None:
    """An address of this machine that is not loopback (the one its default route uses),
    or ``None``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # no packet is sent
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") else address


class HelloServer:
    """A TCP server on ``host`` answering every connection with ``hello``, in a thread;
    ``accepted`` counts the connections. A context manager."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.sock.settimeout(0.2)
        self.host, self.port = host, int(self.sock.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            with conn:
                conn.sendall(b"hello")

    def __enter__(self) -> HelloServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def plan_reply(*steps: tuple[str, str], risk: str = "low") -> dict[str, Any]:
    """A planner reply with the given ``(id, title)`` steps."""
    return {
        "json": {
            "summary": "test plan",
            "risk": risk,
            "steps": [{"id": i, "title": t, "instructions": f"do {t}"} for i, t in steps],
        }
    }


def call(name: str, **args: Any) -> dict[str, Any]:
    """A developer reply making one tool call."""
    return {"tool_calls": [{"name": name, "args": args}]}


def finish(summary: str = "done") -> dict[str, Any]:
    """A developer reply ending the step."""
    return call("finish", summary=summary)


PASSING_TEST = "def test_ok():\n    assert True\n"
"""A repository test that passes whatever the change."""


def schema_diff(db_url: str, tables: set[str]) -> tuple[list[Any], set[str]]:
    """Alembic's differences between the migrated database and the declared metadata,
    restricted to ``tables`` (other modules declare theirs on the same ``Base``), and the
    names of the tables the database has."""
    from alembic.autogenerate import compare_metadata  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415

    from shipyard.store import make_engine  # noqa: PLC0415
    from shipyard.store.tables import Base  # noqa: PLC0415

    def include(name: str | None, type_: str, parent: dict[str, str | None]) -> bool:
        if type_ == "schema":
            return True
        return (name if type_ == "table" else parent.get("table_name")) in tables

    def include_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in tables

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            opts = {"include_name": include, "include_object": include_object}
            context = MigrationContext.configure(conn, opts=opts)
            return compare_metadata(context, Base.metadata), set(conn.dialect.get_table_names(conn))
    finally:
        engine.dispose()
