"""OpenTelemetry spans for request → run → node → model / tool call (docs/architecture.md §10).

``Telemetry.from_environ(os.environ)`` reads the standard variables: ``OTEL_TRACES_EXPORTER``
(comma-separated exporter names: ``otlp`` / ``otlp_proto_http``, ``console``, or any
installed ``opentelemetry_traces_exporter`` entry point; unset or ``none`` = tracing off),
``OTEL_SDK_DISABLED``, and whatever the SDK and exporters read themselves
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER`` …). With
tracing off nothing is instrumented: no middleware work, no callback handler, no context.

Tests and embedders pass their own provider instead: ``Telemetry(provider)`` in
``ServerOptions.telemetry`` (the app's lifespan uses it and does not shut it down).

The spans:

* ``{METHOD} {route}`` (server kind) per HTTP request: ``http.request.method``,
  ``http.route``, ``http.response.status_code``.
* ``run {graph_id}`` per execution attempt, child of the request that created the run (its
  W3C trace context travels in the run's ``kwargs["trace_context"]``, written only while
  tracing is on): ``shipyard.run_id``, ``shipyard.thread_id``, ``shipyard.graph_id``,
  ``shipyard.run.attempt``, ``shipyard.run.outcome``, token and cost totals of its model calls.
* ``node {name}`` per graph node, ``chat {model}`` per model call (``gen_ai.*`` token counts,
  ``shipyard.cost_usd`` from the built-in price table), ``tool {name}`` per LangChain tool —
  from a LangChain callback handler the worker installs around the run.
* ``check {name}`` per validation check, under its node (``tools/check_span.py``): the
  redacted argv, exit code, failure counts, duration, cache provenance, isolation level.

Statuses: a failing check, a node, model call or tool that raised, a refused tool call and a
failed run are ERROR with a short redacted description; a passing check is OK; the rest
UNSET. No span records exception events (their text would not be redacted).

Attributes never carry inputs, outputs, prompts, file contents or secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.tracers.context import register_configure_hook
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import UserInputError
from shipyard.server.observe.spans import SpanHandler
from shipyard.server.runs.queue import NewRun, Pool, QueuedRun, RunQueue
from shipyard.tracing import bind, describe, unbind

if TYPE_CHECKING:
    from shipyard.server.runs.execution import Execution

TRACER_NAME = "shipyard.server"
CONTEXT_KEY = "trace_context"
"""Key of the W3C trace context in a run's ``kwargs`` (present only while tracing is on)."""

_RUN_FAILED = "the run failed (the failing node's span and the run's error event say why)"
_PROPAGATOR = TraceContextTextMapPropagator()
_HANDLER: ContextVar[BaseCallbackHandler | None] = ContextVar("shipyard_span_handler", default=None)
_hook_lock = threading.Lock()
_hook_registered = False


class Telemetry:
    """The tracer of one server process; ``enabled`` is False when no provider is set."""

    def __init__(self, provider: TracerProvider | None = None, *, owned: bool = False) -> None:
        self.provider = provider
        self.owned = owned
        self.enabled = provider is not None
        self.tracer: trace.Tracer = (
            provider.get_tracer(TRACER_NAME) if provider is not None else trace.NoOpTracer()
        )
        if self.enabled:
            _register_hook()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Telemetry:
        """Tracing as the ``OTEL_*`` variables ask; ``UserInputError`` for an unknown
        exporter name (listing the installed ones)."""
        names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
        names = [n for n in names if n and n != "none"]
        if not names or environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls(None)
        service = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": "shipyard"}
        exporters = [exporter(name, environ) for name in names]  # all valid, or none started
        provider = TracerProvider(resource=Resource.create(service))
        for made in exporters:
            provider.add_span_processor(BatchSpanProcessor(made))
        return cls(provider, owned=True)

    def shutdown(self) -> None:
        """Flush and stop exporters of a provider this object created."""
        if self.provider is not None and self.owned:
            self.provider.shutdown()

    def queue(self, pool: Pool, lease_s: float) -> RunQueue:
        """The run queue for this process: one that carries the creating request's trace
        context into each new run while tracing is on, else a plain ``RunQueue``."""
        kind = TracedRunQueue if self.enabled else RunQueue
        return kind(pool, lease_s=lease_s)

    async def traced(self, execution: Execution) -> None:
        """Run ``execution()`` inside a ``run`` span with node/model/tool spans below it."""
        if not self.enabled:
            await execution()
            return
        run = execution.run
        parent = _PROPAGATOR.extract(run.kwargs.get("trace_context") or {})
        graph_id = str(run.kwargs.get("graph_id", ""))
        attributes: dict[str, str | int] = {
            "shipyard.run_id": run.run_id,
            "shipyard.thread_id": run.thread_id,
            "shipyard.assistant_id": run.assistant_id,
            "shipyard.graph_id": graph_id,
            "shipyard.run.attempt": run.attempts,
        }
        with self.tracer.start_as_current_span(
            f"run {graph_id}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,  # an exception event's text would not be redacted
            set_status_on_exception=False,
        ) as span:
            handler = SpanHandler(self.tracer, span)
            token = _HANDLER.set(handler)
            source = bind(handler)
            raised = False
            try:
                await execution()
            except Exception as err:  # a cancellation is not an error of the run
                raised = True
                span.set_status(Status(StatusCode.ERROR, describe(err)))
                raise
            finally:
                unbind(source)
                _HANDLER.reset(token)
                outcome = execution.reason or getattr(execution, "outcome", None) or "unknown"
                span.set_attribute("shipyard.run.outcome", outcome)
                handler.record_totals(span)
                if outcome == "error" and not raised:
                    span.set_status(Status(StatusCode.ERROR, _RUN_FAILED))


def exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    """The span exporter registered as ``name`` (``otlp`` means OTLP over HTTP/protobuf
    unless a gRPC exporter is installed and ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``)."""
    found = {e.name: e for e in entry_points(group="opentelemetry_traces_exporter")}
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if name == "otlp" and (protocol != "grpc" or "otlp" not in found):
        name = "otlp_proto_http" if protocol != "grpc" else "otlp_proto_grpc"
    if name not in found:
        raise UserInputError(
            f"OTEL_TRACES_EXPORTER names {name!r}, which is not installed; installed span "
            f"exporters: {', '.join(sorted(found)) or 'none'} (or set it to 'none')"
        )
    made = found[name].load()()
    if not isinstance(made, SpanExporter):
        raise UserInputError(f"exporter {name!r} is not an OpenTelemetry SpanExporter")
    return made


@contextmanager
def opened(given: Telemetry | None, environ: Mapping[str, str]) -> Iterator[Telemetry]:
    """The lifespan's telemetry: ``given`` if any, else from ``environ`` (then shut down,
    flushing spans, on exit)."""
    telemetry = given if given is not None else Telemetry.from_environ(environ)
    try:
        yield telemetry
    finally:
        if telemetry is not given:
            telemetry.shutdown()


class TracedRunQueue(RunQueue):
    """A ``RunQueue`` that stores the current trace context with each new run, so the run's
    span continues the trace of the request that created it."""

    async def enqueue(
        self, new: NewRun, claim_for: str | None = None
    ) -> tuple[QueuedRun, list[str]]:
        """``RunQueue.enqueue``, with ``kwargs["trace_context"]`` when a span is recording."""
        if trace.get_current_span().is_recording():
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier)
            new = replace(new, kwargs={**new.kwargs, "trace_context": carrier})
        return await super().enqueue(new, claim_for)


class TracingMiddleware:
    """ASGI middleware: one server span per HTTP request while tracing is on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, inside a span when the app's telemetry is enabled."""
        telemetry = _app_telemetry(scope)
        if scope["type"] != "http" or telemetry is None or not telemetry.enabled:
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        status: list[int] = []

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        attributes = {"http.request.method": method, "url.path": str(scope.get("path", ""))}
        with telemetry.tracer.start_as_current_span(
            f"{method} {scope.get('path', '')}",
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            except Exception as err:
                span.set_status(Status(StatusCode.ERROR, describe(err)))
                raise
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            if status:
                span.set_attribute("http.response.status_code", status[0])
                if status[0] >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def _app_telemetry(scope: Scope) -> Telemetry | None:
    server = getattr(getattr(scope.get("app"), "state", None), "server", None)
    found = getattr(server, "telemetry", None)
    return found if isinstance(found, Telemetry) else None


def _register_hook() -> None:
    """Make LangChain add the context's ``SpanHandler`` to every callback manager (once per
    process; the variable is unset outside traced runs, so nothing else is affected)."""
    global _hook_registered  # noqa: PLW0603 - one registration per process
    with _hook_lock:
        if not _hook_registered:
            register_configure_hook(_HANDLER, inheritable=True)
            _hook_registered = True


__all__ = [
    "CONTEXT_KEY",
    "Telemetry",
    "TracedRunQueue",
    "TracingMiddleware",
    "exporter",
    "opened",
]
