"""A Shipyard run cancelled over the API ends ``cancelled``: in the thread's state, in its
report and in Shipyard's runs table, with its hanging check killed and its workspace and
branch kept."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path

from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine
from tests.e2e.runs_support import make_repo, note_script
from tests.support import git

HANGING_TEST = (
    "import pathlib, time\n\n"
    "def test_slow():\n"
    "    pathlib.Path('validate-started').write_text('1')\n"
    "    time.sleep(120)\n"
)


def _processes_in(directory: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if str(directory) in os.readlink(proc / "cwd"):
                    found.append(int(proc.name))
    return found


async def test_cancel_over_the_api_ends_the_run_cancelled_with_its_report(
    start_server, make_client, settings: Settings, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, {"tests/test_slow.py": HANGING_TEST})
    script = note_script(tmp_path)
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]
    goal = {"goal": "add a note", "repo": str(repo), "policy": {"approvals": {"plan": "never"}}}
    run = await sdk.runs.create(tid, "shipyard", input=goal)
    workspace = settings.workspaces / tid
    deadline = time.monotonic() + 90
    while not (workspace / "validate-started").exists():
        assert time.monotonic() < deadline, await sdk.runs.get(tid, run["run_id"])
        await asyncio.sleep(0.1)
    assert _processes_in(workspace)

    started = time.monotonic()
    await sdk.runs.cancel(tid, run["run_id"], wait=True, action="interrupt")
    assert time.monotonic() - started < 30  # the 120 s check was killed, not waited for
    assert (await sdk.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    state = await sdk.threads.get_state(tid)
    values = state["values"]
    assert values["status"] == "cancelled" and state["next"] == []
    assert values["report"]["status"] == "cancelled"
    assert "cancelled by the API" in values["report"]["summary"]
    assert json.loads(Path(values["report"]["report_path"]).read_text())["status"] == "cancelled"
    assert (await sdk.threads.get(tid))["status"] == "idle"
    engine = make_engine(settings.database_url or "")
    try:
        row = RunStore(engine).get_run(tid)
    finally:
        engine.dispose()
    assert row.status == "cancelled" and not row.interrupted
    assert row.report_path == values["report"]["report_path"]
    assert not _processes_in(workspace)
    assert (workspace / "note.txt").read_text() == "hi\n"  # the workspace is kept
    assert git(repo, "rev-parse", f"shipyard/{tid}") == git(repo, "rev-parse", "main")
