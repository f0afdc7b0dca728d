"""Runs started by ``shipyard run`` on the server's database, in the console: without keys
on loopback the local owner sees them (listed, their page opens, a decision on one is
applied by the server); with keys only the owner named by ``SHIPYARD_CLI_OWNER``. A CLI run
whose process was killed shows as interrupted, and Resume in the browser continues it to
its end, the page following live (no reload); Cancel on a run a live CLI process drives
asks that process to stop, as ``shipyard cancel`` does."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.settings import Settings
from shipyard.store import Run, RunStore, make_engine
from tests.e2e.console_support import SIGN_OFF, browser, open_tab, start_run
from tests.e2e.runs_support import make_repo
from tests.support import (
    PASSING_TEST,
    call,
    cli_env,
    finish,
    git,
    plan_reply,
    run_shipyard,
    shipyard_process,
    wait_until,
)


@pytest.fixture
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def _repo(root: Path, plan: str) -> Path:
    policy = f'[approvals]\nplan = "{plan}"\n'
    return make_repo(root, {"tests/test_ok.py": PASSING_TEST, ".shipyard.toml": policy})


def _script(root: Path, *turns: dict[str, Any]) -> Path:
    """One step writing ``a.txt``, then ``turns``."""
    first = call("write_file", path="a.txt", content="a\n")
    script = {
        "planner": [plan_reply(("s1", "add a"))],
        "developer": {"s1/1": [first, *turns, finish()]},
    }
    path = root / "script.json"
    path.write_text(json.dumps(script))
    return path


def _run(settings: Settings) -> Run | None:
    """The CLI's run (the first run in the database), if there is one yet."""
    engine = make_engine(settings.database_url or "")
    try:
        runs = RunStore(engine).list_runs()
    finally:
        engine.dispose()
    return runs[-1] if runs else None


def _only_run(settings: Settings) -> Run:
    run = _run(settings)
    assert run is not None
    return run


