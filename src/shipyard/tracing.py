"""Spans for work done inside a graph node, such as the checks of ``validate``
(docs/architecture.md §10).

The server's telemetry binds a :class:`SpanSource` (its LangChain span handler) for the
duration of a traced run; :func:`child_span` opens a span under the node that is running
now, found through LangChain's current runnable config. With nothing bound — tracing off,
the CLI, a test calling a tool directly — :func:`child_span` yields ``None`` after one
context-variable read, and nothing else happens.

Callers put only names, counts and already-redacted values on a span: never inputs,
outputs, file contents or secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.trace import Span

from shipyard.redact import redact

DESCRIPTION_CHARS = 200
"""Longest span status description: a short, redacted reason, never a log."""


class SpanSource(Protocol):
    """Where spans of a traced run come from: its tracer, and the context of the node that
    is running in the caller's context (the run's span outside any node)."""

    tracer: trace.Tracer

    def node_context(self) -> OtelContext:
        """The OpenTelemetry context whose span is the current node's."""
        ...


_SOURCE: ContextVar[SpanSource | None] = ContextVar("shipyard_span_source", default=None)


def bind(source: SpanSource | None) -> Token[SpanSource | None]:
    """Make ``source`` this context's span source (``None``: no spans); reset with
    :func:`unbind`. Context copies made afterwards (node threads) inherit it."""
    return _SOURCE.set(source)


def unbind(token: Token[SpanSource | None]) -> None:
    """Undo the :func:`bind` that returned ``token``."""
    _SOURCE.reset(token)


@contextmanager
def child_span(name: str, attributes: dict[str, Any] | None = None) -> Iterator[Span | None]:
    """A span named ``name`` under the current node, current while the block runs, or
    ``None`` when no span source is bound. An exception out of the block sets its status to
    ERROR (type and redacted message) and propagates."""
    source = _SOURCE.get()
    if source is None:
        yield None
        return
    with source.tracer.start_as_current_span(
        name,
        context=source.node_context(),
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as err:
            span.set_attribute("error.type", type(err).__name__)
            span.set_status(trace.Status(trace.StatusCode.ERROR, describe(err)))
            raise


def describe(error: BaseException | str) -> str:
    """A short, redacted description of ``error`` for a span status."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = redact(" ".join(text.split()))
    return text if len(text) <= DESCRIPTION_CHARS else text[: DESCRIPTION_CHARS - 1] + "…"


__all__ = ["DESCRIPTION_CHARS", "SpanSource", "bind", "child_span", "describe", "unbind"]
