"""The workspace disk budget's measure and rules (``tools.quota``), on real files."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from shipyard.tools.errors import ToolError
from shipyard.tools.files import Workspace
from shipyard.tools.quota import MIB, Quota, measure


def _fill(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def test_measure_counts_blocks_once_per_inode_and_never_follows_symlinks(tmp_path: Path) -> None:
    _fill(tmp_path / "a" / "one.bin", MIB)
    os.link(tmp_path / "a" / "one.bin", tmp_path / "a" / "alias.bin")
    (tmp_path / "outside").mkdir()
    _fill(tmp_path / "outside" / "big.bin", 4 * MIB)
    ws = tmp_path / "ws"
    ws.mkdir()
    os.rename(tmp_path / "a", ws / "a")
    (ws / "link").symlink_to(tmp_path / "outside")
    with (ws / "sparse.bin").open("wb") as sparse:
        sparse.truncate(50 * MIB)  # takes no blocks
    use = measure(ws)
    assert use.complete and MIB <= use.bytes < MIB + 64 * 1024


def test_measure_stops_at_its_entry_cap_and_that_is_over_budget(tmp_path: Path) -> None:
    for i in range(30):
        (tmp_path / f"f{i}").write_text("x")
    assert not measure(tmp_path, max_entries=10).complete
    assert measure(tmp_path, max_entries=100).complete


def test_recent_files_are_those_changed_since_the_mark(tmp_path: Path) -> None:
    _fill(tmp_path / "old.bin", 10)
    mark = time.time_ns() + 50_000_000
    time.sleep(0.1)
    _fill(tmp_path / "new" / "made.bin", 10)
    _fill(tmp_path / ".git" / "objects" / "x", 10)  # never reported for removal
    assert [rel for rel, _ in measure(tmp_path, since_ns=mark).recent] == ["new/made.bin"]


def test_writes_are_held_to_the_budget_and_shrinking_is_always_allowed(tmp_path: Path) -> None:
    _fill(tmp_path / "data.bin", 3 * MIB)
    (tmp_path / "small.txt").write_text("a\n")
    ws = Workspace(tmp_path, quota=Quota(tmp_path, 2))
    refused = "workspace over its 2 MB budget (3.0 MB used): delete files before continuing"
    with pytest.raises(ToolError, match=re.escape(refused)):
        ws.write_file("new.txt", "hi")
    with pytest.raises(ToolError, match=re.escape(refused)):
        ws.edit_file("small.txt", "a", "b" * 10_000)
    assert not (tmp_path / "new.txt").exists()
    assert (tmp_path / "small.txt").read_text() == "a\n"
    assert ws.write_file("data.bin", "") == "wrote 0 bytes to data.bin"
    assert ws.write_file("new.txt", "hi") == "wrote 2 bytes to new.txt"


def test_a_write_that_would_pass_the_budget_is_refused(tmp_path: Path) -> None:
    _fill(tmp_path / "data.bin", MIB * 8 // 5)
    ws = Workspace(tmp_path, quota=Quota(tmp_path, 2))
    with pytest.raises(ToolError, match="writing 524288 bytes would take the workspace over"):
        ws.write_file("more.bin", "y" * (MIB // 2))
    assert ws.write_file("more.bin", "y" * (MIB // 4)).startswith("wrote 262144 bytes")
