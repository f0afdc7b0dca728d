"""``shipyard stats [--since 7d]``: what the runs add up to, for a person.

The same numbers as ``GET /metrics`` (``store/stats.py``), over the runs created since a
moment: ``--since`` takes an age (``30m``, ``12h``, ``7d``, ``2w``) or an ISO date/time
(``2026-12-01``, ``2026-12-01T09:00:00+01:00``); without it, every run.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from shipyard.cli.dispatch import own_resources
from shipyard.cli.records import run_store
from shipyard.errors import UserInputError
from shipyard.settings import Settings
from shipyard.store.stats import EPOCH, RunStats

_AGE = re.compile(r"^(\d+)([mhdw])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | None, now: datetime | None = None) -> datetime:
    """The moment ``--since`` names; a value that names none is a ``UserInputError``."""
    if value is None:
        return EPOCH
    now = now or datetime.now(UTC)
    age = _AGE.match(value.strip())
    if age:
        return now - timedelta(**{_UNIT[age.group(2)]: int(age.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UserInputError(
            f"--since {value!r}: give an age such as 30m, 12h, 7d or 2w, or an ISO date"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stats_table(stats: RunStats) -> Table:
    """One row per figure, the same names a person reads in ``/metrics``."""
    since = "all time" if stats.since == EPOCH else f"since {stats.since:%Y-%m-%d %H:%M %Z}"
    table = Table("figure", "value", title=f"Shipyard runs, {since}", title_justify="left")
    for status, n in sorted(stats.by_status.items()):
        table.add_row(f"runs {status}", str(n))
    table.add_row("runs in all", str(stats.total))
    rate = stats.success_rate
    table.add_row("success rate", "—" if rate is None else f"{rate:.0%} of {stats.ended} ended")
    table.add_row("mean time to completion", _seconds(stats.mean_completion_s))
    table.add_row("approvals decided", str(stats.approvals_decided))
    table.add_row("mean approval wait", _seconds(stats.mean_approval_wait_s))
    table.add_row("approvals waiting", str(stats.approvals_waiting))
    table.add_row("retries (refines)", str(stats.retries))
    table.add_row("model calls / tool calls", f"{stats.model_calls} / {stats.tool_calls}")
    table.add_row("tokens in / out", f"{stats.input_tokens} / {stats.output_tokens}")
    table.add_row("cost", f"${stats.cost_usd:.4f}")
    return table


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"


@own_resources
async def cmd_stats(args: argparse.Namespace, _runner: object, console: Console) -> int:
    since = parse_since(args.since)
    with run_store(Settings.from_env()) as runs:
        console.print(stats_table(runs.stats(since)))
    return 0
