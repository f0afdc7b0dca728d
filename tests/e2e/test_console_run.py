"""The web console in a real browser, against a real server and Postgres with a scripted
model: a run appears in the list live, its plan is approved on its page, the timeline
advances without a reload (a failing check, the refine, the passing one), the changes are
approved and the page shows ``completed`` with the diff — and no request leaves the server.
The screenshots in docs/screenshots come from here."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.settings import Settings
from tests.e2e.console_support import (
    REFINE_FILES,
    SIGN_OFF,
    browser,
    open_tab,
    refine_script,
    screenshot,
    start_run,
)
from tests.e2e.runs_support import make_repo


@pytest.fixture
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def test_a_run_from_list_to_completed_through_the_console(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    repo = make_repo(tmp_path, REFINE_FILES)
    scripted = dataclasses.replace(settings, model_script=refine_script(tmp_path))
    running = start_server(None, scripted)
    tab = open_tab(chromium)
    page = tab.page

    page.goto(f"{running.url}/ui/")
    assert "No runs yet" in page.inner_text("#runs")
    tid = start_run(running.url, "create the x file", repo, SIGN_OFF)
    row = page.locator(f"tr[data-run-id='{tid}']")
    row.get_by_text("plan approval").wait_for()  # appeared and waits, without a reload
    assert "create the x file" in row.inner_text()

    row.get_by_role("link").click()
    page.wait_for_url(f"**/ui/runs/{tid}")
    page.evaluate("window.__notReloaded = true")  # gone if the page ever reloads
    decision = page.locator("#decision")
    decision.get_by_text("plan approval").wait_for()
    assert "create x" in decision.inner_text()
    decision.get_by_role("button", name="Approve").click()

    timeline = page.locator("#timeline")
    timeline.get_by_text("✘ failed: pytest").wait_for()
    timeline.locator(".name", has_text="refine").wait_for()
    timeline.get_by_text("✔ passed").wait_for()
    decision.get_by_text("changes approval").wait_for()
    assert page.evaluate("window.__notReloaded") is True
    assert "+y" in page.inner_text(".diff")
    screenshot(page, "console-approval.png")

    decision.get_by_role("button", name="Approve").click()
    page.locator("#run-status", has_text="completed").wait_for()
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator("#decision").count() == 0
    assert "x" in page.locator(".diff summary").first.inner_text()
    assert page.locator(".approvals td", has_text="approve").count() == 2
    assert page.locator(".evidence .check.passed").count() >= 1
    screenshot(page, "console-completed.png")

    with page.expect_download() as download:
        page.get_by_role("link", name="patch").click()
    assert "+y" in Path(download.value.path()).read_text()

    page.goto(f"{running.url}/ui/?status=completed")
    assert "create the x file" in page.inner_text("#runs")
    page.goto(f"{running.url}/ui/?q=nothing-like-this")
    assert "create the x file" not in page.inner_text("#runs")
    page.goto(f"{running.url}/ui/")
    screenshot(page, "console-runs.png")
    assert tab.requests and tab.foreign(running.url) == []
    assert tab.errors == []
