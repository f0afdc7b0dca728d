"""The workspace pin (docs/architecture.md): files follow the checkpoint, never the reverse.

A fork (continuing from an older checkpoint) rewinds the run branch; the commits it drops
stay reachable under ``refs/shipyard/<run-id>/abandoned/<n>``, which the run's state (and so
its report) lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.tools import git


def pin_workspace(values: Mapping[str, Any], tree: str | None = None) -> None:
    """Make the run's worktree exactly what a checkpoint's ``values`` record: the branch at
    ``head_commit`` and the files at ``tree`` (default ``work_tree``). Resuming and time
    travel call this first; a checkpoint from before intake has no workspace yet."""
    if not values.get("workspace") or not values.get("head_commit"):
        return
    ws = Path(values["workspace"])
    if git.head(ws) != values["head_commit"]:
        git.restore(ws, values["head_commit"])
    target = tree or values.get("work_tree")
    if target:
        git.restore(ws, target)


@dataclass(frozen=True)
class Fork:
    """What a fork's rewind kept: ``kept`` is the ref this fork made (``None`` when it
    dropped no commit), ``refs`` every abandoned line of the run so far."""

    kept: str | None = None
    refs: list[str] = field(default_factory=list)

    def update(self) -> dict[str, Any]:
        """The state update recording the run's abandoned lines (its report lists them)."""
        return {"abandoned": self.refs} if self.refs else {}


def fork_workspace(values: Mapping[str, Any]) -> Fork:
    """Pin the workspace for a fork from the checkpoint whose ``values`` are given, first
    keeping the commits the rewind drops reachable (``git.keep_abandoned``)."""
    fork = Fork()
    if values.get("workspace") and values.get("head_commit") and values.get("run_id"):
        ws, run_id = Path(values["workspace"]), values["run_id"]
        kept = git.keep_abandoned(ws, run_id, values["head_commit"])
        fork = Fork(kept, git.abandoned_refs(ws, run_id))
    pin_workspace(values)
    return fork
