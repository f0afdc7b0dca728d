"""Everything a run carries is shown as text, never as markup: ``<script>`` planted in the
goal, the model's plan (and so the commit message), a file name and a failing test's
output reaches the pages escaped — nothing runs, no element is injected."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.settings import Settings
from tests.e2e.console_support import browser, open_tab, start_run, wait_listed
from tests.e2e.runs_support import make_repo
from tests.support import PASSING_TEST, call, finish

GOAL = "fix it <script>window.__pwned = 'goal'</script>"
MODEL = "<script>window.__pwned = 'model'</script>"
FILE = "<img src=x onerror=window.__pwned=1>.txt"
OUTPUT = "<script>window.__pwned = 'output'</script>"
CHECKED = "def test_out():\n    out = open('out').read()\n    assert out == 'ok\\n', out\n"
"""Passes at the base commit; fails, printing ``out``, once the developer writes it."""
POLICY = {"approvals": {"plan": "never"}, "budgets": {"attempts_per_step": 1}}


def _script(root: Path) -> Path:
    plan = {
        "summary": f"summary {MODEL}",
        "risk": "low",
        "steps": [{"id": "s1", "title": f"title {MODEL}", "instructions": f"do {MODEL}"}],
    }
    writes = [
        call("write_file", path=FILE, content=f"{MODEL}\n"),
        call("write_file", path="out", content=f"{OUTPUT}\n"),
        finish(MODEL),
    ]
    path = root / "script.json"
    script = {"planner": [{"json": plan}, {"json": plan}], "developer": {"s1/1": writes}}
    path.write_text(json.dumps(script))
    return path


def _injected(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => ({pwned: window.__pwned ?? null,
                   scripts: document.querySelectorAll('script').length,
                   images: document.querySelectorAll('img').length})"""
    )


@pytest.fixture
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def test_planted_markup_is_shown_as_text(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    running = start_server(None, dataclasses.replace(settings, model_script=_script(tmp_path)))
    url = running.url
    passing = make_repo(tmp_path / "a", {"out": f"{OUTPUT}\n", "tests/test_ok.py": PASSING_TEST})
    failing = make_repo(tmp_path / "b", {"out": "ok\n", "tests/test_out.py": CHECKED})
    done = start_run(url, GOAL, passing, {"approvals": {"plan": "never"}})
    wait_listed(url, done)
    stuck = start_run(url, GOAL, failing, POLICY)
    wait_listed(url, stuck)

    tab = open_tab(chromium)
    page = tab.page
    for run_id, status in ((done, "completed"), (stuck, "needs_human_review")):
        page.goto(f"{url}/ui/runs/{run_id}")
        page.locator("#run-status", has_text=status).wait_for()

    page.goto(f"{url}/ui/runs/{done}")
    text = page.inner_text("body")
    assert GOAL in text and f"title {MODEL}" in text and f"summary {MODEL}" in text
    assert FILE in page.inner_text(".diff")
    assert f"shipyard: title {MODEL}" in page.inner_text(".commits")  # the commit message
    assert _injected(page) == {"pwned": None, "scripts": 2, "images": 0}

    page.goto(f"{url}/ui/runs/{stuck}")
    page.locator(".failure summary").first.click()
    assert OUTPUT in page.inner_text(".evidence")
    assert _injected(page) == {"pwned": None, "scripts": 2, "images": 0}

    page.goto(f"{url}/ui/")
    assert page.inner_text("#runs").count(GOAL) == 2
    assert _injected(page) == {"pwned": None, "scripts": 2, "images": 0}
    assert tab.foreign(url) == []
