"""A graph with observable side effects and a node that holds, for cancel and crash tests.

Input ``{"dir": <directory>, "hold_s": <seconds>}``. Every node appends a line to
``<dir>/effects`` (``first``, ``hold-start``, ``hold-done``, ``last``), so a test can count
how often each side effect happened. ``hold`` waits ``hold_s`` seconds.
"""

from __future__ import annotations

import asyncio
import operator
from pathlib import Path
from typing import Annotated

from langgraph.graph import StateGraph
from typing_extensions import TypedDict


class SlowState(TypedDict, total=False):
    dir: str
    hold_s: float
    log: Annotated[list[str], operator.add]


def effect(state: SlowState, line: str) -> None:
    with (Path(state["dir"]) / "effects").open("a") as out:
        out.write(line + "\n")


async def first(state: SlowState) -> SlowState:
    effect(state, "first")
    return {"log": ["first"]}


async def hold(state: SlowState) -> SlowState:
    effect(state, "hold-start")
    await asyncio.sleep(float(state.get("hold_s", 0)))
    effect(state, "hold-done")
    return {"log": ["hold"]}


async def last(state: SlowState) -> SlowState:
    effect(state, "last")
    return {"log": ["last"]}


def build() -> StateGraph[SlowState, None, SlowState, SlowState]:
    builder = StateGraph(SlowState)
    builder.add_node("first", first)
    builder.add_node("hold", hold)
    builder.add_node("last", last)
    builder.set_entry_point("first")
    builder.add_edge("first", "hold")
    builder.add_edge("hold", "last")
    builder.set_finish_point("last")
    return builder


slow = build().compile()
