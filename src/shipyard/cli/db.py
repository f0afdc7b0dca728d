"""``shipyard db url | stop``: the embedded Postgres under ``SHIPYARD_HOME``."""

from __future__ import annotations

import argparse

from rich.console import Console

from shipyard.cli.dispatch import own_resources
from shipyard.errors import UserInputError
from shipyard.settings import Settings
from shipyard.store.database import mask_password
from shipyard.store.embedded import stop_embedded
from shipyard.store.plain_connection import resolve_database_url


@own_resources
async def cmd_db(args: argparse.Namespace, _runner: object, console: Console) -> int:
    """``db url`` prints the database URL (starting the embedded server if it is the one in
    use); ``db stop`` stops the embedded server (later commands start it again)."""
    settings = Settings.from_env()
    if args.action == "url":
        console.print(mask_password(resolve_database_url(settings)), soft_wrap=True)
        return 0
    if settings.database_url:
        raise UserInputError("DATABASE_URL is set: that server is not Shipyard's to stop")
    stopped = stop_embedded(settings.pgdata)
    console.print(
        f"embedded Postgres in {settings.pgdata}: {'stopped' if stopped else 'not running'}"
    )
    return 0
