"""``shipyard deliver RUN``: push a completed run's branch and open its pull request now,
retry a delivery that failed, or finish one that was cut short (``nodes/deliver.py``)."""

from __future__ import annotations

import argparse
import getpass

from rich.console import Console
from rich.markup import escape

from shipyard.cli.console import Display
from shipyard.cli.dispatch import sends_notifications
from shipyard.lifecycle.runner import Runner


@sends_notifications
async def cmd_deliver(args: argparse.Namespace, runner: Runner, console: Console) -> int:
    """Exit 0 when delivered, 1 when the delivery failed or was refused (the reason is
    printed; the run stays ``completed``)."""
    by = f"cli ({getpass.getuser()})"
    stop = await runner.deliver(args.run, by=by, on_event=Display(console))
    delivery = stop.report.delivery if stop.report is not None else None
    if delivery is None:
        console.print(f"run [bold]{stop.run_id}[/bold]: {stop.status}; nothing was delivered")
        return 1
    if delivery.status != "delivered":
        console.print(
            f"run [bold]{stop.run_id}[/bold]: {stop.status}; delivery {delivery.status}: "
            f"{escape(delivery.reason)}",
            soft_wrap=True,
        )
        return 1
    where = "pushed" if delivery.pushed else "already on the remote"
    console.print(f"run [bold]{stop.run_id}[/bold]: {escape(delivery.branch)} {where}")
    if delivery.pull_request_url:
        state = "opened" if delivery.opened else "already open"
        console.print(f"pull request ({state}): {escape(delivery.pull_request_url)}")
    return 0
