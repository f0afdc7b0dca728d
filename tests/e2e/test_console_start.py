"""Starting a run from the console: bad input (no repository there, a plan file that is not
JSON, a policy file that does not validate) is a form error and starts nothing; good input
starts the run the API's way and opens its page; Fork on the timeline runs that node again
(from the checkpoint before it). The repositories of ``SHIPYARD_CONSOLE_REPOS`` are offered
as choices; a typed path is used instead, and either is checked the same way."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.settings import Settings
from tests.e2e.console_support import browser, open_tab, refine_script
from tests.e2e.runs_support import make_repo
from tests.support import PASSING_TEST


@pytest.fixture
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def _submit(page: Any, url: str, goal: str, repo: str, plan: Path | None = None) -> Any:
    page.goto(f"{url}/ui/new")
    page.fill("textarea[name=goal]", goal)
    page.fill("input[name=repo]", repo)
    if plan is not None:
        page.set_input_files("input[name=plan]", str(plan))
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Start").click()
    return navigation.value


def _threads(url: str) -> int:
    return len(httpx.post(f"{url}/threads/search", json={}, timeout=30).json())


def test_start_form_errors_then_a_run_and_a_fork(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    ask = '[approvals]\nplan = "always"\n'
    repo = make_repo(tmp_path / "ok", {"tests/test_ok.py": PASSING_TEST, ".shipyard.toml": ask})
    broken = make_repo(tmp_path / "bad", {".shipyard.toml": "[approvals]\nplan = 3\n"})
    scripted = dataclasses.replace(settings, model_script=refine_script(tmp_path))
    running = start_server(None, scripted)
    url = running.url
    tab = open_tab(chromium)
    page = tab.page

    response = _submit(page, url, "a goal", str(tmp_path / "nowhere"))
    assert response.status == 422
    assert str(tmp_path / "nowhere") in page.inner_text(".error")
    assert page.input_value("textarea[name=goal]") == "a goal"  # nothing typed is lost
    not_json = tmp_path / "plan.json"
    not_json.write_text("{not json")
    _submit(page, url, "a goal", str(repo), not_json)
    assert "the plan file is not valid JSON" in page.inner_text(".error")
    _submit(page, url, "a goal", str(broken))
    assert ".shipyard.toml" in page.inner_text(".error")
    assert _threads(url) == 0

    response = _submit(page, url, "started in the console", str(repo))
    assert response.status == 200 and "/ui/runs/" in page.url
    assert "started in the console" in page.inner_text("h1")
    decision = page.locator("#decision")
    decision.get_by_text("create x", exact=True).wait_for()
    assert _threads(url) == 1

    plan_entry = page.locator("#timeline li").nth(1)
    assert plan_entry.locator(".name").inner_text() == "plan"
    plan_entry.get_by_role("button", name="Fork here").click()
    # The planner ran again (the scripted one answers round 1 the same way), and asks again.
    names = page.locator("#timeline li .name")
    names.filter(has_text=re.compile("^plan$")).nth(1).wait_for()
    names.filter(has_text=re.compile("^approve_plan$")).nth(1).wait_for()
    decision.get_by_text("create x", exact=True).wait_for()
    assert tab.foreign(url) == []


def test_configured_repositories_are_offered_as_choices(
    start_server: Any,
    settings: Settings,
    tmp_path: Path,
    chromium: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ask = '[approvals]\nplan = "always"\n'
    repo = make_repo(tmp_path / "ok", {"tests/test_ok.py": PASSING_TEST, ".shipyard.toml": ask})
    gone = tmp_path / "configured-but-gone"
    monkeypatch.setenv("SHIPYARD_CONSOLE_REPOS", f"{gone}{os.pathsep}{repo}")
    scripted = dataclasses.replace(settings, model_script=refine_script(tmp_path))
    url = start_server(None, scripted).url
    tab = open_tab(chromium)
    page = tab.page

    page.goto(f"{url}/ui/new")
    choices = page.locator("select[name=repo_choice] option").all_inner_texts()
    assert choices == [str(gone), str(repo)]
    page.fill("textarea[name=goal]", "a goal")
    page.fill("input[name=repo]", str(tmp_path / "nowhere"))  # a typed path wins: checked
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Start").click()
    assert navigation.value.status == 422
    assert str(tmp_path / "nowhere") in page.inner_text(".error")
    page.fill("input[name=repo]", "")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Start").click()  # the first choice: not a repository
    assert navigation.value.status == 422 and str(gone) in page.inner_text(".error")
    assert _threads(url) == 0

    page.select_option("select[name=repo_choice]", str(repo))
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Start").click()
    assert navigation.value.status == 200 and "/ui/runs/" in page.url
    page.locator("#decision").get_by_text("create x", exact=True).wait_for()
    assert _threads(url) == 1
    assert tab.foreign(url) == []
