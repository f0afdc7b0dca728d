"""The graph's typed state.

``RunState`` is both the state and the type of every node's update: it is ``total=False``,
so a node returns only the keys it changes, and a misspelled key fails the type check
(LangGraph would silently drop it at run time). Values are plain data or the contracts of
``contracts.py`` — nothing else is allowed in a checkpoint. Large things (logs, diffs,
reports) live in the artifact store; state holds references.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict  # pydantic (Studio, langgraph dev) needs it on 3.11

from shipyard.contracts import (
    ApprovalRecord,
    Delivery,
    IsolationReport,
    Plan,
    RunReport,
    RunStatus,
    StepOutcome,
    Usage,
    Verdict,
)


class InputState(TypedDict, total=False):
    """What a caller passes to start a run (see ``contracts.RunInput``)."""

    goal: str
    """What the run must achieve, in plain words."""
    repo: str
    """Path of the target git repository."""
    base_ref: str | None
    """Commit, branch or tag to start from (default: the repository's HEAD)."""
    plan: Plan | dict[str, Any] | None
    """A plan to use instead of asking the planner."""
    policy: dict[str, Any] | None
    """Per-run policy overrides, merged over the repository's ``.shipyard.toml``."""
    allow_dirty: bool
    """Start even though the user's checkout has uncommitted changes."""


class RunState(InputState, total=False):
    """Everything a run carries between nodes; survives pauses and crashes."""

    run_id: str
    """The run's id; equal to the LangGraph thread id."""
    epoch: str
    """The timeline of journaled effects; a fork from an older checkpoint starts a new one."""
    status: RunStatus
    """Where the run stands (docs/architecture.md §1)."""
    reason: str
    """Why the run stopped, when it stopped short of ``completed``."""
    effective_policy: dict[str, Any]
    """The merged policy, fixed at intake so the agent cannot change it mid-run."""
    branch: str
    """The run branch, ``shipyard/<run-id>``."""
    workspace: str
    """Path of the run's git worktree."""
    base_commit: str
    """The commit the run started from."""
    head_commit: str
    """The last validated commit on the run branch: the workspace pin."""
    work_tree: str
    """Git tree id of the workspace after the last execute (uncommitted work pinned too)."""
    plan_round: int
    """How many times the planner has been asked (0 before the first plan)."""
    plan_feedback: str
    """A reviewer's request for a different plan."""
    step_index: int
    """Index into ``plan.steps`` of the step being worked on."""
    attempt: int
    """Attempt number of the current step, from 1."""
    feedback: str
    """Compact feedback for the next attempt (failure slices or a human's comment)."""
    verdict: Verdict | None
    """The last validation verdict."""
    steps_done: list[StepOutcome]
    """Outcome of each finished step."""
    approvals: list[ApprovalRecord]
    """Every approval decided in this run, automatic ones included."""
    remembered: list[str]
    """Command patterns a human allowed for the rest of the run."""
    deferred: list[str]
    """Commands the policy wanted a human to see, deferred to the changes approval."""
    recheck: bool
    """A person approved files that changed after the checks ran: validate checks (and
    commits) them before the run can finish."""
    usage: Usage
    """Resources spent so far."""
    models: dict[str, str]
    """Role -> model label (says "scripted" when the scripted model is used)."""
    model_usage: dict[str, Usage]
    """Model label -> what the calls it answered used (model routing's economics)."""
    instructions: dict[str, str]
    """Repository instruction files given to a model -> ``sha256:<hex>`` (provenance)."""
    isolation: IsolationReport | None
    """The isolation the launcher achieves for this run."""
    networked_setup: str
    """The environment setup that a person let have the network, run after the plan was
    approved: ``"done"``, or why it failed."""
    report: RunReport | None
    """The final report, once the run has ended."""
    abandoned: list[str]
    """Refs keeping the commits each fork from an older checkpoint dropped from the branch."""
    delivery: Delivery | None
    """What delivering the run did (``nodes.deliver``), once it was tried."""
    delivery_request: dict[str, str]
    """A person's explicit request to deliver (``{"by": …}``): ``shipyard deliver RUN``, or
    an API ``command`` updating it with ``goto: "deliver"``."""
