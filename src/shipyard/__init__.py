"""Shipyard: durable, isolated, evidence-driven software-engineering runs on LangGraph.

Public surface: the contracts, the graph builder and the runner. Importing does no I/O.
"""

from __future__ import annotations

from shipyard.contracts import (
    ApprovalDecision,
    ApprovalRequest,
    Evidence,
    Plan,
    PlanStep,
    RunInput,
    RunReport,
    Usage,
    Verdict,
)

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "Evidence",
    "Plan",
    "PlanStep",
    "RunInput",
    "RunReport",
    "Usage",
    "Verdict",
]
