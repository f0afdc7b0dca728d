"""Cancel on a running run's page stops it the API's way: the run ends ``cancelled`` (its
report says so) and its page shows it; the Cancel button is gone."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.settings import Settings
from tests.e2e.console_support import browser, open_tab, refine_script, start_run, wait_listed
from tests.e2e.runs_support import make_repo

SLOW_TEST = "import time\n\n\ndef test_slow():\n    time.sleep(120)\n"


@pytest.fixture
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def test_cancel_a_running_run(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    repo = make_repo(tmp_path, {"tests/test_slow.py": SLOW_TEST})
    running = start_server(
        None, dataclasses.replace(settings, model_script=refine_script(tmp_path))
    )
    url = running.url
    tid = start_run(url, "wait for a slow test", repo, {"approvals": {"plan": "never"}})
    wait_listed(url, tid)
    tab = open_tab(chromium)
    page = tab.page
    page.goto(f"{url}/ui/runs/{tid}")
    page.locator("#timeline .name", has_text="validate").wait_for()  # the slow test runs
    page.get_by_role("button", name="Cancel").click()
    page.locator("#run-status", has_text="cancelled").wait_for()
    assert page.get_by_role("button", name="Cancel").count() == 0
    page.goto(f"{url}/ui/runs/{tid}")
    assert "cancelled" in page.inner_text("#run-status")
    assert tab.foreign(url) == []
