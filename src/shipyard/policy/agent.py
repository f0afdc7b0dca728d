"""``[agent]``: the policy tables of the agent's working aids (docs/agent-features.md).

Each aid is switched and bounded here, so a run — and an evaluation comparing runs — says
in its policy exactly which aids it used::

    [agent.instructions]          # AGENTS.md / CLAUDE.md / copilot instructions as data
    enabled = true
    max_bytes = 16384

    [agent.context]               # the developer's conversation within one attempt
    enabled = true
    max_tokens = 60000            # condense older tool results above this estimate
    keep_turns = 4                # the latest model turns are never condensed

    [agent.repo_map]              # files and top-level symbols for the planner
    enabled = true
    max_tokens = 4000

    [agent.routing]               # cheap or strong developer model per step attempt
    enabled = false
    cheap_model = ""              # "" = the developer role's configured model
    strong_model = "gpt-4.1"
    strong_risk = ["high"]        # steps of these risks start on the strong model
    strong_from_attempt = 2       # and every attempt from this one (a refine) does

    [agent.best_of]               # N candidate attempts per step; the evidence picks one
    n = 1                         # 1 = the ordinary single attempt
    concurrency = 2               # candidates at work at the same time

The tables are frozen pydantic models with unknown keys refused, like the rest of the policy.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

StepRisk = Literal["low", "medium", "high"]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstructionsPolicy(_Table):
    """``[agent.instructions]``: the repository's notes for agents, given as data."""

    enabled: bool = True
    max_bytes: int = Field(default=16_384, ge=256, le=262_144)
    """At most this many bytes of instructions reach a prompt; the rest is cut, saying so."""


class ContextPolicy(_Table):
    """``[agent.context]``: the token budget of the developer's conversation."""

    enabled: bool = True
    max_tokens: int = Field(default=60_000, ge=1_000)
    """Estimated prompt tokens above which older tool results are condensed."""
    keep_turns: int = Field(default=4, ge=1)
    """The latest model turns (with their tool results) that are never condensed."""


class RepoMapPolicy(_Table):
    """``[agent.repo_map]``: the planner's map of files and their top-level symbols."""

    enabled: bool = True
    max_tokens: int = Field(default=4_000, ge=200)


def _high_only() -> list[StepRisk]:
    return ["high"]


class RoutingPolicy(_Table):
    """``[agent.routing]``: which developer model an attempt gets (``shipyard.agent.routing``)."""

    enabled: bool = False
    cheap_model: str = ""
    """The model of routine attempts; empty means the developer role's configured model."""
    strong_model: str = ""
    """The model of risky steps and of later attempts; required when routing is enabled."""
    strong_risk: list[StepRisk] = Field(default_factory=_high_only)
    strong_from_attempt: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _strong_named(self) -> Self:
        if self.enabled and not self.strong_model.strip():
            raise ValueError("routing is enabled but strong_model names no model")
        return self


class BestOfPolicy(_Table):
    """``[agent.best_of]``: candidate attempts per step (``shipyard.nodes.best_of``)."""

    n: int = Field(default=1, ge=1, le=8)
    concurrency: int = Field(default=2, ge=1, le=8)


class AgentPolicy(_Table):
    """``[agent]``: the switches of the agent's working aids."""

    instructions: InstructionsPolicy = Field(default_factory=InstructionsPolicy)
    context: ContextPolicy = Field(default_factory=ContextPolicy)
    repo_map: RepoMapPolicy = Field(default_factory=RepoMapPolicy)
    routing: RoutingPolicy = Field(default_factory=RoutingPolicy)
    best_of: BestOfPolicy = Field(default_factory=BestOfPolicy)
