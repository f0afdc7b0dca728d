"""The official JavaScript SDK (``@langchain/langgraph-sdk``, pinned in
``tests/e2e/js/package-lock.json``) against the real server: the same scenarios the Python
SDK tests drive, run by ``tests/e2e/js/scenarios.mjs`` under ``node``, with exact values for
the deterministic probe graphs; then a whole Shipyard run through plan approval. Opt-in
(``SHIPYARD_LANGGRAPH_DEV``, see ``langgraph_dev.py``): the same script against the official
``langgraph dev`` sees the same, but for ``JS_DELIBERATE``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.settings import Settings
from tests.e2e.conftest import RunningServer
from tests.e2e.js_sdk import run_scenario
from tests.e2e.langgraph_dev import langgraph_dev, langgraph_executable
from tests.e2e.runs_support import make_repo, note_script
from tests.support import git

pytestmark = pytest.mark.usefixtures("js_sdk")

CHAIN = [f"n{i}" for i in range(10)]
JS_DELIBERATE = {
    "threads.created_keys": "thread objects also carry error and interrupts",
    "resumable.metadata_id": "event ids are opaque: Shipyard numbers them, dev uses stream ids",
    "errors.assistant_get": "an unknown non-UUID assistant id is 404 (graph ids are accepted "
    "there; dev: 422)",
}
"""Observation path → why Shipyard differs from ``langgraph dev`` (as in
docs/server-compatibility.md)."""


def check_threads(seen: dict[str, Any]) -> None:
    assert {"thread_id", "status", "metadata", "created_at", "values"} <= set(seen["created_keys"])
    assert seen["created_status"] == "idle" and seen["got_same"] is True
    assert seen["got_metadata"]["js"] == "probe" and seen["search_ids"] is True


def check_stream(seen: dict[str, Any]) -> None:
    # metadata, the input's values, then an update and the values after each node
    assert seen["events"] == ["metadata", "values"] + ["updates", "values"] * 10
    assert seen["metadata_keys"] == ["attempt", "run_id"]
    assert seen["update_nodes"] == [[name] for name in CHAIN]
    assert seen["first_update"] == {"n0": {"count": 1, "visited": ["n0"]}}
    assert seen["last_values"] == {"count": 10, "visited": CHAIN}
    assert seen["ids"] == [None] * len(seen["events"])  # not resumable: no ids


def check_wait_join(seen: dict[str, Any]) -> None:
    assert seen["waited"] == {"count": 15, "visited": CHAIN}
    assert seen["created_status"] == "pending"
    assert (seen["joined_count"], seen["joined_visited"]) == (110, 20)
    assert seen["run_status"] == "success" and seen["run_statuses"] == ["success", "success"]


def check_interrupt(seen: dict[str, Any]) -> None:
    question = {"question": "proceed?", "topic": "js"}
    assert seen["paused_interrupt"] == [question] and seen["paused_prepared"] is True
    assert seen["state_next"] == ["ask"] and seen["state_interrupt"] == [question]
    assert seen["same_interrupt_id"] is True and seen["thread_status"] == "interrupted"
    assert seen["resumed"] == {"topic": "js", "prepared": True, "answer": "yes", "done": True}
    assert seen["status_after"] == "idle"
    # newest first: the end, finish, ask (resumed), ask (paused), prepare, input, start
    assert seen["history_next"] == [[], ["finish"], ["ask"], ["prepare"], ["__start__"]]
    assert seen["history_first_values"] == seen["resumed"]
    assert seen["history_has_checkpoints"] is True


def check_resumable(seen: dict[str, Any]) -> None:
    assert seen["metadata_id"] == "0"
    assert seen["event_count"] == 10 and seen["all_have_ids"] is True
    assert seen["replay_count"] == 7 and seen["replay_matches"] is True
    assert seen["ended_join"] == []  # joining an ended run without an id sends nothing


def check_errors(seen: dict[str, Any]) -> None:
    assert seen == {
        "thread_get": 404,
        "thread_state": 404,
        "run_get": 404,
        "assistant_get": 404,
        "run_missing_thread": 404,
        "run_unknown_graph": 422,  # as the official server: the assistant is a body field
    }


def test_js_sdk_drives_the_probe_graphs(server: RunningServer) -> None:
    seen = run_scenario("probes", server.url)
    check_threads(seen["threads"])
    check_stream(seen["stream"])
    check_wait_join(seen["wait_join"])
    check_interrupt(seen["interrupt"])
    check_resumable(seen["resumable"])
    check_errors(seen["errors"])


def test_js_sdk_approves_a_shipyard_plan_to_completion(
    start_server: Callable[..., RunningServer],
    settings: Settings,
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path)
    script = note_script(tmp_path)
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    seen = run_scenario("shipyard", running.url, str(repo))
    tid = seen.pop("thread_id")
    assert seen == {
        "request_kind": "plan",
        "has_hash": True,
        "status_paused": "interrupted",
        "stale_refused": 409,
        "final_status": "completed",
        "final_branch": f"shipyard/{tid}",
        "status_after": "idle",
    }
    assert git(repo, "show", f"shipyard/{tid}:note.txt") == "hi"
    assert git(repo, "status", "--porcelain") == ""


@pytest.fixture(scope="module")
def dev_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    executable = langgraph_executable()
    if executable is None:
        pytest.skip("set SHIPYARD_LANGGRAPH_DEV to a langgraph executable (langgraph_dev.py)")
    with langgraph_dev(executable, Path(tmp_path_factory.mktemp("langgraph-dev"))) as url:
        yield url


def flatten(observed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        f"{name}.{key}": value for name, seen in observed.items() for key, value in seen.items()
    }


@pytest.mark.langgraph_dev
@pytest.mark.slow
def test_js_sdk_sees_the_same_on_the_official_dev_server(
    server: RunningServer, dev_url: str
) -> None:
    ours = flatten(run_scenario("probes", server.url))
    theirs = flatten(run_scenario("probes", dev_url))
    found = {path for path in ours.keys() | theirs.keys() if ours.get(path) != theirs.get(path)}
    unexpected = {path: (ours.get(path), theirs.get(path)) for path in found ^ set(JS_DELIBERATE)}
    assert unexpected == {}, "(shipyard, dev) where not as JS_DELIBERATE lists"
