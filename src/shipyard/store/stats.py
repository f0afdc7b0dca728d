"""What Shipyard's runs add up to, read from the database: every run, started from the CLI
or over the API, since both keep their ``runs`` and ``approvals`` rows in step with the graph.

``run_stats`` answers ``GET /metrics`` (``server/observe/metrics.py``) and ``shipyard stats``, so a
person and a scraper see the same numbers:

* runs by status, and the success rate: ``completed`` among runs that ended;
* the mean time to completion: creation to the last update of ``completed`` runs;
* approvals: how many were decided, their mean wait (request to decision) and how many wait
  now;
* retries: attempts beyond a step's first (each ``refine`` of a run);
* usage: model calls, tool calls, tokens and cost, as each run last recorded them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, text

from shipyard.contracts import TERMINAL_STATUSES

_BY_STATUS = text("""SELECT status, count(*) AS n,
    avg(extract(epoch FROM updated_at - created_at)) AS mean_s
    FROM runs WHERE created_at >= :since GROUP BY status""")
_APPROVALS = text("""SELECT
    count(*) FILTER (WHERE a.status = 'decided') AS decided,
    avg(extract(epoch FROM a.decided_at - a.created_at))
        FILTER (WHERE a.status = 'decided') AS mean_wait_s,
    count(*) FILTER (WHERE a.status = 'pending') AS waiting
    FROM approvals a JOIN runs r ON r.id = a.run_id WHERE r.created_at >= :since""")
_RETRIES = text("""SELECT count(*) AS n FROM run_events e JOIN runs r ON r.id = e.run_id
    WHERE e.kind = 'refine' AND r.created_at >= :since""")
_USAGE = text("""SELECT
    coalesce(sum((usage->>'model_calls')::bigint), 0) AS model_calls,
    coalesce(sum((usage->>'tool_calls')::bigint), 0) AS tool_calls,
    coalesce(sum((usage->>'input_tokens')::bigint), 0) AS input_tokens,
    coalesce(sum((usage->>'output_tokens')::bigint), 0) AS output_tokens,
    coalesce(sum((usage->>'cost_usd')::float8), 0) AS cost_usd
    FROM runs WHERE created_at >= :since AND jsonb_typeof(usage) = 'object'""")

EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class RunStats:
    """Totals over the runs created since ``since``."""

    since: datetime
    by_status: dict[str, int] = field(default_factory=dict)
    mean_completion_s: float | None = None
    approvals_decided: int = 0
    mean_approval_wait_s: float | None = None
    approvals_waiting: int = 0
    retries: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def ended(self) -> int:
        """Runs in a terminal status."""
        return sum(n for status, n in self.by_status.items() if status in TERMINAL_STATUSES)

    @property
    def success_rate(self) -> float | None:
        """``completed`` among the runs that ended; ``None`` before any ended."""
        return self.by_status.get("completed", 0) / self.ended if self.ended else None


def run_stats(conn: Connection, since: datetime = EPOCH) -> RunStats:
    """Four statements on one connection."""
    params = {"since": since}
    rows = list(conn.execute(_BY_STATUS, params))
    completed = next((r for r in rows if r.status == "completed"), None)
    approvals = conn.execute(_APPROVALS, params).one()
    usage = conn.execute(_USAGE, params).one()
    return RunStats(
        since=since,
        by_status={r.status: int(r.n) for r in rows},
        mean_completion_s=_float(completed.mean_s) if completed is not None else None,
        approvals_decided=int(approvals.decided),
        mean_approval_wait_s=_float(approvals.mean_wait_s),
        approvals_waiting=int(approvals.waiting),
        retries=int(conn.execute(_RETRIES, params).scalar_one()),
        model_calls=int(usage.model_calls),
        tool_calls=int(usage.tool_calls),
        input_tokens=int(usage.input_tokens),
        output_tokens=int(usage.output_tokens),
        cost_usd=float(usage.cost_usd),
    )


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


__all__ = ["EPOCH", "RunStats", "run_stats"]
