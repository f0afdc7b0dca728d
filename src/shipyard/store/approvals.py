"""Durable approval records (docs/architecture.md §4): what was asked, what was decided, by whom.

A run has at most one ``pending`` approval (a unique index holds that). Recording the same
interrupt again is a no-op; a new interrupt supersedes the old pending one. A decision is only
recorded as ``decided`` when it targets the pending approval and took effect: a stale
``content_hash`` or interrupt id is written as a ``refused`` audit row — the pending approval
stays pending, so nothing is lost — and ``StaleApprovalError`` is raised. A rejection needs
no content hash (it stops the run, whatever the content is now). Callers record a decision
after the graph showed whether it took effect (``bookkeeping.decision_outcome``): a gate
that asked again because the content changed gets a ``refused`` row, and the new request
supersedes the old one.

Statuses: ``pending`` (the run waits for it), ``decided`` (a decision took effect),
``refused`` (an audit row: a decision that was not applied; the request it answered stays
pending or is superseded), ``superseded`` (a newer request of the same run replaced it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from shipyard.contracts import ApprovalDecision, ApprovalKind, ApprovalRequest, decision_applies
from shipyard.errors import NotWaitingError, StaleApprovalError, UnknownRunError
from shipyard.store.tables import ApprovalRow, RunRow

ApprovalStatus = Literal["pending", "decided", "refused", "superseded"]


@dataclass(frozen=True)
class Approval:
    """An approval row: the request, and the decision once there is one."""

    id: int
    run_id: str
    kind: ApprovalKind
    interrupt_id: str
    content_hash: str
    request: ApprovalRequest
    decision: ApprovalDecision | None
    decided_by: str | None
    status: ApprovalStatus
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_row(cls, row: ApprovalRow) -> Approval:
        """Build from a database row."""
        request = ApprovalRequest.model_validate(row.request)
        decision = ApprovalDecision.model_validate(row.decision) if row.decision else None
        assert row.status in get_args(ApprovalStatus), f"bad approval status {row.status!r}"
        return cls(
            id=row.id,
            run_id=row.run_id,
            kind=request.kind,
            interrupt_id=row.interrupt_id,
            content_hash=row.content_hash,
            request=request,
            decision=decision,
            decided_by=row.decided_by,
            status=row.status,  # type: ignore[arg-type]  # checked above
            created_at=row.created_at,
            decided_at=row.decided_at,
        )


class Approvals:
    """The ``approvals`` table. Each method is one transaction holding the run's row lock."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def request(self, run_id: str, interrupt_id: str, request: ApprovalRequest) -> Approval:
        """Record ``request`` as the run's pending approval and return it.

        Idempotent: the same interrupt id with the same content hash returns the existing
        row. Any other pending approval of the run is marked ``superseded``.
        """
        if request.run_id != run_id:
            raise ValueError(f"approval request is for run {request.run_id!r}, not {run_id!r}")
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            _lock_run(session, run_id)
            pending = _pending(session, run_id)
            if pending is not None:
                same = pending.interrupt_id == interrupt_id
                if same and pending.content_hash == request.content_hash:
                    return Approval.from_row(pending)
                pending.status = "superseded"
                session.flush()
            row = ApprovalRow(
                run_id=run_id,
                kind=request.kind,
                interrupt_id=interrupt_id,
                content_hash=request.content_hash,
                request=request.model_dump(mode="json"),
                status="pending",
            )
            session.add(row)
            session.flush()
            session.refresh(row)
            return Approval.from_row(row)

    def decide(
        self,
        run_id: str,
        decision: ApprovalDecision,
        status: ApprovalStatus = "decided",
        *,
        interrupt_id: str | None = None,
    ) -> Approval:
        """Record ``decision`` on the run's pending approval.

        ``status="decided"``: the decision must echo the pending request's content hash (and
        interrupt id, when given); otherwise a ``refused`` row is recorded and
        ``StaleApprovalError`` raised. ``status="refused"``: only record the refusal.
        Raises ``NotWaitingError`` when nothing is pending, ``UnknownRunError`` for no run.
        """
        if status not in ("decided", "refused"):
            raise ValueError(f"a decision is recorded as 'decided' or 'refused', not {status!r}")
        with Session(self._engine, expire_on_commit=False) as session, session.begin():
            _lock_run(session, run_id)
            pending = _pending(session, run_id)
            if pending is None:
                raise NotWaitingError(f"run {run_id} is not waiting for an approval")
            problem = _mismatch(pending, decision, interrupt_id)
            if status == "refused" or problem:
                refused = _refusal(pending, decision)
                session.add(refused)
                session.flush()
                session.refresh(refused)
                result = Approval.from_row(refused)
            else:
                pending.decision = decision.model_dump(mode="json")
                pending.decided_by = decision.by
                pending.status = "decided"
                pending.decided_at = func.now()
                session.flush()
                session.refresh(pending)
                result = Approval.from_row(pending)
        if problem and status == "decided":
            raise StaleApprovalError(f"{problem}; the approval is still pending")
        return result

    def pending(self, run_id: str) -> Approval | None:
        """The pending approval of the run, or ``None``."""
        with Session(self._engine) as session:
            row = _pending(session, run_id)
            return None if row is None else Approval.from_row(row)

    def all(self, run_id: str) -> list[Approval]:
        """Every approval row of the run, oldest first."""
        statement = select(ApprovalRow).where(ApprovalRow.run_id == run_id).order_by(ApprovalRow.id)
        with Session(self._engine) as session:
            return [Approval.from_row(row) for row in session.scalars(statement)]


def _lock_run(session: Session, run_id: str) -> None:
    statement = select(RunRow.id).where(RunRow.id == run_id).with_for_update()
    if session.execute(statement).first() is None:
        raise UnknownRunError(f"no run with id {run_id!r}")


def _pending(session: Session, run_id: str) -> ApprovalRow | None:
    statement = select(ApprovalRow).where(
        ApprovalRow.run_id == run_id, ApprovalRow.status == "pending"
    )
    return session.scalars(statement).first()


def _mismatch(pending: ApprovalRow, decision: ApprovalDecision, interrupt_id: str | None) -> str:
    if interrupt_id is not None and interrupt_id != pending.interrupt_id:
        return (
            f"interrupt {interrupt_id!r} is not the one run {pending.run_id} waits on "
            f"({pending.interrupt_id!r})"
        )
    if not decision_applies(pending.content_hash, decision):
        return (
            f"the decision approves content {decision.content_hash}, but the pending "
            f"{pending.kind} approval is for {pending.content_hash} (it changed since)"
        )
    return ""


def _refusal(pending: ApprovalRow, decision: ApprovalDecision) -> ApprovalRow:
    return ApprovalRow(
        run_id=pending.run_id,
        kind=pending.kind,
        interrupt_id=pending.interrupt_id,
        content_hash=pending.content_hash,
        request=pending.request,
        decision=decision.model_dump(mode="json"),
        decided_by=decision.by,
        status="refused",
        decided_at=func.now(),
    )
