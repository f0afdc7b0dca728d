"""Everything the run page shows, gathered for one viewer: the run row, its latest state
(plan, evidence, usage against budgets, isolation, report), the pending request, the
approvals history and the timeline. ``None`` when the run does not exist for this viewer
(another owner's run is as absent as an unknown id). A run started by ``shipyard run`` has
no thread: it exists for the viewer who owns CLI runs (``Viewer.cli_runs``), and acting on
it (``adopt``) first gives it a thread of that owner, as the API's runs have.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from fastapi import HTTPException
from langgraph.types import StateSnapshot
from sqlalchemy import text
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from shipyard.contracts import (
    REFUSED,
    ApprovalRequest,
    Evidence,
    IsolationReport,
    Plan,
    RunReport,
    Usage,
)
from shipyard.errors import UnknownRunError
from shipyard.policy.config import Budgets, Policy
from shipyard.server.console.listing import IS_CLI_RUN
from shipyard.server.console.session import Viewer
from shipyard.server.console.timeline import Entry, timeline
from shipyard.server.deps import ServerState
from shipyard.server.runs.queue import Pool
from shipyard.server.stores.checkpoints import thread_config
from shipyard.server.stores.tables import ThreadRow
from shipyard.server.stores.threads import create_thread
from shipyard.store import RunStore
from shipyard.store.approvals import Approval
from shipyard.store.runs import Run

GRAPH_ID = "shipyard"
MAX_PATCH_BYTES = 400_000


@dataclass(frozen=True)
class Pending:
    """The decision a run waits for."""

    interrupt_id: str
    request: ApprovalRequest
    refused: str
    """Why the previous decision was not applied (the gate asked again), if it was not."""


@dataclass(frozen=True)
class Meter:
    """One budget bar: used of limit."""

    label: str
    used: float
    limit: float

    @property
    def percent(self) -> int:
        """How full the bar is, 0-100."""
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0


@dataclass
class RunView:
    """The run page's data."""

    run: Run
    thread_status: str
    plan: Plan | None = None
    pending: Pending | None = None
    evidence: list[Evidence] = field(default_factory=list)
    report: RunReport | None = None
    isolation: IsolationReport | None = None
    meters: list[Meter] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    diff: str = ""
    next_nodes: tuple[str, ...] = ()
    commits: list[str] = field(default_factory=list)
    """The run branch's commit messages (short sha first), oldest first."""

    @property
    def waiting(self) -> bool:
        """Whether the run waits for a decision."""
        return self.pending is not None


async def load_run(state: ServerState, viewer: Viewer, run_id: str) -> RunView | None:
    """The page data of ``run_id`` as ``viewer`` sees it, or ``None``."""
    found = await run_in_threadpool(_records, state, viewer, run_id)
    if found is None:
        return None
    run, thread, approvals = found
    registered = state.graphs.get(GRAPH_ID)
    snapshot = await registered.graph.aget_state(thread_config(run_id))
    view = RunView(run=run, thread_status=str(thread.get("status", "")), approvals=approvals)
    view.entries = await timeline(cast(Pool, state.saver.conn), run_id, state.saver.serde)
    _fill(view, snapshot)
    if not view.diff and view.report is not None and view.report.patch_path:
        view.diff = await run_in_threadpool(_read_patch, view.report.patch_path)
    if view.report is not None and run.base_commit and run.head_commit:
        view.commits = await run_in_threadpool(_commits, run.repo, run.base_commit, run.head_commit)
    return view


async def pending_of(
    state: ServerState, viewer: Viewer, run_id: str
) -> tuple[bool, Pending | None]:
    """What ``run_id`` waits for, read as cheaply as can be (no page data): whether the
    viewer has the run, and its ``Pending`` (``None`` when it waits for nothing)."""
    if await run_in_threadpool(_thread_of, state, viewer, run_id) is None:
        return False, None
    snapshot = await state.graphs.get(GRAPH_ID).graph.aget_state(thread_config(run_id))
    return True, _pending(snapshot)


