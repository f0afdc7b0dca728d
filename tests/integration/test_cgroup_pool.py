"""The pool of command cgroups with the real pids controller: what others do to its
cgroups (remove them, leave stale ones of dead processes) never breaks the next command.
Skipped, with the probe's reason, where this user can have no pids cgroup."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shipyard.sandbox.isolation import cgroup_parent
from shipyard.sandbox.isolation.cgroup import CgroupPool


@pytest.fixture
def root() -> Path:
    found, why = cgroup_parent.find_root()
    if found is None:
        pytest.skip(why)
    return found


def test_a_pooled_cgroup_removed_from_outside_is_replaced_by_a_fresh_one(root: Path) -> None:
    pool = CgroupPool(root)
    try:
        with pool.lease(8) as first:
            gone = first.path
        gone.rmdir()  # e.g. a sweep by another process that took this one for dead
        with pool.lease(8) as second:
            assert second.path != gone and second.path.exists()
            done = subprocess.run(["cat", "/proc/self/cgroup"], preexec_fn=second.join, text=True,
                                  capture_output=True, check=True)  # fmt: skip
            assert f"/{root.name}/{second.path.name}" in done.stdout, done.stdout
    finally:
        pool.close()
    assert not second.path.exists()


def test_stale_cgroups_of_dead_processes_are_swept_and_others_left(root: Path) -> None:
    stale = [root / "cmd-999999999-1", root / "probe-999999999"]  # above any pid_max
    foreign = root / "not-ours"
    for path in [*stale, foreign]:
        path.mkdir(exist_ok=True)
    try:
        CgroupPool(root).close()
        assert [p.exists() for p in stale] == [False, False]
        assert foreign.exists()
    finally:
        for path in [*stale, foreign]:
            if path.exists():
                path.rmdir()
