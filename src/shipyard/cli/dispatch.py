"""Carrying out one ``shipyard`` sub-command: import its function, give it what it needs, and
turn what goes wrong into one line and an exit code.

A command function is ``async def cmd(args, runner, console) -> int``. Most get a ``Runner``
(database, checkpointer, sandbox, models: ``Runner.open``); one marked ``opens_own_resources``
(``own_resources``) gets ``None`` and opens only what it needs — the demo, ``db``, the
server's commands, and the read-only listings whose start-up time matters. One marked
``sends_notifications`` (it drives a run) sends the notifications it queued before the
process exits (``cli/notify.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from rich.markup import escape

from shipyard.cli.console import RedactingConsole
from shipyard.cli.log_file import log_to_file
from shipyard.errors import ShipyardError
from shipyard.settings import Settings

Command = Callable[[argparse.Namespace, Any, Any], Awaitable[int]]
F = TypeVar("F")


def own_resources(fn: F) -> F:
    """Mark a command that opens its own resources (it gets ``None`` for the runner)."""
    fn.opens_own_resources = True  # type: ignore[attr-defined]
    return fn


def sends_notifications(fn: F) -> F:
    """Mark a command that drives a run: when it returns or fails, the notifications it
    queued are sent before the process exits, within a short wait (``cli/notify.py``)."""
    fn.sends_notifications = True  # type: ignore[attr-defined]
    return fn


def dispatch(args: argparse.Namespace) -> int:
    """Run the command ``args.command`` names; its exit code, or the error's."""
    fn = _resolve(args.command)
    console = RedactingConsole(highlight=False)
    err = RedactingConsole(stderr=True, highlight=False)
    try:
        return asyncio.run(_call(fn, args, console))
    except ShipyardError as exc:
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", markup=True, soft_wrap=True)
        return exc.exit_code
    except Exception as exc:
        from shipyard.store.outage import database_outage  # noqa: PLC0415  (SQLAlchemy: heavy)

        if not database_outage(exc):
            raise
        err.print(f"[bold red]error:[/bold red] {escape(_outage_line(exc))}", soft_wrap=True)
        return 3
    except KeyboardInterrupt:
        err.print("interrupted; the run is checkpointed — continue with `shipyard resume RUN`")
        return 130


def _resolve(target: str) -> Command:
    module, _, name = target.partition(":")
    fn: Command = getattr(importlib.import_module(module), name)
    return fn


def _outage_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (
        f"the database went away ({first}); runs are kept at their last checkpoint: when "
        "Postgres is back, `shipyard runs` shows them and `shipyard resume RUN` continues one"
    )


async def _call(fn: Command, args: argparse.Namespace, console: RedactingConsole) -> int:
    log_to_file(Settings.from_env().home)  # library log records: not on the terminal
    if getattr(fn, "opens_own_resources", False):
        return await fn(args, None, console)
    from shipyard.lifecycle.runner import Runner  # noqa: PLC0415  (LangGraph and the sandbox: heavy)

    async with Runner.open(Settings.from_env()) as runner:
        if not getattr(fn, "sends_notifications", False):
            return await fn(args, runner, console)
        from shipyard.cli.notify import after_command  # noqa: PLC0415  (only after a run)

        err = RedactingConsole(stderr=True, highlight=False)
        try:
            code = await fn(args, runner, console)
        except Exception:
            await after_command(runner.database_url, err)
            raise
        await after_command(runner.database_url, err)
        return code
