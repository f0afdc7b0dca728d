"""Graphs and helpers shared by the run tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from shipyard.server.stores.graphs import DEFAULT_GRAPHS
from tests.support import PASSING_TEST, call, finish, git, plan_reply

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = {**DEFAULT_GRAPHS, "slow": "tests.e2e.slow_graph:slow"}
"""The packaged graphs plus the slow side-effect graph."""


def effects(directory: Path) -> list[str]:
    path = directory / "effects"
    return path.read_text().splitlines() if path.exists() else []


def make_repo(root: Path, files: Mapping[str, str] | None = None) -> Path:
    """A git repository at ``root/repo`` with ``files`` (default: one passing test)."""
    repo = root / "repo"
    for name, text in (files or {"tests/test_ok.py": PASSING_TEST}).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(root, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "initial")
    return repo


def note_script(root: Path) -> Path:
    """A scripted model for a one-step plan whose developer writes ``note.txt``."""
    steps = {"s1/1": [call("write_file", path="note.txt", content="hi\n"), finish()]}
    script = root / "script.json"
    script.write_text(json.dumps({"planner": [plan_reply(("s1", "note"))], "developer": steps}))
    return script
