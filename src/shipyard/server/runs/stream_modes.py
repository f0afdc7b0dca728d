"""The API stream modes LangGraph has no mode for, ``events`` and ``messages``, made from
what a graph call streams, as the official server sends them (the LangGraph server API).

* ``events``: the run is driven with ``astream_events(version="v2")``; every LangChain event
  (``on_chain_start``, ``on_chat_model_stream``, …, each ``{"event", "name", "run_id",
  "tags", "metadata", "data", "parent_ids"}``) becomes an ``events`` event, except those
  tagged ``langsmith:hidden`` and the root run's ``on_chain_stream`` events, which carry the
  chunks of the other requested modes and become their events as ``astream`` parts would.
  The root run is named by the graph id, its id is the API run id (``root_config``).
* ``messages``: LangGraph's ``messages`` chunks (``(message, metadata)``) become
  ``messages/metadata`` ``{id: {"metadata": …}}`` the first time a message id is seen, then
  per chunk ``messages/partial`` with the message accumulated so far (a one-element list
  of the message, not a chunk), or ``messages/complete`` for a whole message (one that no
  model streamed). With ``messages-tuple`` also requested, the tuples win, as there.

A run asking for neither never comes here (``StreamPlan.converts``): it keeps the plain
``astream`` loop of ``server.execution``.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.messages import BaseMessage, BaseMessageChunk, message_chunk_to_message
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.types import StreamMode

from shipyard.server.http.shapes import Json
from shipyard.server.runs.graph_call import MODE_OF, event_of

EVENTS = "events"
MESSAGES = "messages"
MESSAGES_TUPLE = "messages-tuple"
HIDDEN_TAG = "langsmith:hidden"
DEFAULT_GRAPH_NAME = "LangGraph"
"""The name of a graph compiled without one."""

Event = tuple[str, Json]


@dataclass(frozen=True)
class StreamPlan:
    """How a run's requested API modes are produced."""

    requested: frozenset[str]
    graph_modes: list[str]
    """The LangGraph stream modes of the call (``events`` is none of them)."""

    @property
    def events(self) -> bool:
        """Whether the call is ``astream_events``."""
        return EVENTS in self.requested

    @property
    def messages(self) -> bool:
        """Whether ``messages`` chunks become ``messages/*`` events."""
        return MESSAGES in self.requested and MESSAGES_TUPLE not in self.requested

    @property
    def converts(self) -> bool:
        """Whether anything here is needed (else the plain ``astream`` loop serves it)."""
        return self.events or self.messages


def stream_plan(api_modes: Sequence[str] | None) -> StreamPlan:
    """The plan for a run's ``stream_mode`` list (``None``: ``values``)."""
    requested = list(api_modes or ["values"])
    graph_modes: list[str] = []
    for mode in requested:
        graph_mode = MODE_OF.get(mode, mode)
        if mode != EVENTS and graph_mode not in graph_modes:
            graph_modes.append(graph_mode)
    return StreamPlan(frozenset(requested), graph_modes)


@dataclass
class MessageStream:
    """Accumulates a run's streamed messages by id into ``messages/*`` events."""

    seen: dict[str, BaseMessage] = field(default_factory=dict)

    def events(self, chunk: Any) -> list[Event]:
        """The events of one LangGraph ``messages`` chunk ``(message, metadata)``."""
        message, metadata = chunk
        if not isinstance(message, BaseMessage):  # not from an in-process graph
            return [(MESSAGES, chunk)]
        key = str(message.id)
        found: list[Event] = []
        before = self.seen.get(key)
        if isinstance(before, BaseMessageChunk) and isinstance(message, BaseMessageChunk):
            self.seen[key] = before + message
        elif before is not None:  # a whole message stands for itself
            self.seen[key] = message
        else:
            self.seen[key] = message
            found.append(("messages/metadata", {key: {"metadata": metadata}}))
        name = "messages/partial" if isinstance(message, BaseMessageChunk) else "messages/complete"
        whole = self.seen[key]
        if isinstance(whole, BaseMessageChunk):
            whole = message_chunk_to_message(whole)
        found.append((name, [whole]))
        return found


@dataclass
class Conversion:
    """Turns one run's ``astream`` parts into API events according to its plan."""

    plan: StreamPlan
    messages: MessageStream = field(default_factory=MessageStream)

    def of_part(self, part: Any) -> Iterator[Event]:
        """The events of one ``(mode, chunk)`` / ``(namespace, mode, chunk)`` part."""
        if self.plan.messages and part[-2] == MESSAGES:
            yield from self.messages.events(part[-1])
        else:
            yield event_of(part)


def root_config(
    config: RunnableConfig, run_id: str, attempt: int, graph_id: str, graph_name: str
) -> RunnableConfig:
    """``config`` naming the graph call's LangChain run as the official server does: its
    id is the API run's on a first attempt (a fresh one on a retry: LangChain run ids are
    not reused), its name the graph id unless the graph was compiled with a name."""
    root: uuid.UUID | None = None
    if attempt <= 1:
        with contextlib.suppress(ValueError):
            root = uuid.UUID(run_id)
    named = graph_id if graph_name == DEFAULT_GRAPH_NAME else graph_name
    return {**config, "run_id": root or uuid.uuid4(), "run_name": named}


async def converted(
    graph: Pregel[Any, Any, Any, Any],
    graph_input: Json,
    config: RunnableConfig,
    plan: StreamPlan,
    **call: Any,
) -> AsyncIterator[Event]:
    """The API events of a graph call under ``plan``; ``call`` holds ``astream``'s other
    keyword arguments (context, interrupts, durability, subgraphs). With ``events``, the
    root run is the one ``config`` names (``root_config``)."""
    conversion = Conversion(plan)
    if not plan.events:
        modes = cast("list[StreamMode]", plan.graph_modes)
        parts = graph.astream(graph_input, config, stream_mode=modes, **call)
        async with aclosing(cast("AsyncGenerator[Any, None]", parts)) as stream:
            async for part in stream:
                for event in conversion.of_part(part):
                    yield event
        return
    root_id = str(config.get("run_id"))
    events = graph.astream_events(
        graph_input, config, version="v2", stream_mode=plan.graph_modes, **call
    )
    async with aclosing(cast("AsyncGenerator[Any, None]", events)) as stream:
        async for item in stream:
            if HIDDEN_TAG in (item.get("tags") or ()):
                continue
            if item["event"] == "on_chain_stream" and item["run_id"] == root_id:
                for event in conversion.of_part(item["data"]["chunk"]):
                    yield event
            else:
                yield EVENTS, item


__all__ = [
    "EVENTS",
    "MESSAGES",
    "Conversion",
    "MessageStream",
    "StreamPlan",
    "converted",
    "root_config",
    "stream_plan",
]
