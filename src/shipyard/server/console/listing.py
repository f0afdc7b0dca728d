"""The runs list: the owner's Shipyard runs, those waiting for a decision first.

A run is listed when its thread belongs to the owner (over the API the thread is the run),
or when it has no thread (``shipyard run`` started it on this database) and the viewer is
the owner of CLI runs (``cli``: see ``config.ConsoleConfig.cli_owner_for``). One query
joins ``runs`` with ``threads`` and the pending approval; ``status`` filters (one filter
per ``RunStatus``, ``waiting`` = awaiting approval) and ``query`` searches the goal
(case-insensitive).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, get_args

from sqlalchemy import Engine, text

from shipyard.contracts import TERMINAL_STATUSES, RunStatus, Usage

PAGE_SIZE = 50
FILTER_STATUS: dict[str, RunStatus] = {
    ("waiting" if status == "awaiting_approval" else status): status
    for status in get_args(RunStatus)
}
"""The list's status filters, one per ``RunStatus`` (derived, so a new status is never
missing): each filter's name and the stored status it selects."""
STATUS_FILTERS = tuple(sorted(FILTER_STATUS, key=lambda name: name != "waiting"))
"""The filters as offered: waiting-for-me first, then in ``RunStatus`` order."""


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


CLI_RUN = """(NOT EXISTS (SELECT 1 FROM threads t WHERE t.thread_id = r.thread_id)
    AND EXISTS (SELECT 1 FROM checkpoints c WHERE c.thread_id = r.thread_id
                AND c.checkpoint_ns = ''))"""
"""SQL, on a ``runs`` row ``r``: a run started by ``shipyard run`` — it has checkpoints but
no thread. (A run of the API whose thread was deleted has neither: its checkpoints went
with the thread, and it is nobody's.)"""
IS_CLI_RUN = f"SELECT {CLI_RUN} FROM runs r WHERE r.id = :id"  # noqa: S608 - constants only
"""SQL: whether the run ``:id`` was started by ``shipyard run`` (no row: no such run)."""
_MINE = f"(t.owner = :owner OR (:cli AND t.thread_id IS NULL AND {CLI_RUN}))"
"""SQL: the viewer's runs — its threads', and the CLI's when ``:cli``."""
_COUNT = """
SELECT count(*) FROM runs r LEFT JOIN threads t ON t.thread_id = r.thread_id
WHERE {mine} {filters}
"""
_SELECT = """
SELECT r.id, r.status, r.goal, r.repo, r.branch, r.created_at, r.updated_at, r.usage,
       (SELECT a.kind FROM approvals a WHERE a.run_id = r.id AND a.status = 'pending'
        ORDER BY a.id DESC LIMIT 1) AS waits_for
FROM runs r LEFT JOIN threads t ON t.thread_id = r.thread_id
WHERE {mine} {filters}
ORDER BY (r.status = 'awaiting_approval') DESC, r.created_at DESC, r.id
LIMIT :limit OFFSET :offset
"""
"""The page's rows; the pending approval is looked up for those rows only (the count is a
separate query, so no per-row lookup happens for the runs not shown)."""


def list_runs(
    engine: Engine,
    owner: str,
    *,
    cli: bool = False,
    status: str = "",
    query: str = "",
    offset: int = 0,
) -> RunsPage:
    """A page of ``owner``'s runs matching ``status`` (a ``STATUS_FILTERS`` name) and
    ``query`` (empty: all); ``cli``: the runs started by ``shipyard run`` too."""
    filters, params = _filters(status, query)
    params |= {"owner": owner, "cli": cli, "limit": PAGE_SIZE, "offset": max(offset, 0)}
    select, count = (q.format(mine=_MINE, filters=filters) for q in (_SELECT, _COUNT))
    with engine.connect() as conn:
        rows = conn.execute(text(select), params).mappings().all()
        total = conn.execute(text(count), params).scalar_one()
    return RunsPage([_listed(r) for r in rows], int(total), max(offset, 0))


def _filters(status: str, query: str) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = []
    params: dict[str, Any] = {}
    if status in FILTER_STATUS:
        clauses.append("AND r.status = :status")
        params["status"] = FILTER_STATUS[status]
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


__all__ = [
    "FILTER_STATUS",
    "IS_CLI_RUN",
    "PAGE_SIZE",
    "STATUS_FILTERS",
    "ListedRun",
    "RunsPage",
    "list_runs",
]
