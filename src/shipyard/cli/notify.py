"""``shipyard notify status | drain``: the notification outbox seen and sent from the CLI,
and ``after_command``: the bounded send after each command that drives a run.

The CLI has no sender running in the background (``serve`` and ``worker`` do): a command
that drove a run sends the events it can before it exits (``notify.flush``, at most
``SHIPYARD_NOTIFY_CLI_WAIT_S`` seconds), and ``notify drain`` sends what is still queued.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

import psycopg
from rich.console import Console
from rich.markup import escape

from shipyard.cli.dispatch import own_resources
from shipyard.errors import InfrastructureError, ShipyardError
from shipyard.notify import config as notify_config
from shipyard.notify.config import NotifyConfig
from shipyard.notify.flush import Tally, cli_wait_s, flush, pool_for, tally
from shipyard.settings import Settings
from shipyard.store import check_reachable, migrate, resolve_database_url

log = logging.getLogger(__name__)


class EndpointUnreachableError(InfrastructureError):
    """Events are still pending for an endpoint after ``notify drain``'s wait (exit 3); they
    stay queued."""


async def after_command(database_url: str, err: Console) -> None:
    """Send the events of configured endpoints that can go now, for at most
    ``SHIPYARD_NOTIFY_CLI_WAIT_S`` seconds; say in one line what stays queued. No endpoint
    configured (or a wait of 0): nothing, not even a connection. Never raises: the
    command's own outcome stands."""
    try:
        config = notify_config.current()
        wait_s = cli_wait_s(os.environ)
        if not config.endpoints or wait_s == 0:
            return
        left = await flush(database_url, config, wait_s=wait_s)
    except ShipyardError as exc:
        err.print(f"[yellow]notify:[/yellow] {escape(str(exc))}", soft_wrap=True)
        return
    except (psycopg.Error, OSError) as exc:  # the database went away: the rows wait
        log.warning("notify: cannot send queued events: %s", exc)
        err.print(f"[yellow]notify:[/yellow] events not sent ({escape(str(exc))}); " + _LATER)
        return
    for line in _pending_lines(left):
        err.print(f"[yellow]notify:[/yellow] {line}; {_LATER}", soft_wrap=True)


_LATER = "they stay queued: `shipyard notify drain`, or any `shipyard serve` / `worker`, sends them"


@own_resources
async def cmd_notify(args: argparse.Namespace, _runner: object, console: Console) -> int:
    """``status``: per destination, pending / failed / sent and the oldest pending.
    ``drain``: send what is pending for the endpoints configured here, waiting up to
    ``--wait`` seconds for retries; exit 0 when none is left pending, 3 otherwise."""
    config = notify_config.current()
    url = resolve_database_url(Settings.from_env())
    check_reachable(url)  # an unreachable database: the error every command gives
    migrate(url)
    if args.action == "status":
        async with pool_for(url) as pool:
            _print_status(console, config, await tally(pool))
        return 0
    return await _drain(console, url, config, args.wait)


async def _drain(console: Console, url: str, config: NotifyConfig, wait_s: float) -> int:
    if not wait_s >= 0:  # negative, or not a number
        raise notify_config.NotifyConfigError(f"--wait {wait_s}: expected 0 or more seconds")
    if not config.endpoints:
        console.print("no notification endpoint is configured here: nothing to send")
        return 0
    async with pool_for(url) as pool:
        before = sum(t.sent for t in await tally(pool, [e.name for e in config.endpoints]))
    left = await flush(url, config, wait_s=wait_s, patient=True)
    sent = max(sum(t.sent for t in left) - before, 0)
    lines = _pending_lines(left)
    if lines:
        raise EndpointUnreachableError(f"{'; '.join(lines)} (sent {sent}; the rest stay queued)")
    failed = sum(t.failed for t in left)
    note = f"; {failed} failed for good (see `shipyard notify status`)" if failed else ""
    console.print(f"sent {sent}; nothing pending for the configured endpoints{note}")
    return 0


def _pending_lines(tallies: Sequence[Tally]) -> list[str]:
    """One line per endpoint that still has pending events: which, how many, why."""
    lines = []
    for t in tallies:
        if t.pending:
            why = f"unreachable: {t.last_error}" if t.last_error else "not sent in time"
            lines.append(f"endpoint {t.target} ({t.url}) {why}; {t.pending} event(s) pending")
    return lines


def _print_status(console: Console, config: NotifyConfig, tallies: Sequence[Tally]) -> None:
    seen = {t.target for t in tallies if t.kind == "notify"}
    unused = [e for e in config.endpoints if e.name not in seen]
    if not tallies and not unused:
        console.print("no notification endpoint is configured, and the outbox is empty")
    for t in tallies:
        name = "run webhooks" if t.kind == "webhook" else f"endpoint {t.target} ({t.url})"
        here = t.kind == "webhook" or config.endpoint(t.target) is not None
        line = f"{name}: {t.pending} pending, {t.failed} failed, {t.sent} sent"
        if t.oldest_pending is not None:
            line += f"; oldest pending since {t.oldest_pending.isoformat(timespec='seconds')}"
        if t.last_error:
            line += f"; last error: {t.last_error}"
        if not here:
            line += " (not configured here: sent by the processes that configure it)"
        console.print(escape(line), soft_wrap=True)
    for endpoint in unused:
        console.print(escape(f"endpoint {endpoint.name} ({endpoint.url}): nothing queued"))


__all__ = ["EndpointUnreachableError", "after_command", "cmd_notify"]
