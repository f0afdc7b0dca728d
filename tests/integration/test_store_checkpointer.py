"""Checkpoints through a real graph and Postgres: contracts come back as themselves,
foreign types do not."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from shipyard.contracts import CONTRACT_TYPES, Evidence, Failure, Plan, PlanStep, Usage
from shipyard.store import contract_allowlist, open_checkpointer


class _State(TypedDict, total=False):
    plan: Plan
    evidence: list[Evidence]
    usage: Usage
    other: Any


class Foreign(BaseModel):
    """A type that is not a Shipyard contract: it must not be revived from a checkpoint."""

    secret: str


_PLAN = Plan(
    summary="validate dates",
    steps=[PlanStep(id="s1", title="validate", instructions="add checks", files_hint=["d.py"])],
    risk="low",
)
_EVIDENCE = [
    Evidence(
        check="pytest",
        command=["pytest", "-q"],
        exit_code=1,
        passed=False,
        duration_s=1.5,
        summary="1 failed",
        failures=[Failure(id="tests/test_d.py::test_x", message="assert 1 == 2", line=3)],
    )
]


def _graph(update: _State) -> StateGraph[_State]:
    builder = StateGraph(_State)
    builder.add_node("work", lambda _state: update)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return builder


def test_allowlist_names_exactly_the_contract_types() -> None:
    assert contract_allowlist() == [("shipyard.contracts", c.__name__) for c in CONTRACT_TYPES]


async def test_contracts_round_trip_through_a_checkpoint_without_warnings(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    config: RunnableConfig = {"configurable": {"thread_id": "t-contracts"}}
    usage = Usage(model_calls=2, input_tokens=10, cost_usd=0.01)
    async with open_checkpointer(db_url) as saver:
        graph = _graph({"plan": _PLAN, "evidence": _EVIDENCE, "usage": usage}).compile(
            checkpointer=saver
        )
        await graph.ainvoke(_State(), config)

    # A fresh checkpointer (new pool) reads the rows back from Postgres.
    async with open_checkpointer(db_url) as saver:
        graph = _graph({}).compile(checkpointer=saver)
        values = (await graph.aget_state(config)).values

    assert values == {"plan": _PLAN, "evidence": _EVIDENCE, "usage": usage}
    assert type(values["plan"]) is Plan
    assert type(values["evidence"][0].failures[0]) is Failure
    assert [r.getMessage() for r in caplog.records] == []


async def test_a_foreign_type_is_not_revived_as_that_type(db_url: str) -> None:
    config: RunnableConfig = {"configurable": {"thread_id": "t-foreign"}}
    async with open_checkpointer(db_url) as saver:
        graph = _graph({"other": Foreign(secret="s3cret")}).compile(checkpointer=saver)
        await graph.ainvoke(_State(), config)

    async with open_checkpointer(db_url) as saver:
        checkpoint = await saver.aget_tuple(config)

    assert checkpoint is not None
    other = checkpoint.checkpoint["channel_values"]["other"]
    assert not isinstance(other, Foreign)
    assert other == {"secret": "s3cret"}


async def test_two_checkpointers_set_up_the_same_database_concurrently(db_url: str) -> None:
    async def open_and_count() -> int:
        async with open_checkpointer(db_url) as saver:
            return len([c async for c in saver.alist(None)])

    assert list(await asyncio.gather(open_and_count(), open_and_count())) == [0, 0]
