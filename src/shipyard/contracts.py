"""The public contracts (docs/architecture.md §2): what crosses a boundary — model output,
API payloads, reports.

Names are part of the contract: fields may grow, never be renamed. Every model here is
also registered with the checkpoint serializer's allowlist (see ``store/checkpointer.py``),
so these — and only these — project types can live in checkpointed state.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Risk = Literal["low", "medium", "high"]
"""How much damage a plan could do if it went wrong."""

RunStatus = Literal[
    "running",
    "awaiting_approval",
    "paused",
    "completed",
    "rejected",
    "needs_human_review",
    "blocked_by_policy",
    "failed",
    "cancelled",
]
"""A run's status. ``paused`` means stopped by an infrastructure fault (model endpoint
unreachable, worker lost) in a state that ``shipyard resume`` continues."""

TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "rejected", "needs_human_review", "blocked_by_policy", "failed", "cancelled"}
)

IsolationLevel = Literal["none", "process", "namespace", "bubblewrap"]
"""Isolation achieved by the launcher, weakest first (see ``sandbox/launcher.py``)."""

ISOLATION_ORDER: tuple[IsolationLevel, ...] = ("none", "process", "namespace", "bubblewrap")


class Contract(BaseModel):
    """Base of every contract: unknown fields are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class PlanStep(Contract):
    """One step of a plan, carried out by the developer model and validated on its own."""

    id: str = Field(min_length=1, description="Short stable id, e.g. 's1'.")
    title: str = Field(min_length=1)
    instructions: str = Field(min_length=1, description="What the developer must do.")
    acceptance_criteria: list[str] = Field(default_factory=list)
    files_hint: list[str] = Field(default_factory=list, description="Files likely involved.")
    risk: Risk | None = Field(default=None, description="The step's own risk; default: the plan's.")


class Plan(Contract):
    """The planner's proposal; structured model output and the plan-approval payload."""

    summary: str = Field(min_length=1)
    steps: list[PlanStep] = Field(min_length=1)
    risk: Risk
    assumptions: list[str] = Field(default_factory=list)


class Failure(Contract):
    """One individual failure inside a check (a failing test, a lint error)."""

    id: str = Field(description="Test node id, rule code or check name.")
    message: str
    path: str | None = None
    line: int | None = None
    detail: str = Field(default="", description="A compact slice of the relevant output.")


class IsolationReport(Contract):
    """What the launcher achieved for one command: the layers that held and those missing."""

    level: IsolationLevel
    held: list[str] = Field(default_factory=list)
    missing: dict[str, str] = Field(default_factory=dict, description="layer -> why missing")


class Evidence(Contract):
    """The outcome of one check, parsed from exit codes and reports — never from a model."""

    check: str
    command: list[str]
    exit_code: int | None
    passed: bool
    duration_s: float
    summary: str
    failures: list[Failure] = Field(
        default_factory=list, description="The first failures (capped; all are in the log)."
    )
    failure_count: int = Field(default=0, description="How many failures there were in all.")
    log_ref: str | None = Field(default=None, description="Artifact reference of the full log.")
    isolation: IsolationReport | None = None
    cached: bool = False
    cached_from: str | None = Field(
        default=None,
        description="The run whose check produced this result, when it came from the cache.",
    )
    identities: list[str] | None = Field(
        default=None,
        description="Every failure's identity (test node id; path, code and message of a lint "
        "or type error), when the report listed them all; compared with the base commit's.",
    )
    preexisting: int = Field(
        default=0,
        description="Failures not counted because the base commit's run has them too.",
    )


class Finding(Contract):
    """A reviewer's (or policy's) remark about the change."""

    source: str
    severity: Literal["info", "warning", "error"]
    message: str
    path: str | None = None


class Verdict(Contract):
    """Pass/fail for a step, computed in code from evidence; findings can only make it fail."""

    passed: bool
    evidence: list[Evidence] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)


class Review(Contract):
    """The reviewer model's structured output. It may request changes, never force a pass."""

    summary: str
    request_changes: bool = False
    findings: list[Finding] = Field(default_factory=list)


ApprovalKind = Literal["plan", "action", "changes"]
Decision = Literal["approve", "revise", "reject"]


REFUSED = "refused"
"""Key an approval gate adds to the interrupt's value when it asks again instead of applying
the decision it was sent (the content changed since): why, in words. Not a request field."""


def decision_applies(content_hash: str, decision: ApprovalDecision) -> bool:
    """Whether ``decision`` may be applied to a request for ``content_hash``: it echoes that
    hash, or it rejects (a rejection applies whatever the content is now). The one rule every
    gate, store and route uses."""
    return decision.content_hash == content_hash or decision.decision == "reject"


