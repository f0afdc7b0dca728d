"""LangChain callbacks → OpenTelemetry spans for graph nodes, model calls and tools.

``SpanHandler`` is installed by ``shipyard.server.observe.telemetry`` around one run; every span it
makes descends from that run's span. Attributes name things and count them (node, model,
role, tool, tokens, cost, outcome) — never inputs, outputs, prompts or file contents. A span
whose node, model call or tool raised has status ERROR with the error's type and redacted
message (``shipyard.tracing.describe``); an ``interrupt()`` is an outcome, not an error.
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables.config import var_child_runnable_config
from opentelemetry import trace
from opentelemetry.context import Context as OtelContext
from opentelemetry.trace import Span, Status, StatusCode

from shipyard.llm.pricing import cost_usd, price_for
from shipyard.tracing import describe

_INTERRUPTS = frozenset({"GraphInterrupt", "NodeInterrupt", "ParentCommand"})
"""Exceptions LangGraph uses for control flow: a node stopping at them did not fail."""


class SpanHandler(BaseCallbackHandler):
    """LangChain callbacks → ``node`` / ``chat`` / ``tool`` spans under one run span.

    Callbacks of LangChain runs that are neither (the graph itself, sequences, channel
    writes) create no span; their children attach to the nearest ancestor that has one.
    """

    run_inline = True  # called where the run happens: parents exist before children

    def __init__(self, tracer: trace.Tracer, run_span: Span) -> None:
        self.tracer = tracer
        self.run_span = run_span
        self._spans: dict[UUID, Span] = {}
        self._parents: dict[UUID, UUID | None] = {}
        self._models: dict[UUID, str] = {}
        self._lock = threading.Lock()
        self.tokens = {"input": 0, "output": 0}
        self.cost = 0.0
        self.model_calls = 0

    def record_totals(self, span: Span) -> None:
        """Put the run's token, cost and call totals on ``span``."""
        with self._lock:
            span.set_attribute("gen_ai.usage.input_tokens", self.tokens["input"])
            span.set_attribute("gen_ai.usage.output_tokens", self.tokens["output"])
            span.set_attribute("shipyard.cost_usd", round(self.cost, 6))
            span.set_attribute("shipyard.model_calls", self.model_calls)

    def node_context(self) -> OtelContext:
        """The context of the node running where this is called (the nearest ancestor with
        a span of LangChain's current runnable), else of the run: spans that code inside a
        node opens (``shipyard.tracing.child_span``) go under that node."""
        config = var_child_runnable_config.get() or {}
        callbacks = config.get("callbacks")
        parent = getattr(callbacks, "parent_run_id", None)
        return self._context(parent if isinstance(parent, UUID) else None)

    def _context(self, parent_run_id: UUID | None) -> OtelContext:
        with self._lock:
            current = parent_run_id
            while current is not None and current not in self._spans:
                current = self._parents.get(current)
            span = self._spans.get(current) if current is not None else None
        return trace.set_span_in_context(span or self.run_span)

    def _start(
        self, run_id: UUID, parent_run_id: UUID | None, name: str, attributes: dict[str, Any]
    ) -> None:
        span = self.tracer.start_span(
            name, context=self._context(parent_run_id), attributes=attributes
        )
        with self._lock:
            self._spans[run_id] = span

    def _end(self, run_id: UUID, error: BaseException | None = None) -> Span | None:
        with self._lock:
            self._parents.pop(run_id, None)
            span = self._spans.pop(run_id, None)
        if span is not None:
            if error is not None and type(error).__name__ in _INTERRUPTS:
                span.set_attribute("shipyard.outcome", "interrupted")
            elif error is not None:
                span.set_attribute("error.type", type(error).__name__)
                span.set_status(Status(StatusCode.ERROR, describe(error)))
            else:
                span.set_attribute("shipyard.outcome", "success")
            span.end()
        return span

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A graph node starts a ``node`` span; other chains only record their parent."""
        node = (metadata or {}).get("langgraph_node")
        if node is not None and kwargs.get("name") == node and parent_run_id is not None:
            step = (metadata or {}).get("langgraph_step")
            attributes = {"shipyard.node": str(node), "shipyard.step": int(step or 0)}
            self._start(run_id, parent_run_id, f"node {node}", attributes)
        else:
            with self._lock:
                self._parents[run_id] = parent_run_id

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End the node span, if this chain had one."""
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End the node span; an ``interrupt()`` is an outcome, not an error."""
        self._end(run_id, error)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a ``chat`` span naming the model and the Shipyard role (never the prompt)."""
        meta = metadata or {}
        params = kwargs.get("invocation_params") or {}
        model = str(
            meta.get("ls_model_name") or params.get("model") or params.get("model_name") or "?"
        )
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        if meta.get("role"):
            attributes["shipyard.role"] = str(meta["role"])
        with self._lock:
            self._models[run_id] = model
        self._start(run_id, parent_run_id, f"chat {model}", attributes)

    def on_llm_start(
        self, serialized: dict[str, Any] | None, prompts: list[str], **kwargs: Any
    ) -> None:
        """Completion models are traced like chat models."""
        self.on_chat_model_start(serialized, prompts, **kwargs)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """End the ``chat`` span with token counts and cost; add them to the run's totals."""
        with self._lock:
            span = self._spans.get(run_id)
            model = self._models.pop(run_id, "")
        if span is None:
            return
        input_tokens, output_tokens = _tokens(response)
        cost = cost_usd(price_for(model), input_tokens, output_tokens)
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        span.set_attribute("shipyard.cost_usd", cost)
        with self._lock:
            self.tokens["input"] += input_tokens
            self.tokens["output"] += output_tokens
            self.cost += cost
            self.model_calls += 1
        self._end(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End the ``chat`` span as failed."""
        with self._lock:
            self._models.pop(run_id, None)
        self._end(run_id, error)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Start a ``tool`` span naming the tool (never its input)."""
        name = str(kwargs.get("name") or (serialized or {}).get("name") or "tool")
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
        self._start(run_id, parent_run_id, f"tool {name}", attributes)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End the ``tool`` span."""
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """End the ``tool`` span as failed."""
        self._end(run_id, error)


def _tokens(response: LLMResult) -> tuple[int, int]:
    """(input, output) tokens of a model response: the message's ``usage_metadata``, else
    the provider's ``token_usage``."""
    for generations in response.generations:
        for generation in generations:
            if isinstance(generation, ChatGeneration):
                usage = getattr(generation.message, "usage_metadata", None)
                if usage:
                    return int(usage["input_tokens"]), int(usage["output_tokens"])
    usage = (response.llm_output or {}).get("token_usage") or {}
    return int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))


__all__ = ["SpanHandler"]
