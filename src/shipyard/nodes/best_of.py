"""Best of N by evidence (docs/agent-features.md): with ``[agent.best_of] n > 1`` an attempt
at a step is N candidate attempts, each in a scratch worktree of its own, at most
``concurrency`` at a time; each candidate's tree is checked like a step, and the code keeps
one — never the model.

The choice: a candidate whose checks all pass beats one that fails; among passing ones the
smallest diff (lines added plus removed against the step's starting commit) wins; then the
lower number. When none passes, the fewest failing checks, then the smallest diff. The
chosen tree is put into the run's workspace and ``validate`` judges it as it judges every
step (the check cache usually answers from the candidate's run of the same tree).

Candidate 1 is the ordinary attempt (its journal step and script keys are those of a single
attempt); candidate ``k > 1`` adds ``/c<k>`` to both. The choice is a journaled effect, so a
resumed run keeps the candidate it chose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from shipyard.context import Context
from shipyard.contracts import Evidence, Plan
from shipyard.effects import EffectLog
from shipyard.nodes.inputs import event, policy_of, workspace_of
from shipyard.sandbox.launcher import Limits, hiding
from shipyard.state import RunState
from shipyard.tools import git
from shipyard.tools.checked_tree import checked_tree
from shipyard.tools.checks import detect_checks, run_checks
from shipyard.tools.environment import (
    environment_checks,
    environment_launcher,
    setup_evidence,
)
from shipyard.tools.pin import pin_workspace

T = TypeVar("T")
Work = Callable[[Path, int, EffectLog], tuple[T, str | None]]
"""One candidate's attempt: given its worktree, number and journal, what it did and the
spent budget it met, if any."""


@dataclass(frozen=True)
class Picked(Generic[T]):
    """The candidates' attempts: the one kept, the others, and the first spent budget."""

    kept: T
    others: list[T]
    spent: str | None


@dataclass(frozen=True)
class Candidate:
    """What one candidate attempt produced, as the choice sees it."""

    number: int
    tree: str
    failed_checks: int
    diff_lines: int

    @property
    def passed(self) -> bool:
        """Every check of the candidate's tree passed."""
        return self.failed_checks == 0


def run(state: RunState, ctx: Context, log: EffectLog, work: Work[T]) -> Picked[T]:
    """Run ``[agent.best_of] n`` candidates of the current attempt (``log`` is the
    attempt's journal; candidate 1 uses it), at most ``concurrency`` at a time, judge each,
    journal the choice and put the kept tree into the run's workspace."""
    rules = policy_of(state).agent.best_of
    step_id = Plan.model_validate(state["plan"]).steps[state["step_index"]].id
    pin_workspace(state)
    start = git.snapshot_tree(workspace_of(state))
    roots = {
        k: open_candidate(state, candidate_root(state, step_id, state["attempt"], k), start)
        for k in range(1, rules.n + 1)
    }

    def one(number: int) -> tuple[T, str | None, Candidate]:
        own = (
            log
            if number == 1
            else EffectLog(ctx.journal, log.thread_id, log.step_key + suffix(number))
        )
        if (tree := own.last_tree()) is not None:  # a resumed candidate: its last files
            git.restore(roots[number], tree)
        attempt, spent = work(roots[number], number, own)
        return attempt, spent, judge(state, ctx, number, roots[number])

    with ThreadPoolExecutor(max_workers=rules.concurrency) as pool:
        futures = [pool.submit(copy_context().run, one, k) for k in roots]
        results = [future.result() for future in futures]
    candidates = [candidate for _, _, candidate in results]
    outcome = log.record(
        "best_of",
        "choice",
        {"n": rules.n},
        lambda: _choice(state, ctx, step_id, candidates),
    )
    git.restore(workspace_of(state), outcome["chosen_tree"])
    for root in roots.values():
        close_candidate(state, root)
    chosen = int(outcome["chosen"])
    return Picked(
        kept=next(a for a, _, c in results if c.number == chosen),
        others=[a for a, _, c in results if c.number != chosen],
        spent=next((spent for _, spent, _ in results if spent is not None), None),
    )


def _choice(
    state: RunState, ctx: Context, step_id: str, candidates: list[Candidate]
) -> dict[str, Any]:
    kept = choose(candidates)
    summary = [dataclasses.asdict(c) for c in candidates]
    where = {"step_id": step_id, "attempt": state["attempt"], "chosen": kept.number}
    event(ctx, state["run_id"], "best_of.chosen", {**where, "candidates": summary})
    return {"chosen": kept.number, "chosen_tree": kept.tree, "candidates": summary}


def suffix(number: int) -> str:
    """The journal and script key suffix of candidate ``number`` ("" for the first)."""
    return "" if number == 1 else f"/c{number}"


def candidate_root(state: RunState, step_id: str, attempt: int, number: int) -> Path:
    """Where candidate ``number`` of an attempt works: beside the run's workspace."""
    ws = workspace_of(state)
    return ws.parent / f"{ws.name}.candidates" / f"{step_id}-{attempt}-{number}"


def open_candidate(state: RunState, root: Path, start_tree: str) -> Path:
    """A fresh worktree at ``root`` holding exactly ``start_tree`` on the step's commit."""
    ws = workspace_of(state)
    git.detached_worktree(ws, root, state["head_commit"])
    git.restore(root, start_tree)
    return root


def close_candidate(state: RunState, root: Path) -> None:
    """Remove a candidate's worktree (its trees stay in the object store)."""
    git.remove_worktree(workspace_of(state), root)


def judge(state: RunState, ctx: Context, number: int, root: Path) -> Candidate:
    """Check candidate ``number``'s tree in its worktree as ``validate`` checks a step."""
    evidence = _evidence(state, ctx, root)
    tree = git.snapshot_tree(root)
    failed = sum(1 for e in evidence if not e.passed)
    return Candidate(number, tree, failed, git.diff_lines(root, state["head_commit"], tree))


def choose(candidates: list[Candidate]) -> Candidate:
    """The kept candidate (see the module docstring for the order)."""
    return min(
        candidates,
        key=lambda c: (c.failed_checks > 0, c.failed_checks, c.diff_lines, c.number),
    )


def _evidence(state: RunState, ctx: Context, root: Path) -> list[Evidence]:
    policy = policy_of(state)
    configured = policy.checks.run or None
    specs = detect_checks(root, configured) if configured or policy.checks.detect else []
    specs = environment_checks(specs, policy.environment)
    limit = policy.checks.timeout_s
    setup = setup_evidence(root, policy.environment, ctx.launcher, limit)
    file_size = min(Limits().file_size_bytes, policy.budgets.workspace_mb << 20)
    with checked_tree(root) as tree:
        found = run_checks(
            [s.model_copy(update={"timeout": min(s.timeout, limit)}) for s in specs],
            workspace=root,
            launcher=hiding(
                environment_launcher(ctx.launcher, policy.environment),
                policy.paths.forbidden,
            ),
            artifacts=ctx.artifacts,
            run_id=state["run_id"],
            cache=ctx.check_cache if policy.checks.cache else None,
            changed_files=git.changed_files(root, state["head_commit"]),
            owner=ctx.owner,
            policy_hash=policy.content_hash,
            tree=tree,
            limits=Limits(file_size_bytes=file_size),
        )
    return ([setup] if setup else []) + found
