"""A Shipyard run under tracing: its own tools (dispatched by the execute node, not LangChain
tools) appear as ``tool`` spans under the ``node execute`` span, by name only."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.llm.scripted import ScriptError
from shipyard.server.observe.telemetry import Telemetry
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, call, finish, plan_reply

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`

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


SECRET_TOKEN = "tok-5f1e2d3c4b5a69788796a5b4c3d2e1f0"
LEAKY_TEST = (
    "import pathlib\n\n"
    "def test_fixed():\n"
    f"    print('printing {SECRET_TOKEN}')\n"
    f"    assert pathlib.Path('fixed.txt').exists(), 'token {SECRET_TOKEN} rejected'\n"
)


async def test_checks_are_spans_under_validate_with_status_and_no_secret(
    settings: Settings,
    make_repo: MakeRepo,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Evidence leak: a secret of the environment, printed by the checked tests, in their
    failure message and in a configured check's argv, reaches no span attribute or status."""
    monkeypatch.setenv("SHIPYARD_SPANS_TOKEN", SECRET_TOKEN)
    repo = make_repo({"tests/test_fix.py": LEAKY_TEST})
    script = {
        "planner": [plan_reply(("s1", "fix"))],
        "developer": {
            "s1/1": [finish()],
            "s1/2": [call("write_file", path="fixed.txt", content="ok\n"), finish()],
        },
    }
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    echo = {"name": "echo", "command": ["python", "-c", "pass", f"--token={SECRET_TOKEN}"]}
    tests = {"name": "pytest", "kind": "pytest", "command": ["python", "-m", "pytest", "-q"]}
    policy = {"approvals": {"plan": "never"}, "checks": {"run": [tests, echo]}}
    async with Runner.open(scripted) as runner:
        run_input = RunInput(goal="fix", repo=str(repo), policy=policy)
        execution = RunnerExecution(runner, run_input)
        await Telemetry(provider).traced(execution)  # type: ignore[arg-type]
    assert execution.stop is not None and execution.stop.status == "completed"
    spans = exported.get_finished_spans()
    validates = [s for s in spans if s.name == "node validate"]
    assert len(validates) == 2, "\n".join(f"{s.name} {dict(s.attributes or {})}" for s in spans)
    checks = [s for s in spans if s.name.startswith("check ")]
    under: dict[int, list[str]] = {}
    for span in checks:
        assert span.parent is not None
        under.setdefault(span.parent.span_id, []).append(span.name)
    assert set(under) == {v.context.span_id for v in validates}
    first, second = (
        [s for s in checks if s.parent and s.parent.span_id == v.context.span_id]
        for v in sorted(validates, key=lambda v: v.start_time or 0)
    )
    failing = next(s for s in first if s.name == "check pytest")
    assert failing.status.status_code is StatusCode.ERROR
    assert failing.status.description and "pytest" in failing.status.description
    attrs = dict(failing.attributes or {})
    assert attrs["shipyard.check.passed"] is False
    assert attrs["shipyard.check.exit_code"] == 1
    assert attrs["shipyard.check.failure_count"] == 1
    assert attrs["shipyard.check.failures"] == 1
    assert float(attrs["shipyard.check.duration_s"]) > 0  # type: ignore[arg-type]
    assert attrs["shipyard.check.cached"] is False
    assert attrs["shipyard.check.isolation"] in {"none", "process", "namespace", "bubblewrap"}
    assert "pytest" in " ".join(attrs["shipyard.check.command"])  # type: ignore[arg-type]
    passing = next(s for s in second if s.name == "check pytest")
    assert passing.status.status_code in {StatusCode.OK, StatusCode.UNSET}
    assert dict(passing.attributes or {})["shipyard.check.exit_code"] == 0
    echoes = [s for s in checks if s.name == "check echo"]
    assert len(echoes) == 2 and all(s.status.status_code is StatusCode.OK for s in echoes)
    command = list(dict(echoes[0].attributes or {})["shipyard.check.command"])  # type: ignore[arg-type]
    assert command[:3] == ["python", "-c", "pass"] and "REDACTED" in command[3]
    for span in spans:
        shown = repr(dict(span.attributes or {})) + repr(span.status.description)
        assert SECRET_TOKEN not in shown, span.name
        assert "printing" not in shown, span.name


async def test_a_node_that_raises_has_an_error_span_and_so_has_the_failed_model_call(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    """The scripted developer has no reply for the step: the model call fails, so does the
    execute node; both spans say so in their status, with the error's type."""
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = {"planner": [plan_reply(("s1", "x"))], "developer": {}}
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        run_input = RunInput(goal="g", repo=str(repo), policy={"approvals": {"plan": "never"}})
        execution = RunnerExecution(runner, run_input)
        with pytest.raises(ScriptError):
            await Telemetry(provider).traced(execution)  # type: ignore[arg-type]
    assert execution.stop is None
    spans = {s.name: s for s in exported.get_finished_spans() if s.name != "chat ?"}
    chats = [s for s in exported.get_finished_spans() if s.name == "chat ?"]
    developer = next(s for s in chats if dict(s.attributes or {})["shipyard.role"] == "developer")
    for failed in (developer, spans["node execute"], spans["run shipyard"]):
        assert failed.status.status_code is StatusCode.ERROR, failed.name
        assert (failed.status.description or "").startswith("ScriptError: "), failed.name
        assert not failed.events, failed.name  # no exception event: its text is not redacted
    assert dict(spans["node execute"].attributes or {})["error.type"] == "ScriptError"
    for fine in ("node intake", "node plan", "node approve_plan"):
        assert spans[fine].status.status_code is StatusCode.UNSET, fine


async def test_a_refused_tool_call_is_an_error_span(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    """A read of a missing file comes back to the model as an error; its span says so."""
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    turns = [call("read_file", path="no-such-file.txt"), finish()]
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
    tools = {s.name: s for s in exported.get_finished_spans() if s.name.startswith("tool ")}
    refused = tools["tool read_file"]
    assert refused.status.status_code is StatusCode.ERROR
    assert (refused.status.description or "").startswith("ToolError: error: ")
    assert tools["tool finish"].status.status_code is StatusCode.UNSET


async def test_a_cached_check_span_names_the_run_that_produced_it(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = {"planner": [plan_reply(("s1", "x"))], "developer": {"s1/1": [finish()]}}
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    stops = []
    async with Runner.open(scripted) as runner:
        for _ in range(2):  # the same tree twice: the second run's checks come from the cache
            run_input = RunInput(goal="g", repo=str(repo), policy={"approvals": {"plan": "never"}})
            execution = RunnerExecution(runner, run_input)
            await Telemetry(provider).traced(execution)  # type: ignore[arg-type]
            assert execution.stop is not None and execution.stop.status == "completed"
            stops.append(execution.stop)
    checks = [s for s in exported.get_finished_spans() if s.name == "check pytest"]
    assert len(checks) == 2
    fresh, cached = (dict(s.attributes or {}) for s in checks)
    assert fresh["shipyard.check.cached"] is False and "shipyard.check.cached_from" not in fresh
    assert cached["shipyard.check.cached"] is True
    assert cached["shipyard.check.cached_from"] == stops[0].run_id
    assert cached["shipyard.check.exit_code"] == fresh["shipyard.check.exit_code"] == 0
