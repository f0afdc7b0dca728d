"""Deciding in the console when things are not simple: Revise needs a comment and asks for a
new plan; a page whose request changed meanwhile (decided elsewhere, or its files edited in
the workspace) applies nothing and shows the new request with why; Reject rejects; a
decision for a run that no longer waits, a post without the CSRF token or from another
origin are refused and change nothing."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.settings import Settings
from tests.e2e.console_support import (
    REFINE_FILES,
    SIGN_OFF,
    browser,
    open_tab,
    refine_script,
    start_run,
    wait_listed,
)
from tests.e2e.runs_support import make_repo
from tests.support import finish, plan_reply


@pytest.fixture
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def _script(root: Path) -> Path:
    plans = [plan_reply(("s1", t)) for t in ("first plan", "second plan", "third plan")]
    path = root / "script.json"
    path.write_text(json.dumps({"planner": plans, "developer": {"s1/1": [finish()]}}))
    return path


def _pending(url: str, tid: str) -> dict[str, Any]:
    state = httpx.get(f"{url}/threads/{tid}/state", timeout=30).raise_for_status().json()
    (interrupt,) = state["interrupts"]
    return dict(interrupt)


def _form(page: Any) -> dict[str, str]:
    names = ("csrf", "interrupt_id", "content_hash")
    return {n: page.locator(f"#decision input[name={n}]").input_value() for n in names}


def test_revise_stale_reject_and_refused_posts(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    repo = make_repo(tmp_path, REFINE_FILES)
    running = start_server(None, dataclasses.replace(settings, model_script=_script(tmp_path)))
    url = running.url
    tid = start_run(url, "plan it twice", repo, SIGN_OFF)
    wait_listed(url, tid)
    tab = open_tab(chromium)
    page = tab.page
    page.goto(f"{url}/ui/runs/{tid}")
    decision = page.locator("#decision")
    decision.get_by_text("first plan", exact=True).wait_for()

    decision.get_by_role("button", name="Revise").click()
    assert "Revise needs a comment" in page.inner_text(".notice")
    assert _pending(url, tid)["value"]["payload"]["round"] == 1

    decision.locator("textarea[name=comment]").fill("make it <b>smaller</b>")
    decision.get_by_role("button", name="Revise").click()
    decision.get_by_text("second plan", exact=True).wait_for()
    second = _pending(url, tid)
    assert second["value"]["payload"]["round"] == 2

    # A page that does not follow the run (its live updates cut) while someone else revises.
    stale = open_tab(chromium)
    stale.page.route("**/live*", lambda route: route.abort())
    stale.page.goto(f"{url}/ui/runs/{tid}")
    stale.page.locator("#decision").get_by_text("second plan", exact=True).wait_for()
    other = {
        "decision": "revise",
        "by": "someone else",
        "comment": "again",
        "content_hash": second["value"]["content_hash"],
    }
    httpx.post(
        f"{url}/threads/{tid}/runs/wait",
        json={"assistant_id": "shipyard", "command": {"resume": other}},
        timeout=60,
    ).raise_for_status()
    stale.page.locator("#decision").get_by_role("button", name="Approve").click()
    notice = stale.page.inner_text(".notice")
    assert "Not applied: the request changed since the page was shown" in notice
    assert "third plan" in stale.page.inner_text("#decision")  # the new request, shown
    third = _pending(url, tid)
    assert third["value"]["payload"]["round"] == 3

    # Forged posts: no token, a wrong one, another origin. Nothing applied.
    fields = _form(stale.page)
    decide = f"{url}/ui/runs/{tid}/decide"
    approve = {**fields, "decision": "approve"}
    refused = [
        stale.page.request.post(decide, form={k: v for k, v in approve.items() if k != "csrf"}),
        stale.page.request.post(decide, form={**approve, "csrf": "forged"}),
        stale.page.request.post(decide, form=approve, headers={"origin": "http://evil.test"}),
    ]
    for response in refused:
        assert response.status == 403
        assert "Nothing was changed" in response.text()
    assert _pending(url, tid)["id"] == third["id"]

    stale.page.unroute("**/live*")  # following the run again
    stale.page.reload()
    stale.page.locator("#decision").get_by_text("third plan", exact=True).wait_for()
    stale.page.locator("#decision textarea[name=comment]").fill("not this")
    stale.page.locator("#decision").get_by_role("button", name="Reject").click()
    stale.page.locator("#run-status", has_text="rejected").wait_for()

    # The same form again: the run no longer waits, so nothing is applied.
    again = stale.page.request.post(decide, form=approve)
    assert again.status == 409
    assert "this run no longer waits for a decision" in again.text()
    state = httpx.get(f"{url}/threads/{tid}/state", timeout=30).json()
    assert state["values"]["status"] == "rejected" and state["interrupts"] == []

    assert tab.foreign(url) == [] and stale.foreign(url) == []


def test_an_approval_of_changed_files_is_not_applied(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    repo = make_repo(tmp_path, REFINE_FILES)
    scripted = dataclasses.replace(settings, model_script=refine_script(tmp_path))
    running = start_server(None, scripted)
    url = running.url
    policy = {"approvals": {"plan": "never", "changes": "always"}}
    tid = start_run(url, "change x", repo, policy)
    tab = open_tab(chromium)
    page = tab.page
    wait_listed(url, tid)
    page.goto(f"{url}/ui/runs/{tid}")
    decision = page.locator("#decision")
    decision.get_by_text("changes approval").wait_for()
    shown = decision.locator("input[name=content_hash]").input_value()

    (settings.workspaces / tid / "x").write_text("edited by hand\n")  # while the page is open
    decision.get_by_role("button", name="Approve").click()
    decision.get_by_text("the workspace changed since the request was shown").wait_for()
    assert "+edited by hand" in page.inner_text(".diff")
    assert decision.locator("input[name=content_hash]").input_value() != shown
    # The gate's new request is in the checkpoint before the run's row says it waits again.
    page.locator("#run-status", has_text="awaiting_approval").wait_for()
    assert tab.foreign(url) == []