def test_a_cli_run_is_listed_opened_and_decided_without_keys(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    repo = _repo(tmp_path, "always")
    script = _script(tmp_path)
    url = start_server(None, dataclasses.replace(settings, model_script=script)).url
    started = run_shipyard(
        cli_env(settings, script), "run", "--repo", str(repo), "a goal from the CLI", timeout=300
    )
    assert started.returncode == 0, started.stdout + started.stderr
    run = _only_run(settings)
    assert run.status == "awaiting_approval"

    tab = open_tab(chromium)
    page = tab.page
    page.goto(f"{url}/ui/")
    row = page.locator("#runs tr", has_text="a goal from the CLI")
    assert "awaiting_approval" in row.inner_text()
    page.goto(f"{url}/ui/?status=waiting")
    row.get_by_role("link").first.click()
    page.wait_for_url(f"**/ui/runs/{run.id}")
    assert "a goal from the CLI" in page.inner_text("h1")
    decision = page.locator("#decision")
    decision.get_by_text("add a", exact=True).wait_for()
    decision.get_by_role("button", name="Approve").click()  # the server drives it on
    page.locator("#run-status", has_text="completed").wait_for()
    assert _only_run(settings).status == "completed"
    assert tab.foreign(url) == []


def test_with_keys_cli_runs_belong_to_the_configured_owner(
    start_server: Any,
    settings: Settings,
    tmp_path: Path,
    chromium: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHIPYARD_CLI_OWNER", "alice")
    repo = _repo(tmp_path, "always")
    script = _script(tmp_path)
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    url = running.url
    _, alice = running.state.auth.create("laptop", "alice")
    _, bob = running.state.auth.create("laptop", "bob")
    started = run_shipyard(
        cli_env(settings, script), "run", "--repo", str(repo), "a goal from the CLI", timeout=300
    )
    assert started.returncode == 0, started.stdout + started.stderr
    run = _only_run(settings)
    # A run of the API whose thread was deleted has no thread either: it is nobody's.
    deleted = start_run(url, "bob's deleted run", repo, SIGN_OFF, api_key=bob)
    with httpx.Client(base_url=url, headers={"x-api-key": bob}, timeout=30) as http:
        wait_until(lambda: http.get(f"/threads/{deleted}/state").json().get("interrupts"))
        http.delete(f"/threads/{deleted}").raise_for_status()
    assert RunStore(running.state.engine).get_run(deleted).goal == "bob's deleted run"  # kept

    for key, sees in ((alice, True), (bob, False)):
        page = open_tab(chromium).page
        page.goto(f"{url}/ui/login")
        page.fill("input[name=key]", key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/ui/")
        assert ("a goal from the CLI" in page.inner_text("#runs")) is sees
        response = page.goto(f"{url}/ui/runs/{run.id}")
        assert response is not None and response.status == (200 if sees else 404)
        assert ("a goal from the CLI" in page.content()) is sees
        assert "bob's deleted run" not in page.inner_text("main")
        response = page.goto(f"{url}/ui/runs/{deleted}")
        assert response is not None and response.status == 404


def test_a_killed_cli_run_is_interrupted_and_resumed_from_the_console(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    repo = _repo(tmp_path, "never")
    slow = {"content": "thinking", "delay_s": 5, **call("write_file", path="b.txt", content="b")}
    script = _script(tmp_path, slow)
    url = start_server(None, dataclasses.replace(settings, model_script=script)).url
    env = cli_env(settings, script, SHIPYARD_LEASE_S="1")
    with shipyard_process(env, "run", "--repo", str(repo), "add a and b", quiet=True) as proc:
        run = wait_until(lambda: _run(settings), timeout=120, what="the CLI run recorded")
        wait_until((settings.workspaces / run.id / "a.txt").exists, timeout=120, what="a.txt")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    wait_until(lambda: _only_run(settings).interrupted, what="the run shown as interrupted")

    tab = open_tab(chromium)
    page = tab.page
    page.goto(f"{url}/ui/")
    assert "add a and b" in page.inner_text("#runs")
    page.goto(f"{url}/ui/runs/{run.id}")
    assert "interrupted" in page.inner_text("section.status")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Resume").click()
    page.locator("#run-status", has_text="completed").wait_for()
    assert page.evaluate("window.notReloaded === true")  # followed live, not reloaded
    assert page.locator("section.status", has_text="interrupted").count() == 0
    ended = _only_run(settings)
    assert ended.status == "completed" and not ended.interrupted
    assert git(repo, "show", f"shipyard/{run.id}:b.txt") == "b"
    assert tab.foreign(url) == []


SLOW_TEST = (
    "import pathlib, time\n\n"
    "def test_slow():\n"
    "    pathlib.Path('validate-started').write_text('1')\n"
    "    time.sleep(120)\n"
)


def test_cancel_a_run_a_live_cli_process_drives(
    start_server: Any, settings: Settings, tmp_path: Path, chromium: Any
) -> None:
    policy = '[approvals]\nplan = "never"\n'
    repo = make_repo(tmp_path, {"tests/test_slow.py": SLOW_TEST, ".shipyard.toml": policy})
    script = _script(tmp_path)
    url = start_server(None, dataclasses.replace(settings, model_script=script)).url
    env = cli_env(settings, script, SHIPYARD_LEASE_S="2")
    with shipyard_process(
        env, "run", "--repo", str(repo), "wait for a slow test", quiet=True
    ) as proc:
        run = wait_until(lambda: _run(settings), timeout=120, what="the CLI run recorded")
        started = settings.workspaces / run.id / "validate-started"
        wait_until(started.exists, timeout=120, what="validation to start")
        tab = open_tab(chromium)
        page = tab.page
        page.goto(f"{url}/ui/runs/{run.id}")
        page.get_by_role("button", name="Cancel").click()
        page.locator("#run-status", has_text="cancelled").wait_for()
        assert proc.wait(timeout=60) != 0  # the CLI process stopped the run and ended
    ended = _only_run(settings)
    assert ended.status == "cancelled" and not ended.interrupted
    assert tab.foreign(url) == []
