"""The runs list offers one status filter per ``RunStatus`` (derived from the contract, so a
new status cannot be left out), waiting-for-me first, each selecting its stored status."""

from __future__ import annotations

import os
from typing import get_args

from shipyard.contracts import RunStatus
from shipyard.server.console.config import ConsoleConfig
from shipyard.server.console.listing import FILTER_STATUS, STATUS_FILTERS


def test_every_run_status_has_exactly_one_filter() -> None:
    statuses = list(get_args(RunStatus))
    assert sorted(FILTER_STATUS.values()) == sorted(statuses)
    assert set(STATUS_FILTERS) == set(FILTER_STATUS)
    assert len(STATUS_FILTERS) == len(statuses)


def test_waiting_comes_first_and_means_awaiting_approval() -> None:
    assert STATUS_FILTERS[0] == "waiting"
    assert FILTER_STATUS["waiting"] == "awaiting_approval"
    rest = [s for s in get_args(RunStatus) if s != "awaiting_approval"]
    assert list(STATUS_FILTERS[1:]) == rest
    assert all(FILTER_STATUS[name] == name for name in rest)


def test_console_config_from_the_environment() -> None:
    sep = os.pathsep
    repos = f" /a/one {sep}/b/two{sep}{sep}/a/one "
    env = {"SHIPYARD_CONSOLE_REPOS": repos, "SHIPYARD_CLI_OWNER": " ci "}
    config = ConsoleConfig.from_env(env)
    assert config.repos == ("/a/one", "/b/two")
    assert config.cli_owner_for(True) == "ci"
    assert config.cli_owner_for(False) == "local"
    assert ConsoleConfig.from_env({}).cli_owner_for(True) is None