def _pending(snapshot: StateSnapshot) -> Pending | None:
    if not snapshot.interrupts:
        return None
    interrupt = snapshot.interrupts[0]
    value = interrupt.value if isinstance(interrupt.value, dict) else {}
    request = ApprovalRequest.from_interrupt(value)
    return Pending(interrupt.id, request, str(value.get(REFUSED) or ""))


async def adopt(state: ServerState, viewer: Viewer, run_id: str) -> None:
    """Before acting on a run the viewer has: give a CLI-started run (no thread) a thread
    of the viewer, so the API's run creation finds it; nothing for any other run."""
    if viewer.cli_runs and not await run_in_threadpool(_has_thread, state, run_id):
        pool = cast(Pool, state.saver.conn)
        await create_thread(pool, viewer.owner, run_id, if_exists="do_nothing")


def _thread_of(state: ServerState, viewer: Viewer, run_id: str) -> Mapping[str, Any] | None:
    """The run's thread as the viewer may see it: the owner's thread; for a CLI-started
    run of a viewer who owns those, an empty one; else ``None``."""
    try:
        return state.threads.get(viewer.owner, run_id)
    except HTTPException:
        pass
    if not viewer.cli_runs:
        return None
    with state.engine.connect() as conn:
        cli = conn.execute(text(IS_CLI_RUN), {"id": run_id}).scalar_one_or_none()
    return {} if cli else None


def _has_thread(state: ServerState, run_id: str) -> bool:
    """Whether any owner has a thread ``run_id``."""
    with Session(state.engine) as session:
        return session.get(ThreadRow, run_id) is not None


def _records(
    state: ServerState, viewer: Viewer, run_id: str
) -> tuple[Run, Mapping[str, Any], list[Approval]] | None:
    thread = _thread_of(state, viewer, run_id)
    if thread is None:
        return None
    store = RunStore(state.engine)
    try:
        run = store.get_run(run_id)
    except UnknownRunError:
        return None
    if run.id != run_id:  # a prefix matched another run: not this thread's
        return None
    return run, thread, store.approvals(run_id)


def _fill(view: RunView, snapshot: StateSnapshot) -> None:
    values: dict[str, Any] = dict(snapshot.values or {})
    view.next_nodes = tuple(snapshot.next)
    plan = values.get("plan")
    view.plan = Plan.model_validate(plan) if plan is not None else None
    report = values.get("report")
    view.report = RunReport.model_validate(report) if report is not None else None
    verdict = values.get("verdict")
    if verdict is not None:
        view.evidence = list(getattr(verdict, "evidence", []))
    elif view.report is not None:
        view.evidence = view.report.evidence
    isolation = values.get("isolation")
    view.isolation = IsolationReport.model_validate(isolation) if isolation else None
    usage = Usage.model_validate(values.get("usage") or view.run.usage)
    budgets = Policy.model_validate(values.get("effective_policy") or {}).budgets
    view.meters = _meters(usage, budgets)
    view.pending = _pending(snapshot)
    if view.pending is not None:
        diff = view.pending.request.payload.get("diff")
        view.diff = diff if isinstance(diff, str) else ""


def _meters(usage: Usage, budgets: Budgets) -> list[Meter]:
    return [
        Meter("model calls", usage.model_calls, budgets.model_calls),
        Meter("tool calls", usage.tool_calls, budgets.tool_calls),
        Meter("tokens", usage.input_tokens + usage.output_tokens, budgets.tokens),
        Meter("cost (USD)", usage.cost_usd, budgets.cost_usd),
        Meter("wall time (s)", usage.wall_s, budgets.wall_s),
    ]


def _commits(repo: str, base: str, head: str) -> list[str]:
    """``git log base..head`` in the user's repository (empty when it cannot be read)."""
    try:
        done = subprocess.run(
            ["git", "-C", repo, "log", "--reverse", "--format=%h %B%x00", f"{base}..{head}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [c.strip() for c in done.stdout.split("\0") if c.strip()]


def _read_patch(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_PATCH_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""


__all__ = ["GRAPH_ID", "Meter", "Pending", "RunView", "adopt", "load_run", "pending_of"]
