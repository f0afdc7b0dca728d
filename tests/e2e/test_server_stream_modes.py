"""The ``events`` and ``messages`` stream modes through the official SDK against the real
server, in the shapes ``langgraph dev`` sends (the opt-in comparison checks them side by
side; these pin them where no dev server is installed): LangChain ``astream_events`` v2
dicts as ``events``; ``messages/metadata`` then ``messages/partial`` (the message so far)
and ``messages/complete``. They are stored like every stream event: a resumable run
replays them, a join filters them, and stored rows are masked for secret values."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from shipyard.probe_graphs import CHAIN_LENGTH, CHAT_NOTE, CHAT_REPLY
from shipyard.secret_values import load_secrets
from shipyard.server import ServerOptions
from tests.e2e.runs_support import GRAPHS, ROOT, effects

EVENT_KEYS = {"event", "name", "run_id", "tags", "metadata", "data", "parent_ids"}
CHAT_INPUT = {"messages": [{"role": "user", "content": "hi"}]}
PARTIALS = ["Hello", "Hello ", "Hello there,", "Hello there, ", CHAT_REPLY]
"""The reply accumulated chunk by chunk (the fake model streams words and spaces)."""


async def collect(stream: Any) -> list[tuple[str, Any, str | None]]:
    return [(p.event, p.data, p.id) async for p in stream]


def chain_event_names() -> list[tuple[str, str]]:
    nodes = [
        (kind, f"n{i}")
        for i in range(CHAIN_LENGTH)
        for kind in ("on_chain_start", "on_chain_stream", "on_chain_end")
    ]
    return [("on_chain_start", "probe_chain"), *nodes, ("on_chain_end", "probe_chain")]


async def test_events_are_langchain_v2_events_of_the_run(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    parts = await collect(
        sdk.runs.stream(tid, "probe_chain", input={"count": 0}, stream_mode="events")
    )
    assert parts[0][0] == "metadata"
    run_id = parts[0][1]["run_id"]
    events = [data for name, data, _ in parts[1:]]
    assert {name for name, _, _ in parts[1:]} == {"events"}
    assert [(e["event"], e["name"]) for e in events] == chain_event_names()
    assert all(set(e) == EVENT_KEYS for e in events)
    root_start, node_start, root_end = events[0], events[1], events[-1]
    assert root_start["run_id"] == run_id and root_start["parent_ids"] == []
    assert root_start["data"] == {"input": {"count": 0}}
    assert node_start["parent_ids"] == [run_id] and node_start["tags"] == ["graph:step:1"]
    assert node_start["metadata"]["langgraph_node"] == "n0"
    assert node_start["metadata"]["thread_id"] == tid
    assert root_end["data"]["output"] == {
        "count": CHAIN_LENGTH,
        "visited": [f"n{i}" for i in range(10)],
    }
    assert (await sdk.threads.get(tid))["status"] == "idle"


async def test_events_with_another_mode_carry_its_events_not_the_root_stream(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    parts = await collect(
        sdk.runs.stream(tid, "probe_chain", input={"count": 0}, stream_mode=["events", "updates"])
    )
    names = [name for name, _, _ in parts]
    assert names.count("updates") == CHAIN_LENGTH
    updates = [data for name, data, _ in parts if name == "updates"]
    assert updates[0] == {"n0": {"count": 1, "visited": ["n0"]}}
    events = [data for name, data, _ in parts if name == "events"]
    # the root run's own on_chain_stream events became the updates
    assert [(e["event"], e["name"]) for e in events] == chain_event_names()
    # each node's update follows its on_chain_end, as on the official server
    first_update = names.index("updates")
    assert parts[first_update - 1][1]["event"] == "on_chain_end"
    assert parts[first_update - 1][1]["name"] == "n0"


async def test_events_of_a_chat_model_stream_its_chunks(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    parts = await collect(
        sdk.runs.stream(tid, "probe_chat", input=CHAT_INPUT, stream_mode="events")
    )
    events = [data for name, data, _ in parts if name == "events"]
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["on_chain_start", "on_chain_start", "on_chat_model_start"]
    streamed = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert [e["data"]["chunk"]["content"] for e in streamed] == [
        "Hello",
        " ",
        "there,",
        " ",
        "shipyard",
    ]
    assert {e["data"]["chunk"]["type"] for e in streamed} == {"AIMessageChunk"}
    [end] = [e for e in events if e["event"] == "on_chat_model_end"]
    assert end["data"]["output"]["content"] == CHAT_REPLY
    assert end["metadata"]["langgraph_node"] == "reply"
    assert kinds[-1] == "on_chain_end" and events[-1]["name"] == "probe_chat"


async def test_events_run_stops_at_an_interrupt_and_resumes(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    modes = ["events", "values"]
    first = await collect(
        sdk.runs.stream(tid, "probe_interrupt", input={"topic": "t"}, stream_mode=modes)
    )
    last_values = [data for name, data, _ in first if name == "values"][-1]
    assert last_values["__interrupt__"][0]["value"] == {"question": "proceed?", "topic": "t"}
    kinds = [(d["event"], d["name"]) for n, d, _ in first if n == "events"]
    assert ("on_chain_start", "ask") in kinds and ("on_chain_start", "finish") not in kinds
    assert (await sdk.threads.get(tid))["status"] == "interrupted"
    resumed = await collect(
        sdk.runs.stream(tid, "probe_interrupt", command={"resume": "yes"}, stream_mode=modes)
    )
    kinds = [(d["event"], d["name"]) for n, d, _ in resumed if n == "events"]
    assert kinds[0] == ("on_chain_start", "probe_interrupt")
    assert ("on_chain_end", "finish") in kinds
    final = [data for name, data, _ in resumed if name == "values"][-1]
    assert final == {"topic": "t", "prepared": True, "answer": "yes", "done": True}
    assert (await sdk.threads.get(tid))["status"] == "idle"


async def test_messages_are_metadata_then_the_message_so_far(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    parts = await collect(
        sdk.runs.stream(tid, "probe_chat", input=CHAT_INPUT, stream_mode="messages")
    )
    names = [name for name, _, _ in parts]
    assert names == [
        "metadata",
        "messages/metadata",
        *["messages/partial"] * len(PARTIALS),
        "messages/metadata",
        "messages/complete",
    ]
    first_meta = parts[1][1]
    [reply_id] = first_meta
    assert first_meta[reply_id]["metadata"]["langgraph_node"] == "reply"
    assert first_meta[reply_id]["metadata"]["ls_provider"] == "genericfakechatmodel"
    partials = [data for name, data, _ in parts if name == "messages/partial"]
    assert all(len(p) == 1 for p in partials)
    assert [p[0]["content"] for p in partials] == PARTIALS
    assert {(p[0]["type"], p[0]["id"]) for p in partials} == {("ai", reply_id)}
    note_meta, complete = parts[-2][1], parts[-1][1]
    [note_id] = note_meta
    assert note_meta[note_id]["metadata"]["langgraph_node"] == "note"
    assert [(m["type"], m["id"], m["content"]) for m in complete] == [("ai", note_id, CHAT_NOTE)]
    values = (await sdk.threads.get_state(tid))["values"]
    assert [m["content"] for m in values["messages"]] == ["hi", CHAT_REPLY, CHAT_NOTE]
    assert [m["id"] for m in values["messages"][1:]] == [reply_id, note_id]


async def test_messages_tuple_stays_langgraphs_messages_and_wins_over_messages(client) -> None:
    sdk = client()
    for modes in (["messages-tuple"], ["messages", "messages-tuple"]):
        tid = (await sdk.threads.create())["thread_id"]
        parts = await collect(
            sdk.runs.stream(tid, "probe_chat", input=CHAT_INPUT, stream_mode=modes)
        )
        assert [name for name, _, _ in parts] == ["metadata", *["messages"] * 6], modes
        chunks = [data for name, data, _ in parts[1:]]
        assert [m["content"] for m, _meta in chunks] == [
            "Hello",
            " ",
            "there,",
            " ",
            "shipyard",
            CHAT_NOTE,
        ]
        assert (
            chunks[0][0]["type"] == "AIMessageChunk" and chunks[0][1]["langgraph_node"] == "reply"
        )


async def test_messages_without_a_model_and_values_alongside(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    chain = await collect(
        sdk.runs.stream(tid, "probe_chain", input={"count": 0}, stream_mode="messages")
    )
    assert [name for name, _, _ in chain] == ["metadata"]
    tid = (await sdk.threads.create())["thread_id"]
    parts = await collect(
        sdk.runs.stream(tid, "probe_chat", input=CHAT_INPUT, stream_mode=["messages", "values"])
    )
    names = [name for name, _, _ in parts]
    assert names.count("values") == 3 and names.count("messages/partial") == len(PARTIALS)
    # the reply's partials come between the first and the second state
    assert names.index("messages/partial") > names.index("values")
    second_values = [i for i, n in enumerate(names) if n == "values"][1]
    assert names[second_values - 1] == "messages/partial"


async def test_events_and_messages_are_stored_replayed_and_filtered_on_join(client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    modes = ["events", "messages", "updates"]
    stream = sdk.runs.stream(
        tid, "probe_chat", input=CHAT_INPUT, stream_mode=modes, stream_resumable=True
    )
    parts = await collect(stream)
    run_id = parts[0][1]["run_id"]
    assert all(ident is not None for _, _, ident in parts)
    names = {name for name, _, _ in parts}
    assert names == {
        "metadata",
        "events",
        "messages/metadata",
        "messages/partial",
        "messages/complete",
        "updates",
    }
    replay = await collect(sdk.runs.join_stream(tid, run_id, last_event_id="0"))
    assert replay == parts[1:]
    only_messages = await collect(
        sdk.runs.join_stream(tid, run_id, last_event_id="0", stream_mode="messages")
    )
    assert only_messages == [p for p in parts if p[0].startswith("messages/")]
    only_events = await collect(
        sdk.runs.join_stream(tid, run_id, last_event_id="0", stream_mode="events")
    )
    assert only_events == [p for p in parts if p[0] == "events"]


async def test_cancelling_an_events_run_stops_it_and_keeps_what_it_streamed(
    start_server, make_client, tmp_path
) -> None:
    running = start_server(ServerOptions(workers=1, graphs=GRAPHS, graphs_base=ROOT))
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]
    slow = {"dir": str(tmp_path), "hold_s": 60}
    run = await sdk.runs.create(tid, "slow", input=slow, stream_mode="events", durability="sync")
    deadline = asyncio.get_running_loop().time() + 30
    while "hold-start" not in effects(tmp_path):
        assert asyncio.get_running_loop().time() < deadline, "the hold never started"
        await asyncio.sleep(0.05)
    await sdk.runs.cancel(tid, run["run_id"], action="interrupt")
    await sdk.runs.join(tid, run["run_id"])
    assert (await sdk.runs.get(tid, run["run_id"]))["status"] == "interrupted"
    assert effects(tmp_path) == ["first", "hold-start"]
    assert (await sdk.threads.get(tid))["status"] == "idle"
    # a join of an ended run sends nothing, as on the official server
    assert await collect(sdk.runs.join_stream(tid, run["run_id"])) == []
    query = "SELECT data->>'event', data->>'name' FROM run_stream_events WHERE run_id = :r"
    with running.state.engine.connect() as conn:
        stored = {(r[0], r[1]) for r in conn.execute(text(query), {"r": run["run_id"]})}
    assert {("on_chain_end", "first"), ("on_chain_start", "hold")} <= stored
    assert ("on_chain_end", "hold") not in stored


@pytest.fixture
def chat_secret(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A secret value (masked by its variable's name) in the environment of this process,
    which is the server's, read as a process entry point reads it; forgotten afterwards."""
    value = "sv-" + secrets.token_hex(12)
    monkeypatch.setenv("PROBE_CHAT_TOKEN", value)
    load_secrets()
    yield value
    monkeypatch.delenv("PROBE_CHAT_TOKEN")
    load_secrets()


async def test_secret_leak_events_and_messages_rows_are_masked(
    server, client, chat_secret: str
) -> None:
    """Secret leak: a secret value in a chat message reaches neither the stored ``events``
    / ``messages/*`` rows nor the stream read back from them."""
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    said = {"messages": [{"role": "user", "content": f"the token is {chat_secret}"}]}
    parts = await collect(
        sdk.runs.stream(tid, "probe_chat", input=said, stream_mode=["events", "messages"])
    )
    run_id = parts[0][1]["run_id"]
    query = "SELECT event, data::text FROM run_stream_events WHERE run_id = :r ORDER BY seq"
    with server.state.engine.connect() as conn:
        rows = [(r[0], r[1]) for r in conn.execute(text(query), {"r": run_id})]
    assert {event for event, _ in rows} >= {"events", "messages/partial", "messages/complete"}
    stored = "\n".join(text for _, text in rows)
    assert chat_secret not in stored
    assert "[REDACTED:PROBE_CHAT_TOKEN]" in stored  # the input was in the events
    assert chat_secret not in repr([data for _, data, _ in parts])
    assert (await sdk.runs.get(tid, run_id))["status"] == "success"
