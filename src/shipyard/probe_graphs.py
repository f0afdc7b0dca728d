"""Probe graphs without models: for server tests, benchmarks and the ``langgraph dev``
comparison. All are registered in ``langgraph.json`` (``probe_chain``, ``probe_interrupt``,
``probe_chat``) and compiled without a checkpointer, as the official dev server requires.

* ``chain``: ten nodes ``n0 … n9`` in a line; each appends its name to ``visited`` and adds
  one to ``count``. Input ``{"count": 0}`` ends with ``count == 10``.
* ``interrupt_graph``: ``prepare → ask → finish``. ``ask`` calls ``interrupt()`` first (with
  ``{"question": …, "topic": …}``) and stores the resume value in ``answer``.
* ``chat_graph``: ``reply → note`` on a ``messages`` list. ``reply`` calls a fake chat model
  that streams ``CHAT_REPLY`` word by word (whitespace kept: one chunk per word and per
  space); ``note`` appends ``CHAT_NOTE`` as a whole message, without a model.
"""

from __future__ import annotations

import itertools
import operator
from typing import Annotated, Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AnyMessage
from langgraph.config import get_stream_writer
from langgraph.graph import StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import TypedDict  # pydantic needs it for JSON schemas on 3.11

CHAIN_LENGTH = 10


class ChainState(TypedDict, total=False):
    """State of the chain probe."""

    count: int
    visited: Annotated[list[str], operator.add]


def _step(name: str) -> Any:
    def step(state: ChainState) -> ChainState:
        return {"count": state.get("count", 0) + 1, "visited": [name]}

    step.__name__ = name
    return step


def build_chain() -> StateGraph[ChainState, None, ChainState, ChainState]:
    """The uncompiled chain probe."""
    builder = StateGraph(ChainState)
    names = [f"n{i}" for i in range(CHAIN_LENGTH)]
    for name in names:
        builder.add_node(name, _step(name))
    builder.set_entry_point(names[0])
    for first, second in itertools.pairwise(names):
        builder.add_edge(first, second)
    builder.set_finish_point(names[-1])
    return builder


class AskState(TypedDict, total=False):
    """State of the interrupt probe."""

    topic: str
    prepared: bool
    answer: Any
    done: bool


def prepare(state: AskState) -> AskState:
    """Mark the input as seen and tell custom-stream listeners."""
    get_stream_writer()({"progress": "prepared", "topic": state.get("topic", "")})
    return {"prepared": True}


def ask(state: AskState) -> AskState:
    """Pause for a human; the resume value becomes ``answer``."""
    answer = interrupt({"question": "proceed?", "topic": state.get("topic", "")})
    return {"answer": answer}


def finish(state: AskState) -> AskState:
    """End the run."""
    return {"done": True}


def build_interrupt_graph() -> StateGraph[AskState, None, AskState, AskState]:
    """The uncompiled interrupt probe."""
    builder = StateGraph(AskState)
    builder.add_node("prepare", prepare)
    builder.add_node("ask", ask)
    builder.add_node("finish", finish)
    builder.set_entry_point("prepare")
    builder.add_edge("prepare", "ask")
    builder.add_edge("ask", "finish")
    builder.set_finish_point("finish")
    return builder


CHAT_REPLY = "Hello there, shipyard"
CHAT_NOTE = "noted"


class ChatState(TypedDict, total=False):
    """State of the chat probe."""

    messages: Annotated[list[AnyMessage], add_messages]


async def reply(state: ChatState) -> ChatState:
    """Answer with a model that streams ``CHAT_REPLY`` in chunks (a new model per call:
    the fake model's replies are an iterator)."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content=CHAT_REPLY)]))
    return {"messages": [await model.ainvoke(state.get("messages", []))]}


def note(state: ChatState) -> ChatState:
    """Append a message that no model streamed."""
    return {"messages": [AIMessage(content=CHAT_NOTE)]}


def build_chat_graph() -> StateGraph[ChatState, None, ChatState, ChatState]:
    """The uncompiled chat probe."""
    builder = StateGraph(ChatState)
    builder.add_node("reply", reply)
    builder.add_node("note", note)
    builder.set_entry_point("reply")
    builder.add_edge("reply", "note")
    builder.set_finish_point("note")
    return builder


chain = build_chain().compile()
"""The chain probe for ``langgraph.json``."""

interrupt_graph = build_interrupt_graph().compile()
"""The interrupt probe for ``langgraph.json``."""

chat_graph = build_chat_graph().compile()
"""The chat probe for ``langgraph.json``."""
