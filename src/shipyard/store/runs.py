"""Runs, their approvals and their event log, as durable records.

``RunStore`` is the one place that reads and writes the ``runs``, ``approvals`` and
``run_events`` tables. Approval bookkeeping is delegated to ``store/approvals.py``; the
methods here keep the surface callers use in one object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.contracts import ApprovalDecision, ApprovalRequest, RunStatus, Usage
from shipyard.errors import UnknownRunError
from shipyard.secret_values import redact_values
from shipyard.store.approvals import Approval, Approvals, ApprovalStatus
from shipyard.store.jsonb import jsonb
from shipyard.store.run_holders import is_interrupted
from shipyard.store.run_leases import RunLeases, holder_gone
from shipyard.store.stats import EPOCH, RunStats, run_stats
from shipyard.store.tables import RunEventRow, RunRow
from shipyard.store.writer import Query, writer_for

MIN_PREFIX = 6
"""Shortest id prefix ``get_run`` accepts, like git's abbreviated commit ids."""

_UPDATABLE = frozenset(
    {
        "status",
        "goal",
        "repo",
        "branch",
        "base_commit",
        "head_commit",
        "report_path",
        "error",
        "usage",
        "delivery_status",
        "delivery_error",
        "pull_request_url",
    }
)


_SELECT = select(RunRow, holder_gone())
"""A run with whether its holder is gone, in one read."""


@dataclass(frozen=True)
class Run:
    """A run as stored."""

    id: str
    thread_id: str
    status: RunStatus
    goal: str
    repo: str
    branch: str | None
    base_commit: str | None
    head_commit: str | None
    report_path: str | None
    error: str | None
    usage: Usage
    created_at: datetime
    updated_at: datetime
    interrupted: bool = False
    """Stored as ``running`` but no process drives it any more (``store/run_leases.py``):
    ``shipyard resume`` continues it."""
    cancel_requested: bool = False
    cancel_by: str | None = None
    """Who asked to cancel the run (``shipyard cancel``), if anyone did."""
    delivery_status: str | None = None
    """``delivered``, ``failed`` or ``refused`` once delivery was tried (``nodes.deliver``)."""
    delivery_error: str | None = None
    pull_request_url: str | None = None

    @classmethod
    def from_row(cls, row: RunRow, holder_gone: bool = False) -> Run:
        """Build from a database row (and whether its holder is gone)."""
        return cls(
            id=row.id,
            thread_id=row.thread_id,
            status=_status(row.status),
            goal=row.goal,
            repo=row.repo,
            branch=row.branch,
            base_commit=row.base_commit,
            head_commit=row.head_commit,
            report_path=row.report_path,
            error=row.error,
            usage=Usage.model_validate(row.usage),
            created_at=row.created_at,
            updated_at=row.updated_at,
            interrupted=is_interrupted(row.status, holder_gone, row.lease_owner),
            cancel_requested=row.cancel_requested_at is not None,
            cancel_by=row.cancel_requested_by,
            delivery_status=row.delivery_status,
            delivery_error=row.delivery_error,
            pull_request_url=row.pull_request_url,
        )


@dataclass(frozen=True)
class RunEvent:
    """One entry of a run's event log; ``seq`` counts 1, 2, 3… per run."""

    run_id: str
    seq: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime


_APPEND: Query = """
    WITH bump AS (
        UPDATE runs SET event_seq = event_seq + 1 WHERE id = %(run_id)s RETURNING event_seq
    )
    INSERT INTO run_events (run_id, seq, kind, payload)
    SELECT %(run_id)s, event_seq, %(kind)s, %(payload)s FROM bump
    RETURNING seq, created_at
"""
"""One round trip: the CTE takes the run's row lock (ordering concurrent appends) and the
insert uses the bumped counter. An unknown run inserts nothing."""


