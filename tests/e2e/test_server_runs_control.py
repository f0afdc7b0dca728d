"""Cancelling runs, multitask strategies, resumable streams and dropped clients — through
the official SDK, on a graph whose side effects are counted in a file."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from shipyard.server import ServerOptions
from shipyard.server.runs.outcome import KEEPALIVE_S
from tests.e2e.runs_support import GRAPHS, ROOT, effects


@pytest.fixture
def sdk(start_server, make_client) -> LangGraphClient:
    running = start_server(ServerOptions(workers=2, graphs=GRAPHS, graphs_base=ROOT))
    return make_client(running.url)


async def until(check: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def slow_input(tmp_path: Path, hold_s: float) -> dict[str, Any]:
    return {"dir": str(tmp_path), "hold_s": hold_s}


async def test_cancel_interrupt_keeps_state_and_marks_run_interrupted(sdk, tmp_path) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(tid, "slow", input=slow_input(tmp_path, 60), durability="sync")
    await until(lambda: "hold-start" in effects(tmp_path))
    await sdk.runs.cancel(tid, run["run_id"], action="interrupt")
    await sdk.runs.join(tid, run["run_id"])
    assert (await sdk.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    assert effects(tmp_path) == ["first", "hold-start"]
    state = await sdk.threads.get_state(tid)
    assert state["values"]["log"] == ["first"] and state["next"] == ["hold"]
    assert (await sdk.threads.get(tid))["status"] == "idle"
    with pytest.raises(ConflictError):
        await sdk.runs.cancel(tid, run["run_id"])  # already ended


async def test_cancel_rollback_deletes_run_and_its_checkpoints(sdk, tmp_path) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(tid, "slow", input=slow_input(tmp_path, 60), durability="sync")
    await until(lambda: "hold-start" in effects(tmp_path))
    await sdk.runs.cancel(tid, run["run_id"], action="rollback", wait=True)
    with pytest.raises(NotFoundError):
        await sdk.runs.get(tid, run["run_id"])
    state = await sdk.threads.get_state(tid)
    assert state["values"] in ({}, None, []) and state["next"] == []
    assert await sdk.threads.get_history(tid) == []


async def test_multitask_reject_and_enqueue(sdk, tmp_path) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    first = await sdk.runs.create(tid, "slow", input=slow_input(tmp_path, 1.0))
    with pytest.raises(ConflictError, match="already running"):
        await sdk.runs.create(
            tid, "slow", input=slow_input(tmp_path, 0), multitask_strategy="reject"
        )
    second = await sdk.runs.create(tid, "slow", input=slow_input(tmp_path, 0))
    await sdk.runs.join(tid, second["run_id"])
    statuses = {r["run_id"]: r["status"] for r in await sdk.runs.list(tid)}
    assert statuses == {first["run_id"]: "success", second["run_id"]: "success"}
    # one run at a time: the second started only after the first ended
    assert effects(tmp_path) == ["first", "hold-start", "hold-done", "last"] * 2


async def test_multitask_interrupt_and_rollback(sdk, tmp_path) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    first = await sdk.runs.create(tid, "slow", input=slow_input(tmp_path, 60))
    await until(lambda: "hold-start" in effects(tmp_path))
    second = await sdk.runs.create(
        tid, "slow", input=slow_input(tmp_path, 60), multitask_strategy="interrupt"
    )
    await until(lambda: effects(tmp_path).count("hold-start") == 2)
    assert (await sdk.runs.get(tid, first["run_id"]))["status"] == "interrupted"
    third = await sdk.runs.create(
        tid, "slow", input=slow_input(tmp_path, 0), multitask_strategy="rollback"
    )
    await sdk.runs.join(tid, third["run_id"])
    with pytest.raises(NotFoundError):
        await sdk.runs.get(tid, second["run_id"])
    assert (await sdk.runs.get(tid, third["run_id"]))["status"] == "success"
    assert "hold-done" in effects(tmp_path)[-3:]


async def test_resumable_stream_replays_after_last_event_id(sdk) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    parts = [
        p
        async for p in sdk.runs.stream(
            tid, "probe_chain", input={"count": 0}, stream_mode="updates", stream_resumable=True
        )
    ]
    assert parts[0].event == "metadata" and parts[0].id == "0"
    events = parts[1:]
    assert len(events) == 10 and all(p.id is not None for p in events)
    run_id = parts[0].data["run_id"]
    replay = [p async for p in sdk.runs.join_stream(tid, run_id, last_event_id=events[2].id)]
    assert [(p.event, p.data, p.id) for p in replay] == [
        (p.event, p.data, p.id) for p in events[3:]
    ]
    whole = [p async for p in sdk.runs.join_stream(tid, run_id, last_event_id=parts[0].id)]
    assert [(p.data, p.id) for p in whole] == [(p.data, p.id) for p in events]
    # As the official server: joining an ended run without an id sends nothing.
    assert [p async for p in sdk.runs.join_stream(tid, run_id)] == []


async def test_dropped_client_cancels_or_continues_as_asked(sdk, tmp_path) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    stream = sdk.runs.stream(
        tid, "slow", input=slow_input(tmp_path / "a", 60), on_disconnect="cancel"
    )
    (tmp_path / "a").mkdir()
    first = await anext(stream)
    await stream.aclose()  # the client goes away mid-run
    run_id = first.data["run_id"]
    await sdk.runs.join(tid, run_id)
    assert (await sdk.runs.get(tid, run_id))["status"] == "interrupted"

    (tmp_path / "b").mkdir()
    stream = sdk.runs.stream(tid, "slow", input=slow_input(tmp_path / "b", 0.5))
    first = await anext(stream)
    await stream.aclose()
    await sdk.runs.join(tid, first.data["run_id"])
    assert (await sdk.runs.get(tid, first.data["run_id"]))["status"] == "success"
    assert effects(tmp_path / "b")[-1] == "last"


async def test_wait_answers_plain_json_or_keeps_the_connection_alive(
    start_server, tmp_path
) -> None:
    running = start_server(ServerOptions(workers=1, graphs=GRAPHS, graphs_base=ROOT))
    async with httpx.AsyncClient(base_url=running.url, timeout=60) as http:
        quick = await http.post("/runs/wait", json={"assistant_id": "probe_chain", "input": {}})
        assert quick.status_code == 200 and quick.json()["count"] == 10
        assert quick.headers["content-length"] == str(len(quick.content))  # not streamed
        assert quick.headers["content-location"].startswith("/threads/")

        (tmp_path / "s").mkdir()
        slow_body = {"assistant_id": "slow", "input": slow_input(tmp_path / "s", KEEPALIVE_S + 1)}
        chunks: list[bytes] = []
        async with http.stream("POST", "/runs/wait", json=slow_body) as slow:
            assert slow.status_code == 200 and "content-length" not in slow.headers
            async for chunk in slow.aiter_raw():
                chunks.append(chunk)
    body = b"".join(chunks)
    assert chunks[0] == b"\n"  # a keep-alive came before the run ended
    assert json.loads(body)["log"] == ["first", "hold", "last"]  # JSON allows the whitespace
    assert effects(tmp_path / "s") == ["first", "hold-start", "hold-done", "last"]


async def test_wait_with_cancel_on_disconnect_cancels_a_dropped_wait(sdk, tmp_path) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    (tmp_path / "w").mkdir()
    waiting = asyncio.create_task(
        sdk.runs.wait(tid, "slow", input=slow_input(tmp_path / "w", 60), on_disconnect="cancel")
    )
    await until(lambda: "hold-start" in effects(tmp_path / "w"))
    waiting.cancel()  # the client goes away while the run holds
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    run = (await sdk.runs.list(tid))[0]
    # Noticed at once, not when the first keep-alive is due.
    ended = await asyncio.wait_for(sdk.runs.join(tid, run["run_id"]), KEEPALIVE_S - 1)
    assert ended is not None
    assert (await sdk.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    assert "hold-done" not in effects(tmp_path / "w")


@pytest.mark.parametrize("action", ["interrupt", "rollback"])
async def test_cancelling_a_pending_run_frees_its_thread(sdk, tmp_path, action) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(tid, "slow", input=slow_input(tmp_path, 0), after_seconds=600)
    assert (await sdk.threads.get(tid))["status"] == "busy"
    await sdk.runs.cancel(tid, run["run_id"], action=action)
    assert (await sdk.threads.get(tid))["status"] == "idle"
    assert [t["thread_id"] for t in await sdk.threads.search(status="busy")] == []
    await sdk.threads.update_state(tid, {"log": ["edited"]})  # a busy thread would be 409
    assert (await sdk.threads.get_state(tid))["values"]["log"] == ["edited"]
    assert effects(tmp_path) == []


async def test_cancelling_one_of_two_pending_runs_keeps_the_thread_busy(sdk, tmp_path) -> None:
    tid = (await sdk.threads.create())["thread_id"]
    first = await sdk.runs.create(tid, "slow", input=slow_input(tmp_path, 0), after_seconds=600)
    await sdk.runs.create(
        tid, "slow", input=slow_input(tmp_path, 0), after_seconds=600, multitask_strategy="enqueue"
    )
    await sdk.runs.cancel(tid, first["run_id"], action="interrupt")
    assert (await sdk.threads.get(tid))["status"] == "busy"
