"""Notification configuration (``shipyard.notify.config``): endpoints from the environment
and the ``[notify]`` file; every mistake is named."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.notify.config import Endpoint, NotifyConfigError, load

NO_HOME = {"SHIPYARD_HOME": "/nonexistent-shipyard-home"}


def test_nothing_configured_means_no_endpoint() -> None:
    config = load(NO_HOME)
    assert config.endpoints == () and config.public_url is None
    assert (config.attempts, config.timeout_s, config.lease_s) == (8, 10.0, 15.0)


def test_the_environment_configures_one_endpoint() -> None:
    config = load(
        {
            **NO_HOME,
            "SHIPYARD_NOTIFY_URL": "https://hooks.example/a",
            "SHIPYARD_NOTIFY_SECRET": "s",
            "SHIPYARD_PUBLIC_URL": "https://ship.example/",
            "SHIPYARD_NOTIFY_ATTEMPTS": "3",
            "SHIPYARD_NOTIFY_TIMEOUT": "2",
        }
    )
    assert config.endpoints == (Endpoint("env", "https://hooks.example/a", "json", "s"),)
    assert config.console_url("r1") == "https://ship.example/ui/runs/r1"
    assert (config.attempts, config.timeout_s) == (3, 2.0)


def test_the_file_configures_named_endpoints(tmp_path: Path) -> None:
    file = tmp_path / "server.toml"
    file.write_text(
        '[notify]\npublic_url = "https://ship.example"\n'
        '[notify.endpoints.ops]\nurl = "https://hooks.example/ops"\nsecret_env = "OPS"\n'
        'events = ["run.failed", "approval.requested"]\n'
        '[notify.endpoints.chat]\nurl = "https://hooks.slack.com/x"\nformat = "slack"\n'
    )
    config = load({"SHIPYARD_HOME": str(tmp_path), "OPS": "ops-secret"})  # the default file
    ops, chat = config.endpoints
    assert (ops.name, ops.secret, ops.format) == ("ops", "ops-secret", "json")
    assert ops.wants("run.failed") and not ops.wants("run.completed")
    assert (chat.name, chat.format, chat.secret) == ("chat", "slack", None)
    assert chat.wants("run.completed")
    assert config.public_url == "https://ship.example"


@pytest.mark.parametrize(
    ("env", "toml", "message"),
    [
        ({"SHIPYARD_NOTIFY_URL": "https://h.example"}, None, "SHIPYARD_NOTIFY_SECRET is not"),
        ({"SHIPYARD_NOTIFY_URL": "hooks.example"}, None, "expected an http:// or https://"),
        (
            {"SHIPYARD_NOTIFY_URL": "https://h.example", "SHIPYARD_NOTIFY_FORMAT": "xml"},
            None,
            "SHIPYARD_NOTIFY_FORMAT='xml': expected one of json, slack",
        ),
        ({"SHIPYARD_NOTIFY_ATTEMPTS": "0"}, None, "SHIPYARD_NOTIFY_ATTEMPTS='0'"),
        ({"SHIPYARD_NOTIFY_TIMEOUT": "soon"}, None, "SHIPYARD_NOTIFY_TIMEOUT='soon'"),
        ({"SHIPYARD_WEBHOOK_ALLOW": "10.0.0.0/99"}, None, "SHIPYARD_WEBHOOK_ALLOW"),
        ({}, "[notify", "not valid TOML"),
        ({}, "notify = 1", "[notify] must be a table"),
        ({}, '[notify.endpoints.a]\nurl = "https://h"\n', "[notify.endpoints.a]: JSON"),
        ({}, '[notify.endpoints.a]\nurl = "https://h"\nsecret_env = "NOPE"\n', "NOPE is not set"),
        ({}, '[notify.endpoints.a]\nurl = "https://h"\nsecrets = 1\n', "unknown key(s)"),
        ({}, '[notify.endpoints.a]\nformat = "slack"\n', "url=''"),
        (
            {},
            '[notify.endpoints.a]\nurl = "https://h"\nformat = "slack"\nevents = ["run.done"]\n',
            "unknown event 'run.done'",
        ),
        ({}, "[notify.endpoints.a]\nurl = 5\n", "expected a string"),
    ],
)
def test_mistakes_are_named(
    tmp_path: Path, env: dict[str, str], toml: str | None, message: str
) -> None:
    file = tmp_path / "server.toml"
    if toml is not None:
        file.write_text(toml)
    with pytest.raises(NotifyConfigError, match=re.escape(message)):
        load(
            {**NO_HOME, "SHIPYARD_NOTIFY_CONFIG": str(file), **env} if toml else {**NO_HOME, **env}
        )


def test_a_named_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(NotifyConfigError, match="cannot read it"):
        load({"SHIPYARD_NOTIFY_CONFIG": str(tmp_path / "missing.toml")})


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_refuse_a_bad_configuration_before_starting(
    command: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path),
        "SHIPYARD_NOTIFY_URL": "https://hooks.example/a",
        "SHIPYARD_NOTIFY_FORMAT": "xml",
    }
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "SHIPYARD_NOTIFY_FORMAT='xml': expected one of json, slack" in done.stderr
