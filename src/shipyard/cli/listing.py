"""``shipyard runs``: the newest runs, read from their records alone (``cli/records.py``)."""

from __future__ import annotations

import argparse

from rich.console import Console

from shipyard.cli.console import runs_table
from shipyard.cli.dispatch import own_resources
from shipyard.cli.records import newest_runs, records
from shipyard.settings import Settings


@own_resources
async def cmd_runs(args: argparse.Namespace, _runner: object, console: Console) -> int:
    with records(Settings.from_env()) as conn:
        runs = newest_runs(conn, 50)
    console.print(runs_table(runs))
    return 0
