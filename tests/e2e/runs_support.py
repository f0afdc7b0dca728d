"""Graphs and helpers shared by the run tests."""

from __future__ import annotations

from pathlib import Path

from shipyard.server.graphs import DEFAULT_GRAPHS

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = {**DEFAULT_GRAPHS, "slow": "tests.e2e.slow_graph:slow"}
"""The packaged graphs plus the slow side-effect graph."""


def effects(directory: Path) -> list[str]:
    path = directory / "effects"
    return path.read_text().splitlines() if path.exists() else []
