"""Shipyard's own graph under the official ``langgraph dev`` (how most people open Studio on
a project): with no Shipyard context given, the graph builds its own from the environment
and a run goes through plan approval to a completed branch. Opt-in like the compatibility
test (``SHIPYARD_LANGGRAPH_DEV``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine
from tests.e2e.langgraph_dev import SHIPYARD_GRAPH, langgraph_dev, langgraph_executable
from tests.support import PASSING_TEST, call, finish, git, plan_reply

pytestmark = [
    pytest.mark.langgraph_dev,
    pytest.mark.slow,
    pytest.mark.skipif(
        langgraph_executable() is None,
        reason="set SHIPYARD_LANGGRAPH_DEV to a langgraph executable with langgraph-cli[inmem]",
    ),
]


def _repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "tests").mkdir(parents=True)
    (repo / "tests" / "test_ok.py").write_text(PASSING_TEST)
    git(root, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "initial")
    return repo


async def test_shipyard_graph_runs_to_completion_under_langgraph_dev(
    settings: Settings, tmp_path: Path
) -> None:
    repo = _repo(tmp_path)
    script = tmp_path / "script.json"
    steps = {"s1/1": [call("write_file", path="note.txt", content="hi\n"), finish()]}
    script.write_text(json.dumps({"planner": [plan_reply(("s1", "note"))], "developer": steps}))
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
