"""Observability through the real server: ``GET /metrics`` read from Postgres, and the
OpenTelemetry span tree request → run → node (in-memory exporter given through
``ServerOptions.telemetry``)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from shipyard.cli.demo import GOAL, copy_example, example_dir
from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.server import ServerOptions
from shipyard.server.observe.telemetry import CONTEXT_KEY, Telemetry
from shipyard.server.runs.queue import RunQueue
from shipyard.store import open_checkpointer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_metrics_follow_runs_threads_and_usage(server, client) -> None:
    sdk = client()
    async with httpx.AsyncClient(base_url=server.url) as http:
        before = await scrape(http)
        chain = await sdk.threads.create()
        done = await sdk.runs.wait(chain["thread_id"], "probe_chain", input={"count": 0})
        ask = await sdk.threads.create()
        waiting = await sdk.runs.wait(ask["thread_id"], "probe_interrupt", input={"topic": "t"})
        after = await scrape(http)
    assert done["count"] == 10 and "__interrupt__" in waiting

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("shipyard_runs", status="success") == 2
    assert value(after, "shipyard_runs", status="running") == 0
    assert value(after, "shipyard_queue_depth") == 0
    assert moved("shipyard_approvals_waiting") == 1
    assert moved("shipyard_threads", status="interrupted") == 1
    assert moved("shipyard_threads", status="idle") == 1
    assert moved("shipyard_run_duration_seconds_count") == 2
    assert moved("shipyard_run_duration_seconds_bucket", le="+Inf") == 2
    assert moved("shipyard_run_duration_seconds_sum") > 0
    assert value(after, "shipyard_workers", state="busy") == 0
    assert value(after, "shipyard_workers", state="idle") == 1
    assert value(after, "process_resident_memory_bytes") > 0


async def test_metrics_count_every_shipyard_run_cli_runs_too(server, settings, tmp_path) -> None:
    # The demo through both gates from the CLI's runner, on the server's database.
    demo = dataclasses.replace(settings, model_script=example_dir() / "invoices.script.json")
    async with httpx.AsyncClient(base_url=server.url) as http:
        before = await scrape(http)
        async with Runner.open(demo) as runner:
            repo = copy_example(tmp_path / "invoices")
            stop = await runner.start(RunInput(goal=GOAL, repo=str(repo)))
            middle = await scrape(http)
            stop = await runner.decide(stop.run_id, "approve", by="tester")
            stop = await runner.decide(stop.run_id, "approve", by="tester")
            usage = runner.context.runs.get_run(stop.run_id).usage
        after = await scrape(http)
    assert stop.status == "completed"
    assert value(middle, "shipyard_agent_runs", status="awaiting_approval") == 1
    assert value(after, "shipyard_agent_runs", status="awaiting_approval") == 0
    assert value(after, "shipyard_agent_runs", status="completed") == 1
    assert value(after, "shipyard_agent_success_ratio") == 1.0
    assert value(after, "shipyard_agent_completion_seconds_mean") > 0
    assert value(after, "shipyard_agent_approval_wait_seconds_mean") > 0
    assert value(after, "shipyard_agent_approvals_decided_total") == 2
    assert value(after, "shipyard_agent_retries_total") == 1

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("shipyard_model_calls_total") == usage.model_calls == 8
    assert moved("shipyard_tool_calls_total") == usage.tool_calls == 6
    assert moved("shipyard_tokens_total", kind="input") == usage.input_tokens > 0
    assert moved("shipyard_tokens_total", kind="output") == usage.output_tokens > 0


async def test_queue_depth_and_retries_come_from_postgres(
    start_server, make_client, db_url
) -> None:
    # No workers: queued runs stay pending. A second server process reads the same rows.
    first = start_server(ServerOptions(workers=0))
    second = start_server(ServerOptions(workers=0))
    sdk = make_client(first.url)
    async with httpx.AsyncClient(base_url=first.url) as http:
        thread = await sdk.threads.create()
        await sdk.runs.create(thread["thread_id"], "probe_chain", input={"count": 0})
        other = await sdk.threads.create()
        await sdk.runs.create(other["thread_id"], "probe_chain", input={"count": 0})
        queued = await scrape(http)
    assert value(queued, "shipyard_queue_depth") == 2
    assert value(queued, "shipyard_runs", status="pending") == 2
    # A worker claims a run and dies; another re-claims it after the lease and finishes it.
    async with open_checkpointer(db_url) as saver:
        queue = RunQueue(saver.conn, lease_s=0.05)  # type: ignore[arg-type]
        claimed = await queue.claim("dead-worker")
        assert claimed is not None
        await asyncio.sleep(0.2)
        again = await queue.claim("live-worker")
        assert again is not None and again.run_id == claimed.run_id and again.attempts == 2
        assert await queue.finish(again.run_id, "live-worker", "success")
    async with httpx.AsyncClient(base_url=second.url) as http:
        later = await scrape(http)
    assert value(later, "shipyard_run_retries_total") == 1
    assert value(later, "shipyard_queue_depth") == 1
    assert value(later, "shipyard_runs", status="success") == 1
    assert value(later, "shipyard_run_duration_seconds_count") == 1
    assert value(later, "shipyard_workers", state="idle") == 0


async def test_metrics_need_a_key_when_keys_exist(server) -> None:
    _, secret = server.state.auth.create("scraper", "ops")
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.get("/metrics")
        samples = await scrape(http, **{"x-api-key": secret})
    assert refused.status_code == 401 and "detail" in refused.json()
    assert value(samples, "shipyard_queue_depth") == 0


def traced_server(start_server: Callable[..., object]) -> tuple[object, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    running = start_server(ServerOptions(telemetry=Telemetry(provider)))
    return running, exporter


async def spans_when(exporter: InMemorySpanExporter, name: str, n: int) -> list[ReadableSpan]:
    """The finished spans once ``n`` named ``name`` exist (the run span ends just after the
    run's row does)."""
    for _ in range(500):
        spans = list(exporter.get_finished_spans())
        if sum(s.name == name for s in spans) >= n:
            return spans
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {n} span(s) {name!r}: {[s.name for s in spans]}")


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_span_tree_request_run_node(start_server, make_client) -> None:
    running, exporter = traced_server(start_server)
    sdk = make_client(running.url)
    thread = await sdk.threads.create()
    values = await sdk.runs.wait(thread["thread_id"], "probe_chain", input={"count": 0})
    [run] = await sdk.runs.list(thread["thread_id"])
    spans = await spans_when(exporter, "run probe_chain", 1)
    assert values["count"] == 10

    [request] = [s for s in spans if s.name == "POST /threads/{thread_id}/runs/wait"]
    [run_span] = [s for s in spans if s.name == "run probe_chain"]
    nodes = [s for s in spans if s.name.startswith("node ")]
    assert request.kind == SpanKind.SERVER
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.route"] == "/threads/{thread_id}/runs/wait"
    assert run_span.context.trace_id == request.context.trace_id
    assert parent_id(run_span) == request.context.span_id
    assert dict(run_span.attributes) == {
        "shipyard.run_id": run["run_id"],
        "shipyard.thread_id": thread["thread_id"],
        "shipyard.assistant_id": run["assistant_id"],
        "shipyard.graph_id": "probe_chain",
        "shipyard.run.attempt": 1,
        "shipyard.run.outcome": "success",
        "gen_ai.usage.input_tokens": 0,
        "gen_ai.usage.output_tokens": 0,
        "shipyard.cost_usd": 0.0,
        "shipyard.model_calls": 0,
    }
    assert sorted(s.attributes["shipyard.node"] for s in nodes) == [f"n{i}" for i in range(10)]
    assert {parent_id(s) for s in nodes} == {run_span.context.span_id}
    assert {s.attributes["shipyard.outcome"] for s in nodes} == {"success"}
    # The run's stored kwargs carry the W3C context that linked it to the request.
    assert CONTEXT_KEY in run["kwargs"]


async def test_interrupted_run_span_says_waiting(start_server, make_client) -> None:
    running, exporter = traced_server(start_server)
    sdk = make_client(running.url)
    thread = await sdk.threads.create()
    await sdk.runs.wait(thread["thread_id"], "probe_interrupt", input={"topic": "t"})
    spans = await spans_when(exporter, "run probe_interrupt", 1)
    [run_span] = [s for s in spans if s.name == "run probe_interrupt"]
    [ask] = [s for s in spans if s.name == "node ask"]
    assert run_span.attributes["shipyard.run.outcome"] == "waiting"
    assert ask.attributes["shipyard.outcome"] == "interrupted"
    assert parent_id(ask) == run_span.context.span_id


async def test_no_exporter_means_no_spans_and_no_trace_context(server, client) -> None:
    sdk = client()
    thread = await sdk.threads.create()
    await sdk.runs.wait(thread["thread_id"], "probe_chain", input={"count": 0})
    [run] = await sdk.runs.list(thread["thread_id"])
    telemetry = server.state.telemetry
    assert telemetry.enabled is False
    assert CONTEXT_KEY not in run["kwargs"]
    assert type(server.state.runtime.queue) is RunQueue


async def test_a_node_that_raises_gives_error_spans(start_server, make_client) -> None:
    running, exporter = traced_server(start_server)
    sdk = make_client(running.url)
    thread = await sdk.threads.create()
    # "x" + 1 raises TypeError in the first node; the SDK raises the run's error.
    with pytest.raises(Exception, match=r"^TypeError: can only concatenate"):
        await sdk.runs.wait(thread["thread_id"], "probe_chain", input={"count": "x"})
    spans = await spans_when(exporter, "run probe_chain", 1)
    [run_span] = [s for s in spans if s.name == "run probe_chain"]
    [failed] = [s for s in spans if s.name.startswith("node ")]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description.startswith("TypeError: ")
    assert failed.attributes["error.type"] == "TypeError"
    assert run_span.attributes["shipyard.run.outcome"] == "error"
    assert run_span.status.status_code is StatusCode.ERROR
    assert run_span.status.description
