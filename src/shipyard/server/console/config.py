"""The console's own configuration, read from the environment when the app is built.

* ``SHIPYARD_CONSOLE_REPOS``: the repositories "Start a run" offers as choices, paths
  separated by ``os.pathsep`` (default: none; a typed path is always possible).
* ``SHIPYARD_CLI_OWNER``: with API keys, the owner who sees the runs ``shipyard run``
  started (default: nobody).

Runs started from the CLI have no thread, hence no owner. Without API keys on loopback they
belong to the local owner, who is everyone. With keys they are shown to the owner named by
``SHIPYARD_CLI_OWNER`` only (unset: to nobody, since the machine's user is not any key's
owner unless someone says so).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request

from shipyard.server.stores.keys import LOCAL_OWNER

REPOS_ENV = "SHIPYARD_CONSOLE_REPOS"
CLI_OWNER_ENV = "SHIPYARD_CLI_OWNER"


@dataclass(frozen=True)
class ConsoleConfig:
    """What ``mount`` read from the environment."""

    repos: tuple[str, ...] = ()
    """Repository paths "Start a run" offers, in the configured order."""
    cli_owner: str | None = None
    """With API keys, the owner of CLI-started runs (``None``: nobody)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ConsoleConfig:
        """The configuration ``env`` describes (blank entries ignored)."""
        raw = env.get(REPOS_ENV, "")
        repos = tuple(dict.fromkeys(p.strip() for p in raw.split(os.pathsep) if p.strip()))
        return cls(repos=repos, cli_owner=env.get(CLI_OWNER_ENV, "").strip() or None)

    def cli_owner_for(self, keys: bool) -> str | None:
        """Who owns CLI-started runs: the local owner without keys, else ``cli_owner``."""
        return self.cli_owner if keys else LOCAL_OWNER


def config_of(request: Request) -> ConsoleConfig:
    """The configuration of the app serving ``request``."""
    config = getattr(request.app.state, "console", None)
    return config if isinstance(config, ConsoleConfig) else ConsoleConfig()


__all__ = ["CLI_OWNER_ENV", "REPOS_ENV", "ConsoleConfig", "config_of"]
