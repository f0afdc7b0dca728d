"""A Shipyard run under tracing: its own tools (dispatched by the execute node, not LangChain
tools) appear as ``tool`` spans under the ``node execute`` span, by name only."""

from __future__ import annotations

import dataclasses
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shipyard.contracts import RunInput
from shipyard.runner import Runner, Stop
from shipyard.server.telemetry import Telemetry
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, call, finish, plan_reply

SECRET_CONTENT = "content-that-must-not-reach-a-span"


class RunnerExecution:
    """What ``Telemetry.traced`` needs: a run description and a call that executes it."""

    def __init__(self, runner: Runner, run_input: RunInput) -> None:
        self.run = type(
            "Run",
            (),
            {"run_id": "r1", "thread_id": "t1", "assistant_id": "a1", "attempts": 1,
             "kwargs": {"graph_id": "shipyard"}},
        )()  # fmt: skip
        self.reason = None
        self.outcome: str | None = None
        self.runner, self.run_input = runner, run_input
        self.stop: Stop | None = None

    async def __call__(self) -> None:
        self.stop = await self.runner.start(self.run_input)
        self.outcome = "success"


async def test_shipyard_tool_calls_are_spans_under_the_execute_node(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    turns = [call("write_file", path="a.txt", content=SECRET_CONTENT), finish()]
    script = {"planner": [plan_reply(("s1", "x"))], "developer": {"s1/1": turns}}
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        run_input = RunInput(goal="g", repo=str(repo), policy={"approvals": {"plan": "never"}})
        execution = RunnerExecution(runner, run_input)
        await Telemetry(provider).traced(execution)  # type: ignore[arg-type]
    assert execution.stop is not None and execution.stop.status == "completed"
    spans = exported.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    execute = by_name["node execute"][0]
    tools = [s for s in spans if s.name.startswith("tool ")]
    assert [s.name for s in tools] == ["tool write_file", "tool finish"]
    assert all(s.parent.span_id == execute.context.span_id for s in tools)
    assert {s.attributes["gen_ai.tool.name"] for s in tools} == {"write_file", "finish"}
    for span in spans:
        assert SECRET_CONTENT not in repr(dict(span.attributes or {}))
