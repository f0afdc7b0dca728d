"""Shipyard's own graph under the official ``langgraph dev`` (how most people open Studio on
a project): with no Shipyard context given, the graph builds its own from the environment
and a run goes through plan approval to a completed branch. Opt-in like the compatibility
test (``SHIPYARD_LANGGRAPH_DEV``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph_sdk import get_client

from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine
from tests.e2e.langgraph_dev import SHIPYARD_GRAPH, langgraph_dev, langgraph_executable
from tests.e2e.runs_support import make_repo, note_script
from tests.support import git

pytestmark = [
    pytest.mark.langgraph_dev,
    pytest.mark.slow,
    pytest.mark.skipif(
        langgraph_executable() is None,
        reason="set SHIPYARD_LANGGRAPH_DEV to a langgraph executable with langgraph-cli[inmem]",
    ),
]


async def test_shipyard_graph_runs_to_completion_under_langgraph_dev(
    settings: Settings, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    script = note_script(tmp_path)
    environ = {
        "SHIPYARD_HOME": str(settings.home),
        "DATABASE_URL": settings.database_url or "",
        "SHIPYARD_MODEL_SCRIPT": str(script),
    }
    executable = langgraph_executable()
    assert executable is not None
    workdir = tmp_path / "dev"
    workdir.mkdir()
    with langgraph_dev(executable, workdir, graphs=SHIPYARD_GRAPH, environ=environ) as url:
        sdk = get_client(url=url, api_key=None)
        tid = (await sdk.threads.create())["thread_id"]
        goal = {"goal": "add a note", "repo": str(repo)}
        paused = await sdk.runs.wait(tid, "shipyard", input=goal)
        request = paused["__interrupt__"][0]["value"]
        assert request["kind"] == "plan" and request["content_hash"]
        decision = {"decision": "approve", "by": "t", "content_hash": request["content_hash"]}
        final = await sdk.runs.wait(tid, "shipyard", command={"resume": decision})
    assert final["status"] == "completed", final
    assert git(repo, "show", f"shipyard/{tid}:note.txt") == "hi"
    assert git(repo, "rev-parse", f"shipyard/{tid}") == final["head_commit"]
    run = RunStore(make_engine(settings.database_url or "")).get_run(tid)
    assert run.status == "completed" and run.head_commit == final["head_commit"]
