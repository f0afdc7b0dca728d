"""Scenarios of the ``langgraph dev`` comparison (``test_langgraph_dev_compat.py``) for the
``events`` and ``messages`` stream modes: the same SDK calls on both servers, observed as
event names, payload keys and accumulated content (ids and timestamps differ by nature).

Metadata keys are compared without the LangGraph Platform ones (``PLATFORM_METADATA``),
a difference the comparison already lists (``history.metadata.keys``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langgraph_sdk.client import LangGraphClient

Observations = dict[str, Any]

PLATFORM_METADATA = frozenset(
    {
        "created_by",
        "user_id",
        "langgraph_version",
        "langgraph_api_version",
        "langgraph_plan",
        "langgraph_host",
        "langgraph_api_url",
        "langgraph_auth_user",
        "langgraph_auth_user_id",
        "langgraph_auth_permissions",
        "langgraph_request_id",
    }
)
"""Run metadata the official server adds for its platform (Shipyard has no such host)."""

CHAT_INPUT = {"messages": [{"role": "user", "content": "hi"}]}


def _keys(data: Any) -> Any:
    return sorted(data) if isinstance(data, dict) else type(data).__name__


def _own_keys(metadata: dict[str, Any]) -> list[str]:
    return sorted(set(metadata) - PLATFORM_METADATA)


async def _parts(sdk: LangGraphClient, graph: str, graph_input: Any, **kw: Any) -> list[Any]:
    tid = (await sdk.threads.create())["thread_id"]
    return [p async for p in sdk.runs.stream(tid, graph, input=graph_input, **kw)]


def _event_shape(event: dict[str, Any], run_id: str) -> tuple[Any, ...]:
    """What an ``events`` item must match: its kind, name, keys, data keys, tags, own
    metadata keys and whether its parents start at the API run."""
    parents = event["parent_ids"]
    return (
        event["event"],
        event["name"],
        _keys(event),
        _keys(event["data"]),
        event["tags"],
        _own_keys(event["metadata"]),
        event["run_id"] == run_id,
        len(parents),
        bool(parents) and parents[0] == run_id,
    )


async def events_mode(sdk: LangGraphClient) -> Observations:
    chain = await _parts(sdk, "probe_chain", {"count": 0}, stream_mode="events")
    chain_run = chain[0].data["run_id"]
    mixed = await _parts(sdk, "probe_chain", {"count": 0}, stream_mode=["events", "updates"])
    chat = await _parts(sdk, "probe_chat", CHAT_INPUT, stream_mode="events")
    chat_run = chat[0].data["run_id"]
    streamed = [
        p.data["data"]["chunk"] for p in chat if p.data.get("event") == "on_chat_model_stream"
    ]
    return {
        "chain.names": [p.event for p in chain],
        "chain.events": [_event_shape(p.data, chain_run) for p in chain[1:]],
        "chain.root_output": chain[-1].data["data"].get("output"),
        "chain.root_input": chain[1].data["data"].get("input"),
        "mixed.sequence": [
            (p.event, p.data.get("event") if p.event == "events" else _keys(p.data)) for p in mixed
        ],
        "chat.events": [_event_shape(p.data, chat_run) for p in chat[1:]],
        "chat.chunks": [(c["type"], c["content"], _keys(c)) for c in streamed],
        "chat.model_end": [
            (p.data["data"]["output"]["content"], _keys(p.data["data"]["output"]))
            for p in chat
            if p.data.get("event") == "on_chat_model_end"
        ],
    }


def _message_shape(part: Any) -> tuple[Any, ...]:
    if part.event == "messages/metadata":
        [(_, meta)] = part.data.items()
        return part.event, _keys(meta), _own_keys(meta["metadata"])
    if part.event.startswith("messages/"):
        return part.event, [(m["type"], m["content"], _keys(m)) for m in part.data]
    return part.event, _keys(part.data)


def _ids_consistent(parts: list[Any]) -> bool:
    """Every partial/complete message has the id its ``messages/metadata`` announced."""
    announced: list[str] = []
    for part in parts:
        if part.event == "messages/metadata":
            announced += list(part.data)
        elif part.event.startswith("messages/") and [m["id"] for m in part.data] != announced[-1:]:
            return False
    return bool(announced)


async def messages_mode(sdk: LangGraphClient) -> Observations:
    chat = await _parts(sdk, "probe_chat", CHAT_INPUT, stream_mode="messages")
    with_values = await _parts(sdk, "probe_chat", CHAT_INPUT, stream_mode=["messages", "values"])
    both = await _parts(sdk, "probe_chat", CHAT_INPUT, stream_mode=["messages", "messages-tuple"])
    chain = await _parts(sdk, "probe_chain", {"count": 0}, stream_mode="messages")
    return {
        "chat": [_message_shape(p) for p in chat[1:]],
        "chat.ids": _ids_consistent(chat),
        "with_values.names": [p.event for p in with_values],
        "with_tuple.names": [p.event for p in both],
        "with_tuple.chunks": [(m["type"], m["content"]) for m, _meta in (p.data for p in both[1:])],
        "chain.names": [p.event for p in chain],
    }


async def stream_mode_joins(sdk: LangGraphClient) -> Observations:
    """A resumable run streaming ``events`` and ``messages``: which events carry ids (and
    so are replayed to a client reconnecting with ``Last-Event-ID``)."""
    tid = (await sdk.threads.create())["thread_id"]
    modes = ["events", "messages", "updates"]
    stream = sdk.runs.stream(
        tid, "probe_chat", input=CHAT_INPUT, stream_mode=modes, stream_resumable=True
    )
    parts = [p async for p in stream]
    run_id, first = parts[0].data["run_id"], parts[0].id
    joined = {}
    for mode in ("messages", "events"):
        join = sdk.runs.join_stream(tid, run_id, last_event_id=first, stream_mode=mode)
        replayed = [p async for p in join]
        sent = [q for q in parts[1:] if q.event.startswith(mode)]
        joined[mode] = [(p.event, p.data == q.data) for p, q in zip(replayed, sent, strict=False)]
        joined[mode].append(("count", len(replayed) == len(sent)))
    return {
        "resumable.with_ids": sorted({p.event for p in parts if p.id is not None}),
        "resumable.without_ids": sorted({p.event for p in parts if p.id is None}),
        "join.messages": joined["messages"],
        "join.events": sorted(set(joined["events"])),
    }


STREAM_MODE_SCENARIOS: dict[str, Callable[[LangGraphClient], Awaitable[Observations]]] = {
    "events_mode": events_mode,
    "messages_mode": messages_mode,
    "stream_mode_joins": stream_mode_joins,
}
