"""Who sees what in the console: with API keys a sign-in form takes a key (a wrong one is
refused) and keeps an HTTP-only, SameSite=Strict session cookie; the list shows only the
owner's runs, another owner's run URL and an unknown run id are the 404 page; logging out
ends the session on the server (a copy of the cookie is refused at once, and a decision
posted with it applies nothing), and so does revoking the key. Without keys on loopback
there is no sign-in at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.server.console.session import ConsoleSessionRow
from shipyard.settings import Settings
from tests.e2e.console_support import (
    SIGN_OFF,
    browser,
    open_tab,
    refine_script,
    start_run,
    wait_listed,
)
from tests.e2e.runs_support import make_repo
from tests.support import schema_diff


@pytest.fixture
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def test_sign_in_owners_and_logout(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    repo = make_repo(tmp_path)
    running = start_server(
        None, dataclasses.replace(settings, model_script=refine_script(tmp_path))
    )
    url = running.url
    _, alice = running.state.auth.create("laptop", "alice")
    _, bob = running.state.auth.create("laptop", "bob")
    mine = start_run(url, "alice's goal", repo, SIGN_OFF, api_key=alice)
    theirs = start_run(url, "bob's goal", repo, SIGN_OFF, api_key=bob)
    wait_listed(url, mine, alice)
    wait_listed(url, theirs, bob)

    tab = open_tab(chromium)
    page = tab.page
    page.goto(f"{url}/ui/runs/{mine}")
    page.wait_for_url(lambda u: "/ui/login?next=" in u)
    page.fill("input[name=key]", "sy-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    assert "That key is not valid" in page.inner_text(".error")

    page.fill("input[name=key]", alice)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/ui/runs/{mine}")  # back where the sign-in began
    assert "alice's goal" in page.inner_text("h1")
    (session,) = [c for c in page.context.cookies() if c["name"] == "shipyard_console"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["expires"] > 0
    assert alice not in session["value"]

    page.goto(f"{url}/ui/")
    listed = page.inner_text("#runs")
    assert "alice's goal" in listed and "bob's goal" not in listed
    for run_id in (theirs, "no-such-run"):
        response = page.goto(f"{url}/ui/runs/{run_id}")
        assert response is not None and response.status == 404
        assert "Not found" in page.inner_text("h1")
        assert "bob's goal" not in page.content()
    response = page.goto(f"{url}/ui/runs/{theirs}/artifacts/report.json")
    assert response is not None and response.status == 404

    page.goto(f"{url}/ui/runs/{mine}")
    page.locator("#decision").wait_for()  # the plan waits for alice
    form = page.locator("form.decide")
    fields = {
        name: form.locator(f"input[name={name}]").get_attribute("value") or ""
        for name in ("csrf", "interrupt_id", "content_hash")
    }
    copied = {c["name"]: c["value"] for c in page.context.cookies()}
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/ui/login")
    assert [c for c in page.context.cookies() if c["name"] == "shipyard_console"] == []
    page.goto(f"{url}/ui/")
    page.wait_for_url(lambda u: "/ui/login?next=" in u)
    assert tab.foreign(url) == []

    with httpx.Client(base_url=url, cookies=copied, timeout=30) as copy:
        listed_again = copy.get("/ui/")
        assert listed_again.status_code == 303
        assert listed_again.headers["location"].startswith("/ui/login?next=")
        decided = copy.post(f"/ui/runs/{mine}/decide", data={**fields, "decision": "approve"})
        assert decided.status_code == 303
        assert decided.headers["location"].startswith("/ui/login?next=")
    assert _interrupts(url, mine, alice) == [fields["interrupt_id"]]  # nothing was applied

    key_id = next(k.id for k in running.state.auth.list() if k.owner == "alice")
    again = open_tab(chromium).page
    again.goto(f"{url}/ui/login")
    again.fill("input[name=key]", alice)
    again.get_by_role("button", name="Sign in").click()
    again.wait_for_url(f"{url}/ui/")
    running.state.auth.revoke(key_id)
    again.goto(f"{url}/ui/runs/{mine}")
    again.wait_for_url(lambda u: "/ui/login?next=" in u)


def _interrupts(url: str, thread_id: str, api_key: str) -> list[str]:
    """The ids of the interrupts the run waits at (read over the API)."""
    headers = {"x-api-key": api_key}
    state = httpx.get(f"{url}/threads/{thread_id}/state", headers=headers, timeout=30).json()
    return [i["id"] for i in state.get("interrupts", [])]


def test_loopback_without_keys_needs_no_sign_in(
    start_server: Any, settings: Settings, chromium: Any
) -> None:
    running = start_server(None, settings)
    tab = open_tab(chromium)
    response = tab.page.goto(f"{running.url}/ui/login")
    assert response is not None and response.url == f"{running.url}/ui/"
    assert tab.page.locator("button", has_text="Log out").count() == 0
    assert "Runs" in tab.page.inner_text("h1")


def test_the_sessions_table_matches_its_declaration(db_url: str) -> None:
    diff, tables = schema_diff(db_url, {ConsoleSessionRow.__tablename__})
    assert diff == []
    assert ConsoleSessionRow.__tablename__ in tables
