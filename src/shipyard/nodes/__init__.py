"""The graph's nodes, one module each (docs/architecture.md §1). ``graph.py`` wires them."""

from __future__ import annotations

from shipyard.nodes.approve import approve_changes, approve_plan
from shipyard.nodes.deliver import deliver
from shipyard.nodes.escalate import escalate
from shipyard.nodes.execute import execute
from shipyard.nodes.finalize import finalize
from shipyard.nodes.intake import intake
from shipyard.nodes.plan import plan
from shipyard.nodes.refine import refine
from shipyard.nodes.validate import validate

__all__ = [
    "approve_changes",
    "approve_plan",
    "deliver",
    "escalate",
    "execute",
    "finalize",
    "intake",
    "plan",
    "refine",
    "validate",
]
