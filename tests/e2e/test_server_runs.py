"""Runs through the official async SDK against the real server: streams, interrupts and
resume, wait/join, breakpoints, cancel, multitask strategies, resumable streams."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError


async def collect(stream: Any) -> list[tuple[str, Any, str | None]]:
    return [(p.event, p.data, p.id) async for p in stream]


async def test_stream_interrupt_resume_to_completion(client) -> None:
    sdk = client()
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    parts = await collect(
        sdk.runs.stream(
            tid,
            "probe_interrupt",
            input={"topic": "t"},
            stream_mode=["values", "updates", "custom"],
        )
    )
    names = [name for name, _, _ in parts]
    assert names[0] == "metadata" and set(parts[0][1]) == {"run_id", "attempt"}
    run_id = parts[0][1]["run_id"]
    assert {"values", "updates", "custom"} <= set(names)
    assert all(ident is None for _, _, ident in parts)  # not resumable: no ids
    assert ("custom", {"progress": "prepared", "topic": "t"}, None) in parts
    pause = [d for n, d, _ in parts if n == "updates" and "__interrupt__" in d]
    assert pause and pause[0]["__interrupt__"][0]["value"] == {"question": "proceed?", "topic": "t"}
    last_values = [d for n, d, _ in parts if n == "values"][-1]
    interrupt_id = last_values["__interrupt__"][0]["id"]

    state = await sdk.threads.get_state(tid)
    assert state["next"] == ["ask"] and state["interrupts"][0]["id"] == interrupt_id
    assert (await sdk.threads.get(tid))["status"] == "interrupted"
    run = await sdk.runs.get(tid, run_id)
    assert run["status"] == "success" and run["thread_id"] == tid

    done = await sdk.runs.wait(tid, "probe_interrupt", command={"resume": "yes"})
    assert done == {"topic": "t", "prepared": True, "answer": "yes", "done": True}
    assert (await sdk.threads.get(tid))["status"] == "idle"
    runs = await sdk.runs.list(tid)
    assert [r["status"] for r in runs] == ["success", "success"]


async def test_wait_body_carries_the_interrupt_and_join_returns_the_same(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    body = await sdk.runs.wait(tid, "probe_interrupt", input={"topic": "w"})
    assert body["prepared"] is True and body["__interrupt__"][0]["value"]["topic"] == "w"
    run = (await sdk.runs.list(tid))[0]
    assert await sdk.runs.join(tid, run["run_id"]) == body

    created = await sdk.runs.create(tid, "probe_interrupt", command={"resume": 42})
    assert created["status"] == "pending"
    joined = await sdk.runs.join(tid, created["run_id"])
    assert joined["answer"] == 42 and joined["done"] is True
    # join_stream of an ended run ends at once with nothing (as the official server)
    assert await collect(sdk.runs.join_stream(tid, created["run_id"])) == []


async def test_chain_stream_modes(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    parts = await collect(
        sdk.runs.stream(
            tid, "probe_chain", input={"count": 0}, stream_mode=["updates", "tasks", "checkpoints"]
        )
    )
    names = [n for n, _, _ in parts]
    assert names.count("updates") == 10
    assert names.count("tasks") == 20  # a start and a result per node
    assert "checkpoints" in names
    final = await sdk.threads.get_state(tid)
    assert final["values"]["count"] == 10 and final["next"] == []


async def test_breakpoints_step_with_null_input(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    body = await sdk.runs.wait(
        tid, "probe_interrupt", input={"topic": "b"}, interrupt_before=["ask"]
    )
    assert body == {"topic": "b", "prepared": True}
    state = await sdk.threads.get_state(tid)
    assert state["next"] == ["ask"] and state["interrupts"] == []
    assert (await sdk.threads.get(tid))["status"] == "interrupted"
    # continue: runs into the interrupt() inside ask
    body = await sdk.runs.wait(tid, "probe_interrupt", input=None)
    assert body["__interrupt__"][0]["value"]["topic"] == "b"


async def test_resume_errors_are_refused_before_a_run_exists(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as nothing:
        await sdk.runs.wait(tid, "probe_interrupt", command={"resume": "x"})
    assert nothing.value.response.status_code == 409
    assert await sdk.runs.list(tid) == []

    missing = "00000000-0000-4000-8000-000000000001"
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await sdk.runs.wait(
            missing, "probe_interrupt", command={"resume": "x"}, if_not_exists="create"
        )
    assert gone.value.response.status_code == 404
    with pytest.raises(NotFoundError):
        await sdk.threads.get(missing)  # no thread (and so no run) was created

    with pytest.raises(httpx.HTTPStatusError) as stateless:
        await sdk.runs.wait(None, "probe_interrupt", command={"resume": "x"})
    assert stateless.value.response.status_code == 400


async def test_unknown_thread_assistant_and_run(client) -> None:
    sdk = client()
    missing = "00000000-0000-4000-8000-000000000002"
    with pytest.raises(NotFoundError):
        await sdk.runs.create(missing, "probe_chain", input={})
    tid = (await sdk.threads.create())["thread_id"]
    with pytest.raises(UnprocessableEntityError, match="probe_chain"):
        await sdk.runs.create(tid, "no_such_graph", input={})
    with pytest.raises(NotFoundError):
        await sdk.runs.get(tid, missing)
    with pytest.raises(UnprocessableEntityError, match="stream_mode"):
        await sdk.runs.create(tid, "probe_chain", input={}, stream_mode="no-such-mode")
    assert await sdk.runs.list(tid) == []
    created = await sdk.runs.create(
        missing, "probe_chain", input={"count": 0}, if_not_exists="create"
    )
    assert (await sdk.runs.join(missing, created["run_id"]))["count"] == 10


async def test_stateless_runs(client) -> None:
    sdk = client()
    body = await sdk.runs.wait(None, "probe_chain", input={"count": 5})
    assert body["count"] == 15
    parts = await collect(sdk.runs.stream(None, "probe_chain", input={"count": 0}))
    assert parts[0][0] == "metadata" and parts[-1][1]["count"] == 10


async def test_debug_checkpoint_events_name_their_checkpoint_and_parent(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    parts = await collect(
        sdk.runs.stream(tid, "probe_chain", input={"count": 0}, stream_mode="debug")
    )
    payloads = [d["payload"] for n, d, _ in parts if n == "debug" and d["type"] == "checkpoint"]
    assert len(payloads) == 12  # input, then after each of the ten nodes and the start
    history = await sdk.threads.get_history(tid, limit=100)
    assert [p["checkpoint"] for p in payloads] == [h["checkpoint"] for h in reversed(history)]
    assert payloads[0]["parent_checkpoint"] is None
    for parent, child in itertools.pairwise(payloads):
        assert child["parent_checkpoint"] == parent["checkpoint"]
