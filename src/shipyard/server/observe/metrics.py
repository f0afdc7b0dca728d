"""``GET /metrics``: Prometheus text format (docs/architecture.md §10).

Everything that describes runs, threads and usage is read from Postgres when scraped, so
every server process answers the same numbers (a counter kept in one process's memory would
not see runs executed by workers elsewhere). Only ``shipyard_workers`` and the ``process_*``
metrics describe the scraped process itself.

* ``shipyard_runs{status}``: stored runs by status (pending … interrupted).
* ``shipyard_queue_depth``: runs waiting to be claimed.
* ``shipyard_run_duration_seconds``: histogram of creation → end of finished runs.
* ``shipyard_run_retries_total``: lease re-claims (attempts beyond the first) of stored runs.
* ``shipyard_threads{status}``; ``shipyard_approvals_waiting``: threads waiting at an
  interrupt (an approval or any ``interrupt()``).
* Shipyard runs — every one, from the CLI or the API (``store/stats.py``):
  ``shipyard_agent_runs{status}``, ``shipyard_agent_success_ratio`` (``completed`` among
  ended runs), ``shipyard_agent_completion_seconds_mean``,
  ``shipyard_agent_approval_wait_seconds_mean``, ``shipyard_agent_approvals_decided_total``,
  ``shipyard_agent_retries_total`` (refines), ``shipyard_tokens_total{kind}``,
  ``shipyard_model_calls_total``, ``shipyard_tool_calls_total``, ``shipyard_cost_usd_total``.
* ``shipyard_workers{state}``: this process's worker loops, busy or idle.

Counts come from rows that still exist: deleting runs or threads lowers them.
The route needs an API key whenever the server has keys (any owner may read the totals).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, get_args

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import Connection, Engine, text
from starlette.concurrency import run_in_threadpool

from shipyard.contracts import RunStatus
from shipyard.server.deps import Owner, ServerState, State
from shipyard.server.http.encoding import JSONResponse
from shipyard.server.stores.tables import THREAD_STATUSES
from shipyard.store.stats import RunStats, run_stats

router = APIRouter(tags=["meta"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN_STATUSES = ("pending", "running", "success", "error", "timeout", "interrupted")
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
"""Upper bounds (seconds) of the run duration histogram; ``+Inf`` is added."""

_RUNS = text("""SELECT status, count(*) AS n, coalesce(sum(greatest(attempts - 1, 0)), 0) AS retries
    FROM api_runs GROUP BY status""")
_THREADS = text("SELECT status, count(*) AS n FROM threads GROUP BY status")


def _duration_query() -> Any:
    bounds = ", ".join(
        f"count(*) FILTER (WHERE d <= {bound}) AS b{i}" for i, bound in enumerate(BUCKETS)
    )
    return text(
        f"SELECT {bounds}, count(*) AS n, coalesce(sum(d), 0) AS total FROM ("  # noqa: S608 - constants
        "SELECT extract(epoch FROM updated_at - created_at)::float8 AS d FROM api_runs "
        "WHERE status IN ('success', 'error', 'timeout', 'interrupted')) AS finished"
    )


_DURATION = _duration_query()


class ShipyardCollector(Collector):
    """Reads the shipyard metrics from Postgres on every ``collect``."""

    def __init__(self, engine: Engine, workers: Callable[[], tuple[int, int]]) -> None:
        self.engine = engine
        self.workers = workers

    def collect(self) -> Iterable[Metric]:
        """One connection, seven queries."""
        with self.engine.connect() as conn:
            yield from _runs(conn)
            yield from _threads(conn)
            yield _durations(conn)
            yield from _agent(run_stats(conn))
        busy, total = self.workers()
        workers = GaugeMetricFamily(
            "shipyard_workers", "Worker loops in this process", labels=["state"]
        )
        workers.add_metric(["busy"], busy)
        workers.add_metric(["idle"], total - busy)
        yield workers


def _runs(conn: Connection) -> Iterable[Metric]:
    rows = {r.status: r for r in conn.execute(_RUNS)}
    runs = GaugeMetricFamily("shipyard_runs", "Stored runs by status", labels=["status"])
    for status in RUN_STATUSES:
        runs.add_metric([status], rows[status].n if status in rows else 0)
    yield runs
    pending = rows["pending"].n if "pending" in rows else 0
    yield GaugeMetricFamily("shipyard_queue_depth", "Runs waiting to be claimed", value=pending)
    retries = sum(int(r.retries) for r in rows.values())
    yield CounterMetricFamily(
        "shipyard_run_retries", "Lease re-claims of stored runs (attempts - 1)", value=retries
    )


def _threads(conn: Connection) -> Iterable[Metric]:
    rows = {r.status: int(r.n) for r in conn.execute(_THREADS)}
    threads = GaugeMetricFamily("shipyard_threads", "Threads by status", labels=["status"])
    for status in THREAD_STATUSES:
        threads.add_metric([status], rows.get(status, 0))
    yield threads
    yield GaugeMetricFamily(
        "shipyard_approvals_waiting",
        "Threads waiting at an interrupt (approval or other human input)",
        value=rows.get("interrupted", 0),
    )


def _durations(conn: Connection) -> Metric:
    row = conn.execute(_DURATION).one()
    buckets = [(str(bound), int(row[i])) for i, bound in enumerate(BUCKETS)]
    buckets.append(("+Inf", int(row.n)))
    return HistogramMetricFamily(
        "shipyard_run_duration_seconds",
        "Time from a run's creation to its end (finished stored runs)",
        buckets=buckets,
        sum_value=float(row.total),
    )


def _agent(stats: RunStats) -> Iterable[Metric]:
    runs = GaugeMetricFamily(
        "shipyard_agent_runs", "Shipyard runs (CLI and API) by status", labels=["status"]
    )
    for status in get_args(RunStatus):
        runs.add_metric([status], stats.by_status.get(status, 0))
    yield runs
    for name, doc, number in [
        ("success_ratio", "Completed among the Shipyard runs that ended", stats.success_rate),
        ("completion_seconds_mean", "Mean creation-to-end of completed runs",
         stats.mean_completion_s),
        ("approval_wait_seconds_mean", "Mean request-to-decision of decided approvals",
         stats.mean_approval_wait_s),
    ]:  # fmt: skip
        yield GaugeMetricFamily(f"shipyard_agent_{name}", doc, value=number or 0.0)
    yield CounterMetricFamily(
        "shipyard_agent_approvals_decided", "Approvals decided", value=stats.approvals_decided
    )
    yield CounterMetricFamily(
        "shipyard_agent_retries", "Attempts beyond a step's first (refines)", value=stats.retries
    )
    tokens = CounterMetricFamily(
        "shipyard_tokens", "Model tokens used by Shipyard runs", labels=["kind"]
    )
    tokens.add_metric(["input"], stats.input_tokens)
    tokens.add_metric(["output"], stats.output_tokens)
    yield tokens
    for name, doc, count in [
        ("model_calls", "Model calls made by Shipyard runs", stats.model_calls),
        ("tool_calls", "Tool calls made by Shipyard runs", stats.tool_calls),
        ("cost_usd", "Model cost of Shipyard runs (USD)", stats.cost_usd),
    ]:
        yield CounterMetricFamily(f"shipyard_{name}", doc, value=count)


def new_registry() -> CollectorRegistry:
    """An empty registry for ``ServerState.metrics``; ``register`` fills it."""
    return CollectorRegistry(auto_describe=False)


def register(state: ServerState) -> None:
    """Put Shipyard's and the process's collectors into ``state.metrics``."""
    state.metrics.register(ShipyardCollector(state.engine, lambda: _worker_counts(state)))
    ProcessCollector(registry=state.metrics)


def _worker_counts(state: ServerState) -> tuple[int, int]:
    pool = state.workers
    if pool is None:
        return 0, 0
    return len(pool.running), len(pool.worker_ids)


@router.get("/metrics", response_class=Response)
async def metrics(_owner: Owner, state: State) -> Response:
    """The metrics in Prometheus text format; 503 when the database cannot be read."""
    registry = state.metrics
    try:
        body = await run_in_threadpool(generate_latest, registry)
    except Exception as err:  # the scrape fails as a whole; Prometheus records it as down
        detail = f"metrics unavailable: {type(err).__name__}"
        return JSONResponse({"detail": detail}, status_code=503)
    return Response(body, media_type=CONTENT_TYPE)


__all__ = ["BUCKETS", "ShipyardCollector", "new_registry", "register", "router"]