class RunStore:
    """Runs, approvals and events in Postgres. Every method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._approvals = Approvals(engine)
        self._writer = writer_for(engine)
        self.leases = RunLeases(engine)

    @property
    def engine(self) -> Engine:
        """The engine these rows live in (for writes that go with them: ``shipyard.notify``)."""
        return self._engine

    def create_run(
        self,
        goal: str,
        repo: str,
        *,
        run_id: str | None = None,
        thread_id: str | None = None,
        status: RunStatus = "running",
    ) -> Run:
        """Insert a run; ``run_id`` defaults to a new UUID, ``thread_id`` to the run id."""
        run_id = run_id or str(uuid.uuid4())
        row = RunRow(
            id=run_id,
            thread_id=thread_id or run_id,
            status=_status(status),
            goal=redact_values(goal),
            repo=repo,
            usage=Usage().model_dump(mode="json"),
        )
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                session.add(row)
        except IntegrityError as exc:
            raise ValueError(f"a run with id {run_id!r} already exists") from exc
        return self.get_run(run_id)

    def update_run(self, run_id: str, **fields: Any) -> Run:
        """Set the given fields (``usage`` as a ``Usage``) and ``updated_at``; return the run."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(
                f"cannot update run field(s) {sorted(unknown)}; allowed: {sorted(_UPDATABLE)}"
            )
        if "status" in fields:
            fields["status"] = _status(fields["status"])
        for name in ("goal", "error", "delivery_error"):  # text a person or a command wrote
            if isinstance(fields.get(name), str):
                fields[name] = redact_values(fields[name])
        if isinstance(fields.get("usage"), Usage):
            fields["usage"] = fields["usage"].model_dump(mode="json")
        statement = (
            update(RunRow)
            .where(RunRow.id == run_id)
            .values(**fields, updated_at=func.now())
            .returning(RunRow.id)
        )
        with self._engine.begin() as conn:
            if conn.execute(statement).first() is None:
                raise UnknownRunError(f"no run with id {run_id!r}")
        return self.get_run(run_id)

    def get_run(self, run_id: str) -> Run:
        """The run with this id, or with this unique id prefix (at least 6 characters)."""
        with Session(self._engine) as session:
            found = session.execute(_SELECT.where(RunRow.id == run_id)).first()
            if found is not None:
                return Run.from_row(*found)
            if len(run_id) < MIN_PREFIX:
                raise UnknownRunError(
                    f"no run with id {run_id!r} (a prefix must have at least {MIN_PREFIX} "
                    "characters)"
                )
            return Run.from_row(*_by_prefix(session, run_id))

    def list_runs(self, limit: int = 20) -> list[Run]:
        """The newest runs first."""
        statement = _SELECT.order_by(RunRow.created_at.desc(), RunRow.id).limit(limit)
        with Session(self._engine) as session:
            return [Run.from_row(row, gone) for row, gone in session.execute(statement)]

    def record_approval_request(
        self, run_id: str, interrupt_id: str, request: ApprovalRequest
    ) -> Approval:
        """Record a pending approval (idempotent per interrupt id); see ``Approvals.request``."""
        return self._approvals.request(run_id, interrupt_id, request)

    def record_decision(
        self,
        run_id: str,
        decision: ApprovalDecision,
        status: ApprovalStatus = "decided",
        *,
        interrupt_id: str | None = None,
    ) -> Approval:
        """Record a decision on the pending approval; see ``Approvals.decide``."""
        return self._approvals.decide(run_id, decision, status, interrupt_id=interrupt_id)

    def pending_approval(self, run_id: str) -> Approval | None:
        """The approval the run waits for, if any."""
        return self._approvals.pending(run_id)

    def approvals(self, run_id: str) -> list[Approval]:
        """Every approval row of the run, oldest first."""
        return self._approvals.all(run_id)

    def append_event(self, run_id: str, kind: str, payload: dict[str, Any]) -> RunEvent:
        """Append an event; its ``seq`` is one more than the run's previous event."""
        row = self._writer.now(_APPEND, _event(run_id, kind, payload))
        if row is None:
            raise UnknownRunError(f"no run with id {run_id!r}")
        return RunEvent(run_id, row["seq"], kind, payload, row["created_at"])

    def append_event_behind(self, run_id: str, kind: str, payload: dict[str, Any]) -> None:
        """Append an event without waiting: it is written before the step's checkpoint
        (``store.writer``). For a run that exists; for an unknown one nothing is written."""
        self._writer.behind(_APPEND, _event(run_id, kind, payload))

    def stats(self, since: datetime = EPOCH) -> RunStats:
        """What the runs created since ``since`` add up to (``store.stats``)."""
        with self._engine.connect() as conn:
            return run_stats(conn, since)

    def events(self, run_id: str, after_seq: int = 0) -> list[RunEvent]:
        """The run's events with ``seq > after_seq``, in order."""
        statement = (
            select(RunEventRow)
            .where(RunEventRow.run_id == run_id, RunEventRow.seq > after_seq)
            .order_by(RunEventRow.seq)
        )
        self._writer.send()
        with Session(self._engine) as session:
            return [
                RunEvent(r.run_id, r.seq, r.kind, r.payload, r.created_at)
                for r in session.scalars(statement)
            ]


def _event(run_id: str, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run_id, "kind": kind, "payload": jsonb(payload)}


def _by_prefix(session: Session, prefix: str) -> tuple[RunRow, bool]:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    statement = _SELECT.where(RunRow.id.like(escaped + "%", escape="\\")).limit(6)
    rows = [(row, gone) for row, gone in session.execute(statement)]
    if not rows:
        raise UnknownRunError(f"no run with id or id prefix {prefix!r}")
    if len(rows) > 1:
        shown = ", ".join(sorted(r.id for r, _ in rows)[:5])
        raise UnknownRunError(
            f"run id prefix {prefix!r} is ambiguous: it matches {shown}"
            f"{' and more' if len(rows) > 5 else ''}; give more characters"
        )
    return rows[0]


def _status(value: str) -> RunStatus:
    if value not in get_args(RunStatus):
        raise ValueError(f"unknown run status {value!r}; expected one of {get_args(RunStatus)}")
    return value  # type: ignore[return-value]  # checked just above
