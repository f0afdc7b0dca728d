"""Shipyard: durable, isolated, evidence-driven software-engineering runs on LangGraph.

Public surface: the contracts. Importing does no I/O, and imports the contracts (and with
them pydantic) only when one of their names is used (``lazy_exports``).
"""

from __future__ import annotations

from shipyard import lazy_exports

TYPE_CHECKING = False  # not typing's: importing typing would cost the CLI's --help

if TYPE_CHECKING:
    from typing import Any

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

_EXPORTS = dict.fromkeys(__all__, "shipyard.contracts")


def __getattr__(name: str) -> Any:
    return lazy_exports.attribute(__name__, _EXPORTS, name)
