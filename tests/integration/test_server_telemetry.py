"""Telemetry below the run span: node, model and tool spans from a real graph with a
scripted chat model and a LangChain tool; exporter selection from ``OTEL_*`` variables."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import StateGraph
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from typing_extensions import TypedDict

from shipyard.errors import UserInputError
from shipyard.server.observe.telemetry import Telemetry, exporter


class State(TypedDict, total=False):
    reply: str
    tool: str


@tool
def lookup(term: str) -> str:
    """Look a term up."""
    if term == "boom":
        raise ValueError("no such term")
    return term.upper()


def graph(term: str) -> Any:
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    "secret plan",
                    usage_metadata={
                        "input_tokens": 1000,
                        "output_tokens": 200,
                        "total_tokens": 1200,
                    },
                )
            ]
        )
    )

    def think(state: State) -> State:
        config = {"metadata": {"role": "planner", "ls_model_name": "gpt-4o-mini"}}
        return {"reply": str(model.invoke("the prompt", config).content)}

    def act(state: State) -> State:
        try:
            return {"tool": lookup.invoke({"term": term})}
        except ValueError:
            return {"tool": "failed"}

    builder = StateGraph(State)
    builder.add_node("think", think)
    builder.add_node("act", act)
    builder.set_entry_point("think")
    builder.add_edge("think", "act")
    builder.set_finish_point("act")
    return builder.compile()


class FakeExecution:
    """What ``Telemetry.traced`` needs of an ``Execution``: the run and a call."""

    def __init__(self, term: str) -> None:
        self.run = type(
            "Run",
            (),
            {
                "run_id": "r1",
                "thread_id": "t1",
                "assistant_id": "a1",
                "attempts": 1,
                "kwargs": {"graph_id": "g"},
            },
        )()
        self.reason = None
        self.outcome: str | None = None
        self.term = term
        self.result: Any = None

    async def __call__(self) -> None:
        self.result = await graph(self.term).ainvoke({})
        self.outcome = "success"


def in_memory() -> tuple[Telemetry, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return Telemetry(provider), spans


async def test_model_and_tool_spans_nest_under_their_nodes() -> None:
    telemetry, exported = in_memory()
    execution = FakeExecution("abc")
    await telemetry.traced(execution)  # type: ignore[arg-type]
    assert execution.result == {"reply": "secret plan", "tool": "ABC"}
    spans = {s.name: s for s in exported.get_finished_spans()}
    run, think, act = spans["run g"], spans["node think"], spans["node act"]
    chat, lookup_span = spans["chat gpt-4o-mini"], spans["tool lookup"]
    assert chat.parent.span_id == think.context.span_id
    assert lookup_span.parent.span_id == act.context.span_id
    assert {think.parent.span_id, act.parent.span_id} == {run.context.span_id}
    assert chat.attributes["gen_ai.usage.input_tokens"] == 1000
    assert chat.attributes["gen_ai.usage.output_tokens"] == 200
    assert chat.attributes["shipyard.role"] == "planner"
    # gpt-4o-mini: $0.15 / $0.60 per million tokens
    assert chat.attributes["shipyard.cost_usd"] == pytest.approx(0.00027)
    assert run.attributes["gen_ai.usage.input_tokens"] == 1000
    assert run.attributes["shipyard.cost_usd"] == pytest.approx(0.00027)
    assert run.attributes["shipyard.model_calls"] == 1
    assert run.attributes["shipyard.run.outcome"] == "success"
    assert lookup_span.attributes["gen_ai.tool.name"] == "lookup"
    # Never contents: neither the prompt, the reply nor the tool's input or output.
    for span in spans.values():
        for attribute in span.attributes.values():
            assert attribute not in ("the prompt", "secret plan", "abc", "ABC")


async def test_failed_tool_span_is_an_error() -> None:
    telemetry, exported = in_memory()
    execution = FakeExecution("boom")
    await telemetry.traced(execution)  # type: ignore[arg-type]
    spans = {s.name: s for s in exported.get_finished_spans()}
    assert spans["tool lookup"].status.status_code == StatusCode.ERROR
    assert spans["tool lookup"].attributes["error.type"] == "ValueError"
    assert spans["node act"].attributes["shipyard.outcome"] == "success"


async def test_disabled_telemetry_runs_the_execution_untraced() -> None:
    telemetry = Telemetry.from_environ({})
    execution = FakeExecution("abc")
    await telemetry.traced(execution)  # type: ignore[arg-type]
    assert telemetry.enabled is False and execution.result["tool"] == "ABC"
    assert Telemetry.from_environ({"OTEL_TRACES_EXPORTER": "none"}).enabled is False
    disabled = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    assert Telemetry.from_environ(disabled).enabled is False


def test_exporters_are_chosen_by_otel_variables() -> None:
    console = Telemetry.from_environ({"OTEL_TRACES_EXPORTER": "console"})
    try:
        assert console.enabled and console.owned
    finally:
        console.shutdown()
    assert isinstance(exporter("console", {}), ConsoleSpanExporter)
    otlp = exporter("otlp", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    try:
        assert type(otlp).__module__.startswith("opentelemetry.exporter.otlp.proto.http")
    finally:
        otlp.shutdown()


def test_unknown_exporter_is_refused_with_the_installed_ones() -> None:
    with pytest.raises(UserInputError, match=r"'zipkin'.*console"):
        Telemetry.from_environ({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(UserInputError, match="otlp_proto_grpc"):
        exporter("otlp", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
