"""The runs list: the owner's Shipyard runs, those waiting for a decision first.

A run is listed when its thread belongs to the owner (over the API the thread is the run).
One query joins ``runs`` with ``threads`` and the pending approval; ``status`` filters
(``waiting`` = awaiting approval) and ``query`` searches the goal (case-insensitive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from shipyard.contracts import TERMINAL_STATUSES, RunStatus, Usage

PAGE_SIZE = 50
STATUS_FILTERS = (
    "waiting",
    "running",
    "paused",
    "completed",
    "rejected",
    "needs_human_review",
    "blocked_by_policy",
    "failed",
    "cancelled",
)


@dataclass(frozen=True)
class ListedRun:
    """One line of the runs list."""

    id: str
    status: RunStatus
    goal: str
    repo: str
    branch: str | None
    created_at: datetime
    updated_at: datetime
    usage: Usage
    waits_for: str | None
    """The kind of approval the run waits for (``plan``, ``changes``), if it waits."""

    @property
    def duration_s(self) -> float:
        """Wall time so far (until the last update once the run has ended)."""
        end = self.updated_at if self.status in TERMINAL_STATUSES else datetime.now(UTC)
        return max((end - self.created_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class RunsPage:
    """A page of the list and how many runs match in all."""

    runs: list[ListedRun]
    total: int
    offset: int


_COUNT = """
SELECT count(*) FROM runs r JOIN threads t ON t.thread_id = r.thread_id
WHERE t.owner = :owner {filters}
"""
_SELECT = """
SELECT r.id, r.status, r.goal, r.repo, r.branch, r.created_at, r.updated_at, r.usage,
       (SELECT a.kind FROM approvals a WHERE a.run_id = r.id AND a.status = 'pending'
        ORDER BY a.id DESC LIMIT 1) AS waits_for
FROM runs r JOIN threads t ON t.thread_id = r.thread_id
WHERE t.owner = :owner {filters}
ORDER BY (r.status = 'awaiting_approval') DESC, r.created_at DESC, r.id
LIMIT :limit OFFSET :offset
"""
"""The page's rows; the pending approval is looked up for those rows only (the count is a
separate query, so no per-row lookup happens for the runs not shown)."""


def list_runs(
    engine: Engine, owner: str, *, status: str = "", query: str = "", offset: int = 0
) -> RunsPage:
    """A page of ``owner``'s runs matching ``status`` and ``query`` (empty: all)."""
    filters, params = _filters(status, query)
    params |= {"owner": owner, "limit": PAGE_SIZE, "offset": max(offset, 0)}
    with engine.connect() as conn:
        rows = conn.execute(text(_SELECT.format(filters=filters)), params).mappings().all()
        total = conn.execute(text(_COUNT.format(filters=filters)), params).scalar_one()
    return RunsPage([_listed(r) for r in rows], int(total), max(offset, 0))


def _filters(status: str, query: str) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if status:
        clauses.append("AND r.status = :status")
        params["status"] = "awaiting_approval" if status == "waiting" else status
    if query.strip():
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        clauses.append("AND r.goal ILIKE :query")
        params["query"] = f"%{escaped}%"
    return " ".join(clauses), params


def _listed(row: Any) -> ListedRun:
    return ListedRun(
        id=row["id"],
        status=row["status"],
        goal=row["goal"],
        repo=row["repo"],
        branch=row["branch"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        usage=Usage.model_validate(row["usage"] or {}),
        waits_for=row["waits_for"],
    )


__all__ = ["PAGE_SIZE", "STATUS_FILTERS", "ListedRun", "RunsPage", "list_runs"]