class ApprovalRequest(Contract):
    """The payload of every ``interrupt()``: what a human is asked to decide on."""

    kind: ApprovalKind
    run_id: str
    summary: str
    risk: Risk
    payload: dict[str, Any] = Field(default_factory=dict)
    content_hash: str

    @classmethod
    def from_interrupt(cls, value: Any) -> ApprovalRequest:
        """The request an approval interrupt's value carries (without its ``REFUSED``
        note and any other key that is not a request field)."""
        fields = {k: v for k, v in dict(value).items() if k in cls.model_fields}
        return cls.model_validate(fields)

    def applies(self, decision: ApprovalDecision) -> bool:
        """``decision_applies`` for this request."""
        return decision_applies(self.content_hash, decision)


class ApprovalDecision(Contract):
    """The resume value of an interrupt. It must echo the request's ``content_hash``."""

    decision: Decision
    by: str = "human"
    comment: str = ""
    content_hash: str
    remember: list[str] = Field(
        default_factory=list,
        description="Command patterns to allow for the rest of this run.",
    )


class ApprovalRecord(Contract):
    """A decided approval as kept in state and in the run report."""

    kind: ApprovalKind
    decision: Decision
    by: str
    comment: str
    content_hash: str
    automatic: bool = False
    at: datetime | None = Field(default=None, description="when the decision was applied")


class Usage(Contract):
    """Resource use of a run; budgets are checked against it in code."""

    model_calls: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            model_calls=self.model_calls + other.model_calls,
            tool_calls=self.tool_calls + other.tool_calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 6),
            wall_s=round(self.wall_s + other.wall_s, 3),
        )


class StepOutcome(Contract):
    """How one plan step ended."""

    step_id: str
    status: Literal["passed", "failed", "skipped"]
    attempts: int
    commit: str | None = None
    summary: str = ""


class RunInput(Contract):
    """Graph input and API ``input``: ``{goal, repo, base_ref?, plan?}``."""

    goal: str = Field(min_length=1)
    repo: str = Field(min_length=1)
    base_ref: str | None = None
    plan: Plan | None = None
    policy: dict[str, Any] | None = Field(
        default=None, description="Per-run policy overrides, merged over .shipyard.toml."
    )
    allow_dirty: bool = Field(
        default=False, description="Start although the user's checkout has uncommitted changes."
    )


DeliveryStatus = Literal["delivered", "failed", "refused"]
"""``refused``: nothing left the machine because no person approved the delivery."""


class Delivery(Contract):
    """What delivering a completed run did (``shipyard.delivery``): the push and the pull
    request, or why not. Never holds a token."""

    status: DeliveryStatus
    remote: str
    branch: str
    commit: str | None = None
    forge: str | None = None
    repository: str | None = None
    base: str | None = None
    pull_request: str = Field(description='"draft" | "ready" | "none"')
    pushed: bool = Field(default=False, description="this delivery pushed (vs. found it there)")
    pull_request_url: str | None = None
    pull_request_number: int | None = None
    opened: bool = Field(default=False, description="this delivery opened the PR (vs. found it)")
    manifest_hash: str | None = Field(default=None, description="of provenance.json, as finalized")
    approved_by: str | None = None
    reason: str = Field(default="", description="why it failed or was refused")


class RunReport(Contract):
    """What a person reads at the end of a run."""

    run_id: str
    goal: str
    repo: str
    status: RunStatus
    summary: str
    branch: str | None = None
    base_commit: str | None = None
    head_commit: str | None = None
    plan: Plan | None = None
    steps: list[StepOutcome] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    findings: list[Finding] = Field(
        default_factory=list, description="the last verdict's findings (the reviewer's among them)"
    )
    diff_stat: str = ""
    approvals: list[ApprovalRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    isolation: IsolationReport | None = None
    models: dict[str, str] = Field(default_factory=dict, description="role -> model label")
    model_usage: dict[str, Usage] = Field(
        default_factory=dict, description="model label -> calls, tokens and cost of its calls"
    )
    report_path: str | None = None
    patch_path: str | None = None
    abandoned: list[str] = Field(
        default_factory=list,
        description="refs keeping commits a fork dropped from the branch (refs/shipyard/...)",
    )
    delivery: Delivery | None = Field(
        default=None, description="the push and pull request, once delivery was tried"
    )


CONTRACT_TYPES: tuple[type[BaseModel], ...] = (
    PlanStep,
    Plan,
    Failure,
    IsolationReport,
    Evidence,
    Finding,
    Verdict,
    Review,
    ApprovalRequest,
    ApprovalDecision,
    ApprovalRecord,
    Usage,
    StepOutcome,
    RunInput,
    Delivery,
    RunReport,
)
"""Every type allowed in checkpointed state."""


def content_hash(value: Any) -> str:
    """A stable sha256 of JSON-able content (pydantic models are dumped first)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()
