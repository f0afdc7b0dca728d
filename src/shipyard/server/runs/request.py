"""The body of a run-creating request and how it becomes a queued run (the LangGraph server API).

``RunCreate`` is the request body (stateful and stateless, background, stream and wait);
``run_kwargs`` checks what a schema cannot (input *or* command, ``configurable`` *or*
``context``, supported stream modes) and builds the ``kwargs`` a worker executes, merging
the assistant's config and context under the request's. ``run_dict`` is the API's ``Run``.
"""

from __future__ import annotations

from typing import Literal

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field

from shipyard.notify.guard import WebhookRefusedError, allowed_here, check_url
from shipyard.server.http.shapes import AssistantDict, Json, JsonObject
from shipyard.server.runs.queue import QueuedRun
from shipyard.server.runs.records import RunKwargs

STREAM_MODES = (
    "values",
    "updates",
    "custom",
    "messages",
    "messages-tuple",
    "events",
    "tasks",
    "checkpoints",
    "debug",
)
"""Stream modes Shipyard serves (``events`` and ``messages``: ``server.stream_modes``)."""

RESERVED_METADATA = ("thread_id", "run_id", "assistant_id", "graph_id", "run_attempt")


class Checkpoint(BaseModel):
    """A checkpoint reference in a request."""

    model_config = ConfigDict(extra="ignore")

    checkpoint_id: str | None = None
    checkpoint_ns: str = ""
    thread_id: str | None = None
    checkpoint_map: JsonObject | None = None


class RunCreate(BaseModel):
    """Body of ``POST /threads/{id}/runs[/stream|/wait]`` and ``POST /runs[/stream|/wait]``."""

    model_config = ConfigDict(extra="ignore")

    assistant_id: str = Field(min_length=1)
    input: Json = None
    command: JsonObject | None = None
    config: JsonObject | None = None
    context: JsonObject | None = None
    metadata: JsonObject | None = None
    checkpoint: Checkpoint | None = None
    checkpoint_id: str | None = None
    checkpoint_during: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    stream_mode: str | list[str] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: Literal["reject", "rollback", "interrupt", "enqueue"] = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    after_seconds: float = Field(0.0, ge=0)
    webhook: str | None = None
    feedback_keys: list[str] | None = None
    langsmith_tracer: JsonObject | None = None
    strict_resume: bool | None = None

    def modes(self) -> list[str]:
        """``stream_mode`` as a list."""
        return [self.stream_mode] if isinstance(self.stream_mode, str) else list(self.stream_mode)

    def resume(self) -> Json:
        """The resume value of ``command``, or ``None``."""
        return (self.command or {}).get("resume")


def check(body: RunCreate, *, stateless: bool) -> None:
    """Refuse combinations the schema allows but the reference server refuses, and a
    ``webhook`` the server will not call (``notify.guard``)."""
    if body.input is not None and body.command is not None:
        raise HTTPException(400, "input and command cannot both be given; send one")
    if body.command is not None:
        unknown = set(body.command) - {"resume", "update", "goto"}
        if unknown:
            raise HTTPException(422, f"command: unknown field(s) {sorted(unknown)}")
        if stateless and body.resume() is not None:
            raise HTTPException(400, "You must provide a thread_id when resuming.")
    if (body.config or {}).get("configurable") and body.context:
        raise HTTPException(
            400, "Cannot specify both configurable and context. Prefer setting context alone."
        )
    bad = [m for m in body.modes() if m not in STREAM_MODES]
    if bad:
        raise HTTPException(
            422, f"stream_mode: {bad[0]!r} is not supported; use any of {', '.join(STREAM_MODES)}"
        )
    reserved = [k for k in body.metadata or {} if k in RESERVED_METADATA]
    if reserved:
        raise HTTPException(422, f"metadata: key {reserved[0]!r} is reserved")
    if body.webhook is not None:  # checked again, address by address, when sent
        try:
            check_url(body.webhook, allowed_here())
        except WebhookRefusedError as err:
            raise HTTPException(422, f"webhook: {err}") from None


def run_kwargs(body: RunCreate, assistant: AssistantDict, *, temporary: bool) -> RunKwargs:
    """The ``kwargs`` stored with the run: what the worker passes to the graph."""
    config = {**(assistant.get("config") or {}), **(body.config or {})}
    configurable = {
        **((assistant.get("config") or {}).get("configurable") or {}),
        **((body.config or {}).get("configurable") or {}),
    }
    if configurable:
        config["configurable"] = configurable
    durability = body.durability
    if durability is None and body.checkpoint_during is not None:
        durability = "async" if body.checkpoint_during else "exit"
    checkpoint_id = body.checkpoint_id or (
        body.checkpoint.checkpoint_id if body.checkpoint else None
    )
    return {
        "graph_id": assistant["graph_id"],
        "input": body.input,
        "command": body.command,
        "config": config,
        "context": {**(assistant.get("context") or {}), **(body.context or {})},
        "stream_mode": body.modes(),
        "interrupt_before": body.interrupt_before,
        "interrupt_after": body.interrupt_after,
        "durability": durability,
        "checkpoint_during": body.checkpoint_during,
        "checkpoint_id": checkpoint_id,
        "checkpoint_ns": body.checkpoint.checkpoint_ns if body.checkpoint else "",
        "subgraphs": body.stream_subgraphs,
        "resumable": body.stream_resumable,
        "webhook": body.webhook,
        "feedback_keys": body.feedback_keys,
        "on_disconnect": body.on_disconnect,
        "temporary": temporary,
    }


def run_dict(run: QueuedRun) -> JsonObject:
    """The API's ``Run`` object."""
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": run.assistant_id,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "status": run.status,
        "metadata": run.metadata,
        "kwargs": run.kwargs,
        "multitask_strategy": run.multitask_strategy,
        "langsmith_session_name": None,  # no LangSmith host; null as the official server
    }


__all__ = ["STREAM_MODES", "Checkpoint", "RunCreate", "check", "run_dict", "run_kwargs"]
