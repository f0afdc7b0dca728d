"""The workspace pin (DESIGN §4, rule 3): files follow the checkpoint, never the reverse."""

from __future__ import annotations

from collections.abc import Mapping
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
