"""The records of the run queue: a queued run, a run to enqueue, what a run's end leaves
its thread at, and the statuses and strategies they use (see ``queue.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NotRequired, TypedDict, get_args

import psycopg
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

from shipyard.errors import UnknownRunError, UserInputError
from shipyard.server.http.shapes import Json, JsonObject

RunStatus = Literal["pending", "running", "success", "error", "timeout", "interrupted"]
MultitaskStrategy = Literal["reject", "rollback", "interrupt", "enqueue"]
CancelAction = Literal["interrupt", "rollback"]
ACTIVE: tuple[RunStatus, ...] = ("pending", "running")
TERMINAL: tuple[RunStatus, ...] = ("success", "error", "timeout", "interrupted")

Pool = AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]
Conn = psycopg.AsyncConnection[DictRow]


class RunKwargs(TypedDict):
    """What a worker passes to the graph, stored with the run (``kwargs`` of the API's
    ``Run``). Built by ``request.run_kwargs`` from the request and its assistant."""

    graph_id: str
    input: Json
    command: JsonObject | None
    config: JsonObject
    context: JsonObject
    stream_mode: list[str]
    interrupt_before: Literal["*"] | list[str] | None
    interrupt_after: Literal["*"] | list[str] | None
    durability: Literal["sync", "async", "exit"] | None
    checkpoint_during: bool | None
    checkpoint_id: str | None
    checkpoint_ns: str
    subgraphs: bool
    resumable: bool
    webhook: str | None
    feedback_keys: list[str] | None
    on_disconnect: Literal["cancel", "continue"]
    temporary: bool
    """A stateless run's thread, deleted when the run ends."""
    trace_context: NotRequired[dict[str, str]]
    """The creating request's W3C trace context (only while tracing is on)."""


@dataclass(frozen=True)
class ThreadOutcome:
    """What a run's end leaves its thread at: ``values``/``interrupts`` (JSON-able) replace
    the cached latest state unless ``None``; ``error`` replaces the thread's error."""

    status: str
    values: Json = None
    interrupts: Json = None
    error: Json = None


class ThreadBusyError(UserInputError):
    """``multitask_strategy="reject"`` and the thread already has a pending or running run."""


class NoSuchThreadError(UnknownRunError):
    """The thread a run was enqueued for does not exist or is another owner's."""


@dataclass(frozen=True)
class QueuedRun:
    """A row of ``api_runs``."""

    run_id: str
    thread_id: str
    owner: str
    assistant_id: str
    status: RunStatus
    kwargs: RunKwargs
    metadata: JsonObject
    multitask_strategy: MultitaskStrategy
    lease_owner: str | None
    lease_expires_at: datetime | None
    attempts: int
    cancel_action: CancelAction | None
    start_checkpoint_id: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    latest_checkpoint_id: str | None = None
    """Set by a claim: the thread's newest checkpoint when the run was claimed."""
    head_known: bool = False
    """Whether ``latest_checkpoint_id`` was read by the claim (``None`` then means the
    thread had no checkpoint), not merely absent from the row."""
    more: bool = False
    """Set by a claim: other runs were waiting to be claimed."""

    @classmethod
    def from_row(cls, row: DictRow) -> QueuedRun:
        """Build from a row with every column of ``api_runs`` (and a claim's extras)."""
        fields = dict(row)
        fields["head_known"] = "latest_checkpoint_id" in fields
        if fields["status"] not in get_args(RunStatus):
            raise ValueError(f"run {fields['run_id']} has unknown status {fields['status']!r}")
        return cls(**fields)


@dataclass(frozen=True)
class NewRun:
    """What a route asks the queue to enqueue."""

    thread_id: str
    owner: str
    assistant_id: str
    kwargs: RunKwargs
    metadata: JsonObject
    multitask_strategy: MultitaskStrategy = "enqueue"
    after_seconds: float = 0.0
    run_id: str | None = None
    tags: JsonObject = field(default_factory=dict)
    """Merged into the thread's metadata unless it names a ``graph_id`` and an
    ``assistant_id`` already."""
