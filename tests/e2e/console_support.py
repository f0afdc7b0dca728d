"""Helpers for the console's browser tests: Debian's Chromium driven by Playwright, a page
that records every request it makes, runs started over the API or by the ``shipyard``
command on the same database, scripted models.

``browser()`` skips (with the reason) when Playwright or a Chromium cannot be found — the
only case a browser test may skip. ``scripts/setup.sh`` installs Debian's ``chromium`` when
run as root.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import call, finish, plan_reply, wait_until

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHECK_X = (
    "import pathlib\n\n\ndef test_x():\n    assert pathlib.Path('x').read_text() != 'broken\\n'\n"
)
REFINE_FILES = {"x": "x\n", "tests/test_x.py": CHECK_X}
"""A repository whose test passes at the base commit and fails while ``x`` says ``broken``
(what ``refine_script``'s first attempt writes; its second writes ``y``)."""
SIGN_OFF = {"approvals": {"plan": "always", "changes": "always"}}
"""The ``shipyard`` command of the interpreter running the tests."""


def chromium_path() -> str | None:
    """Debian's Chromium (or ``SHIPYARD_CHROMIUM``), if installed."""
    explicit = os.environ.get("SHIPYARD_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium; skips with the reason when none can be started."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found: run scripts/setup.sh as root (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Tab:
    """A browser page and every URL it requested."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Console errors and uncaught exceptions (a blocked script or style shows here)."""

    def foreign(self, origin: str) -> list[str]:
        """Requests that went anywhere but ``origin``."""
        return [u for u in self.requests if not u.startswith(origin + "/")]


def open_tab(launched: Any) -> Tab:
    """A fresh context (own cookies) with one page recording its requests."""
    context = launched.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    tab = Tab(page)
    page.on("request", lambda request: tab.requests.append(request.url))
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    return tab


def start_run(
    url: str, goal: str, repo: Path, policy: dict[str, Any], api_key: str | None = None
) -> str:
    """Start a Shipyard run over the API (in the background); its thread id."""
    headers = {"x-api-key": api_key} if api_key else {}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        tid = str(http.post("/threads", json={}).raise_for_status().json()["thread_id"])
        body = {
            "assistant_id": "shipyard",
            "input": {"goal": goal, "repo": str(repo), "policy": policy},
        }
        http.post(f"/threads/{tid}/runs", json=body).raise_for_status()
    return tid


def wait_listed(url: str, tid: str, api_key: str | None = None) -> None:
    """Wait until the worker has recorded the run (its page exists from then on)."""
    headers = {"x-api-key": api_key} if api_key else {}

    def listed() -> bool:
        state = httpx.get(f"{url}/threads/{tid}/state", headers=headers, timeout=30).json()
        return bool(state.get("values", {}).get("run_id"))

    wait_until(listed, what=f"run {tid} recorded")


def refine_script(
    root: Path, *, title: str = "create x", extra: dict[str, Any] | None = None
) -> Path:
    """A scripted model: one step whose first attempt breaks ``REFINE_FILES``' test and
    whose second fixes it (``x`` becomes ``y``); two plans (for a revise)."""
    script = {
        "planner": [plan_reply(("s1", title)), plan_reply(("s1", f"{title}, revised"))],
        "developer": {
            "s1/1": [call("write_file", path="x", content="broken\n"), finish()],
            "s1/2": [call("write_file", path="x", content="y\n"), finish()],
        },
        **(extra or {}),
    }
    path = root / "script.json"
    path.write_text(json.dumps(script))
    return path


def screenshot(page: Any, name: str) -> None:
    """Save the page for the README (``docs/screenshots``)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
