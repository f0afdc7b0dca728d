"""Model routing by difficulty: which developer model an attempt at a step gets
(docs/agent-features.md). Code decides, from the plan and the attempt number alone, so a
resumed run routes exactly as before.

With ``[agent.routing] enabled``: an attempt numbered ``strong_from_attempt`` or later (a
refine after failing evidence) gets the strong model; so does a step whose risk (its own,
else the plan's) is in ``strong_risk``; every other attempt gets the cheap model
(``cheap_model``, or the developer role's configured model when empty). Disabled, every
attempt uses the role's model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shipyard.contracts import Plan, PlanStep
from shipyard.policy.agent import RoutingPolicy


@dataclass(frozen=True)
class Route:
    """The model of one attempt and why."""

    tier: Literal["role", "cheap", "strong"]
    model: str | None
    """The model name to ask for; None means the developer role's own model."""
    reason: str


def route(plan: Plan, step: PlanStep, attempt: int, rules: RoutingPolicy) -> Route:
    """The model for ``attempt`` (from 1) at ``step`` of ``plan`` under ``rules``."""
    if not rules.enabled:
        return Route("role", None, "routing is off")
    risk = step.risk or plan.risk
    if attempt >= rules.strong_from_attempt:
        reason = f"attempt {attempt} (strong from attempt {rules.strong_from_attempt})"
        return Route("strong", rules.strong_model, reason)
    if risk in rules.strong_risk:
        return Route("strong", rules.strong_model, f"step risk {risk}")
    reason = f"step risk {risk}, attempt {attempt}"
    return Route("cheap", rules.cheap_model or None, reason)
