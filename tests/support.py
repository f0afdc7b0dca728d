"""Helpers for tests that drive whole runs (fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` and return its stdout."""
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def plan_reply(*steps: tuple[str, str], risk: str = "low") -> dict[str, Any]:
    """A planner reply with the given ``(id, title)`` steps."""
    return {
        "json": {
            "summary": "test plan",
            "risk": risk,
            "steps": [{"id": i, "title": t, "instructions": f"do {t}"} for i, t in steps],
        }
    }


def call(name: str, **args: Any) -> dict[str, Any]:
    """A developer reply making one tool call."""
    return {"tool_calls": [{"name": name, "args": args}]}


def finish(summary: str = "done") -> dict[str, Any]:
    """A developer reply ending the step."""
    return call("finish", summary=summary)


PASSING_TEST = "def test_ok():\n    assert True\n"
"""A repository test that passes whatever the change."""
