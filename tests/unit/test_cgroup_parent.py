"""Where a user's command cgroups go: the hierarchies read from mountinfo, the delegated
chain, and the answer on this machine (a parent of this user's own, or the reason none)."""

from __future__ import annotations

import os
from pathlib import Path

from shipyard.sandbox.isolation import cgroup_parent
from shipyard.sandbox.isolation.cgroup_parent import Hierarchy, hierarchies

V1_WITH_UNIFIED = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_OWN = "8:pids:/\n4:memory:/job/7\n1:name=systemd:/\n0::/\n"

SYSTEMD_V2 = """\
25 30 0:22 / /sys rw,nosuid - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate
"""
SCOPE = "/user.slice/user-1000.slice/user@1000.service/app.slice/term.scope"


def test_v1_pids_comes_first_and_the_unified_tree_after_it() -> None:
    found = hierarchies(V1_WITH_UNIFIED, V1_OWN)
    assert found == [
        Hierarchy(Path("/sys/fs/cgroup/pids"), v2=False, own=Path("/sys/fs/cgroup/pids")),
        Hierarchy(Path("/sys/fs/cgroup/unified"), v2=True, own=Path("/sys/fs/cgroup/unified")),
    ]


def test_systemd_v2_gives_the_users_own_scope() -> None:
    (found,) = hierarchies(SYSTEMD_V2, f"0::{SCOPE}\n")
    assert found == Hierarchy(Path("/sys/fs/cgroup"), v2=True, own=Path("/sys/fs/cgroup" + SCOPE))


def test_a_mounted_subtree_is_resolved_and_a_cgroup_outside_it_falls_back_to_the_mount() -> None:
    mounted = "50 40 0:36 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
    (inside,) = hierarchies(mounted, "3:pids:/docker/abc/job\n")
    assert inside.own == Path("/sys/fs/cgroup/pids/job")
    (outside,) = hierarchies(mounted, "3:pids:/elsewhere\n")
    assert outside.own == Path("/sys/fs/cgroup/pids")


def test_escaped_mount_points_and_non_pids_hierarchies() -> None:
    text = (
        "60 1 0:40 / /mnt/my\\040cgroups rw - cgroup cgroup rw,cpu,pids\n"
        "61 1 0:41 / /mnt/cpu rw - cgroup cgroup rw,cpu\n"
        "62 1 0:42 / /mnt/broken\n"
    )
    (found,) = hierarchies(text, "")
    assert found.mount == Path("/mnt/my cgroups") and not found.v2
    assert hierarchies("", "") == []


def test_the_delegated_chain_is_tried_highest_first_and_stops_below_the_mount(
    tmp_path: Path,
) -> None:
    own = tmp_path / "service" / "app" / "scope"
    own.mkdir(parents=True)
    for cgroup in (tmp_path, own.parent.parent, own.parent, own):
        (cgroup / "cgroup.procs").touch()
    hierarchy = Hierarchy(tmp_path, v2=True, own=own)
    assert hierarchy.bases() == [tmp_path, own.parent.parent, own.parent, own]
    (own / "cgroup.procs").unlink()  # not a cgroup (or not ours): the chain stops there
    assert hierarchy.bases() == [tmp_path]


def test_this_machine_gives_this_user_its_own_parent_or_says_why_not() -> None:
    parent, why = cgroup_parent.find_root()
    if parent is None:
        assert why.startswith(f"no pids cgroup for uid {os.geteuid()}: "), why
        return
    assert why == ""
    assert parent.name == cgroup_parent.parent_name() == f"shipyard-{os.geteuid()}"
    assert (parent / "cgroup.procs").exists()
    assert not list(parent.glob(f"probe-{os.getpid()}"))  # the trial cgroup is gone
