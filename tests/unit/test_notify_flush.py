"""How long a CLI command spends sending its notifications (``SHIPYARD_NOTIFY_CLI_WAIT_S``):
the default, explicit values, and each value refused with the variable named."""

from __future__ import annotations

import pytest

from shipyard.notify.config import NotifyConfigError
from shipyard.notify.flush import CLI_WAIT_S, cli_wait_s


def test_unset_or_empty_is_the_default() -> None:
    assert cli_wait_s({}) == CLI_WAIT_S
    assert cli_wait_s({"SHIPYARD_NOTIFY_CLI_WAIT_S": ""}) == CLI_WAIT_S


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("2.5", 2.5), ("30", 30.0)])
def test_seconds_are_taken_as_given(text: str, seconds: float) -> None:
    assert cli_wait_s({"SHIPYARD_NOTIFY_CLI_WAIT_S": text}) == seconds


@pytest.mark.parametrize("text", ["soon", "-1", "nan", "inf", "3s"])
def test_a_value_that_is_not_seconds_is_refused_by_name(text: str) -> None:
    with pytest.raises(NotifyConfigError, match=r"SHIPYARD_NOTIFY_CLI_WAIT_S=.*0 or more"):
        cli_wait_s({"SHIPYARD_NOTIFY_CLI_WAIT_S": text})
