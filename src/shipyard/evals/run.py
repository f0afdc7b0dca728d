"""One task's Shipyard run: a normal run through the real graph, the problem statement as
its goal, on the task's clone at its base commit.

Approvals are automatic: the plan gate by the policy override ``--approve auto`` uses
(``approvals.plan = "never"``), and every request that still stops the run — a change to a
protected path or to how the change is tested — is approved by the harness as
``shipyard-eval`` and counted (``auto_approvals``), so the report can say so. With
``--oracle`` the run's models are the task's scripted ones (``evals.oracle``); otherwise the
models configured for Shipyard (``SHIPYARD_MODEL`` ...).

What is scored is the run's final tree — the files its last checkpoint pins — committed on
top of the base commit in the task's clone (``final_commit``): a run that ended
``needs_human_review`` is judged on what it left, which is how a validator false failure
shows. The trajectory is the run's journal (every model call, tool call and commit, in order) and
its event log, exported as JSON.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig

from shipyard.contracts import RunInput, RunStatus, Usage
from shipyard.errors import ModelUnavailableError
from shipyard.evals.source import IDENTITY
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.llm import ModelGateway
from shipyard.settings import Role

MAX_AUTO_APPROVALS = 50
"""A run asking more often than this is stuck in a loop: it is left waiting."""
APPROVER = "shipyard-eval"


@dataclass
class RunOutcome:
    """How the run ended and what it cost."""

    run_id: str
    status: RunStatus
    reason: str | None
    head: str
    """The run's last validated commit (its branch)."""
    final_tree: str | None
    """The files the run's last checkpoint pins — what it left, validated or not."""
    usage: Usage
    attempts: int
    auto_approvals: int
    models: dict[str, str] = field(default_factory=dict)


def task_runner(runner: Runner, models: Mapping[Role, BaseChatModel] | None) -> Runner:
    """``runner`` with its own model gateway when ``models`` are given (the oracle's)."""
    if models is None:
        return runner
    gateway = ModelGateway(runner.context.settings, models=models)
    return Runner(runner.graph, dataclasses.replace(runner.context, models=gateway),
                  runner.database_url)  # fmt: skip


def run_input(goal: str, clone: Path, base: str, policy: dict[str, Any]) -> RunInput:
    """The run's input: the goal, the clone, its base commit, plan approval automatic, and
    failures already present at the base not counted (the hidden tests judge the task)."""
    overrides = {
        "approvals": {"plan": "never"},
        "checks": {"baseline_failures": "ignore"},
        **policy,
    }
    # No person approves here, so no setup gets the network, whatever the repository asks.
    overrides["environment"] = {**overrides.get("environment", {}), "network": False}
    return RunInput(goal=goal, repo=str(clone), base_ref=base, policy=overrides)


async def run_task(runner: Runner, run_id: str, given: RunInput) -> RunOutcome:
    """Start the run and drive it to its end, approving what it asks. A run paused by an
    unreachable model endpoint is not an outcome to score: ``ModelUnavailableError``
    stops the eval, and the same command continues it."""
    stop = await runner.start(given, run_id=run_id)
    approvals = 0
    while stop.request is not None and approvals < MAX_AUTO_APPROVALS:
        approvals += 1
        stop = await runner.decide(stop.run_id, "approve", by=APPROVER,
                                   comment="approved automatically by the evaluation")  # fmt: skip
    if stop.status == "paused":
        raise ModelUnavailableError(
            f"run {stop.run_id} paused: {stop.error}; the eval stops here — fix the model "
            "configuration or wait for the endpoint, then run the same command to continue"
        )
    return await _outcome(runner, stop, approvals)


async def _outcome(runner: Runner, stop: Stop, approvals: int) -> RunOutcome:
    run = runner.context.runs.get_run(stop.run_id)
    config: RunnableConfig = {"configurable": {"thread_id": stop.run_id}}
    values = (await runner.graph.aget_state(config)).values
    report = stop.report
    usage = report.usage if report is not None else run.usage
    attempts = sum(s.attempts for s in report.steps) if report is not None else 0
    return RunOutcome(
        run_id=stop.run_id,
        status=stop.status,
        reason=stop.error,
        head=(report.head_commit if report else None) or run.head_commit or "",
        final_tree=values.get("work_tree"),
        usage=usage,
        attempts=attempts,
        auto_approvals=approvals,
        models=dict(report.models) if report is not None else {},
    )


def final_commit(clone: Path, base: str, tree: str | None, run_id: str) -> str:
    """A commit of the run's final tree on top of ``base`` in the task's clone (whose object
    store the run's worktree shares), made with the fixed identity of ``evals.source``; the
    base itself when the run left nothing."""
    if not tree:
        return base
    env = {**os.environ, **IDENTITY}
    done = subprocess.run(
        ["git", "commit-tree", tree, "-p", base, "-m", f"final tree of run {run_id}"],
        cwd=clone, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def model_patch(clone: Path, base: str, head: str) -> str:
    """What the run changed, as ``git diff --binary`` writes it (SWE-bench's
    ``model_patch``): ``git apply`` remakes the run's tree from it, binary files included."""
    if not head or head == base:
        return ""
    done = subprocess.run(["git", "diff", "--no-color", "--no-ext-diff", "--binary", base, head],
                          cwd=clone, capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


def trajectory(runner: Runner, run_id: str) -> dict[str, Any]:
    """The run's journal and events as JSON-ready data."""
    journal = [asdict(entry) for entry in runner.context.journal.entries(run_id)]
    events = [asdict(event) for event in runner.context.runs.events(run_id)]
    return {"run_id": run_id, "journal": journal, "events": events}


__all__ = ["APPROVER", "RunOutcome", "model_patch", "run_input", "run_task", "task_runner",
           "trajectory"]  # fmt: skip
