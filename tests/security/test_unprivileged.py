"""Shipyard run by a normal user on a machine where root ran it before.

Categories (in each test's name): ``unpriv_run_*`` — one whole ``shipyard run`` through the
real CLI as the user, with the embedded Postgres it starts for itself, on a hostile
repository whose tests (run by the model and again at validation) reach for the user's
private file, another run's workspace, every Postgres socket, the Shipyard process's
environment and paths outside the workspace, while the scripted model ``cat``s and
``read_file``s the same files; each case asserts the run completed and the secret is
nowhere it records (output, ``shipyard show``, artifacts, every database row), and that the
attempt was seen to be made. ``unpriv_cgroup_*`` — the pids cgroup per user: root's earlier
runs and a root-owned cgroup under the user's name never break the user's commands (the
report says why there is no cgroup), a delegated one holds and bounds a fork bomb.
``unpriv_suite`` — this suite itself, run as the user.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.sandbox.isolation import cgroup_parent
from shipyard.sandbox.launcher import make_launcher
from tests.security.hostile_run import HostileRun, hostile_run_as
from tests.security.unprivileged import Unprivileged

pytestmark = pytest.mark.root_only

_LAUNCH = """\
import json, sys, tempfile, pathlib
from shipyard.sandbox.launcher import Limits, make_launcher
launcher = make_launcher(limits=Limits(processes=int(sys.argv[1]), timeout_s=60))
result = launcher.run(sys.argv[2:], workspace=pathlib.Path(tempfile.mkdtemp()))
print(json.dumps({"report": launcher.report().model_dump(), "exit": result.exit_code,
                  "stdout": result.stdout, "stderr": result.stderr}))
"""

SUBSET = (
    "view_launcher or view_repo_tests_at_validation or bounded_fork_bomb"
    " or (validation_cannot_reach_a_database and socket_without_password)"
    " or password_file_and_socket_directory_are_private or test_cgroup_parent"
    " or networked_command"
)
"""With ``SHIPYARD_UNPRIVILEGED_SUITE=subset``, what ``unpriv_suite`` runs: the cases whose
outcome depends most on who runs Shipyard — the filesystem view (a normal user's home and
sockets), the embedded Postgres the user starts, the process limit without a pids cgroup,
where the user's cgroups go, and a command given the network (slirp4netns joining a user
namespace the user made). By default every case that does not need root runs."""

_BOMB = (
    "import os, sys, time\nn = 0\ntry:\n    for _ in range(300):\n"
    "        if os.fork() == 0:\n            time.sleep(60); os._exit(0)\n        n += 1\n"
    "except OSError as e:\n    print('forks', n, e); sys.exit(1)\n"
)


@pytest.fixture(scope="module")
def pids_base() -> Path | None:
    """Where root's command cgroups go on this machine, after root ran a command (the
    state in which a normal user's runs used to fail); ``None`` without a pids cgroup."""
    with tempfile.TemporaryDirectory() as ws:
        result = make_launcher().run(["true"], workspace=Path(ws))
    assert result.exit_code == 0, result
    parent, _ = cgroup_parent.find_root()
    if parent is None:
        return None
    (parent.parent / "shipyard").mkdir(exist_ok=True)  # what earlier versions left behind
    return parent.parent


@pytest.fixture
def cgroup_turn() -> Iterator[None]:
    """The user's cgroup name is one per machine: concurrent sessions take turns at it."""
    fd = os.open("/var/tmp/shipyard-unpriv-cgroup.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def hostile_run(unprivileged: Unprivileged, pids_base: Path | None) -> HostileRun:
    return hostile_run_as(unprivileged)


def _launch_as(user: Unprivileged, processes: int, *argv: str) -> dict[str, object]:
    done = user.run([str(user.python), "-c", _LAUNCH, str(processes), *argv], timeout=90)
    assert done.returncode == 0, done.stderr
    outcome: dict[str, object] = json.loads(done.stdout)
    return outcome


def _missing(outcome: dict[str, object]) -> dict[str, str]:
    report = outcome["report"]
    assert isinstance(report, dict)
    missing: dict[str, str] = report["missing"]
    return missing


# --- the pids cgroup per user -------------------------------------------------------------


@pytest.mark.usefixtures("cgroup_turn")
def test_unpriv_cgroup_root_ran_before_and_the_users_command_still_runs(
    unprivileged: Unprivileged, pids_base: Path | None
) -> None:
    outcome = _launch_as(unprivileged, 64, "sh", "-c", "echo ran")
    assert (outcome["exit"], outcome["stdout"]) == (0, "ran\n"), outcome
    why = _missing(outcome)["pids-cgroup"]
    assert f"no pids cgroup for uid {unprivileged.uid}" in why, why
    if pids_base is not None:  # the hierarchy is root's: the user is told how to get one
        mine = pids_base / cgroup_parent.parent_name(unprivileged.uid)
        assert f"cannot create {mine}: Permission denied" in why, why
        assert f"chown -R {unprivileged.uid} {mine}" in why, why


@pytest.mark.usefixtures("cgroup_turn")
def test_unpriv_cgroup_a_root_owned_cgroup_in_the_users_name_is_not_used(
    unprivileged: Unprivileged, pids_base: Path | None
) -> None:
    if pids_base is None:
        pytest.skip("no pids cgroup hierarchy root can write here")
    planted = pids_base / cgroup_parent.parent_name(unprivileged.uid)
    with _cgroup_made_by_root(planted):
        outcome = _launch_as(unprivileged, 64, "sh", "-c", "echo ran")
    assert (outcome["exit"], outcome["stdout"]) == (0, "ran\n"), outcome
    why = _missing(outcome)["pids-cgroup"]
    assert f"{planted} exists but belongs to uid 0, not to this user" in why, why


@pytest.mark.usefixtures("cgroup_turn")
def test_unpriv_cgroup_delegated_by_root_holds_and_bounds_a_fork_bomb(
    unprivileged: Unprivileged, pids_base: Path | None
) -> None:
    if pids_base is None:
        pytest.skip("no pids cgroup hierarchy root can write here")
    delegated = pids_base / cgroup_parent.parent_name(unprivileged.uid)
    marker = f"bomb-{uuid.uuid4().hex}"
    with _cgroup_made_by_root(delegated):
        unprivileged.give(delegated)
        outcome = _launch_as(unprivileged, 32, "python3", "-c", _BOMB, marker)
    report = outcome["report"]
    assert isinstance(report, dict) and "pids-cgroup" in report["held"], report
    assert outcome["exit"] == 1, outcome
    forks = int(str(outcome["stdout"]).split()[1])
    assert 0 < forks < 32, outcome
    assert _processes_with(marker) == []


@contextlib.contextmanager
def _cgroup_made_by_root(path: Path) -> Iterator[None]:
    """``path`` made (anew) as a root-owned cgroup for the block, then removed with the
    children the user's processes left (waiting briefly for exiting members)."""
    _remove_cgroup(path)
    path.mkdir()
    try:
        yield
    finally:
        _remove_cgroup(path)


def _remove_cgroup(path: Path) -> None:
    deadline = time.monotonic() + 10
    while path.exists():
        with contextlib.suppress(OSError):
            for child in [p for p in path.iterdir() if p.is_dir()]:
                child.rmdir()
            path.rmdir()
        if path.exists():
            assert time.monotonic() < deadline, f"{path} could not be removed"
            time.sleep(0.05)


def _processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


# --- one whole run as the user --------------------------------------------------------------


def test_unpriv_run_completes_with_the_users_own_embedded_postgres(
    hostile_run: HostileRun,
) -> None:
    assert hostile_run.exit_code == 0, hostile_run.output
    assert "completed" in hostile_run.output
    assert hostile_run.report["status"] == "completed", hostile_run.report
    assert "Permission denied" not in hostile_run.output
    assert hostile_run.seconds < 150  # bounded (the CLI was started with that timeout)
    isolation = hostile_run.report["isolation"]
    assert "pids-cgroup" in isolation["held"] or isolation["missing"]["pids-cgroup"], isolation


@pytest.mark.parametrize("case", ["home-file", "other-run", "postgres-sockets", "process-environ"])
def test_unpriv_run_the_hostile_test_attempt_was_made_and_contained(
    hostile_run: HostileRun, case: str
) -> None:
    """The repository's test for ``case`` ran (the model ran it with ``-s`` and validation
    ran it again, passing) and reported itself contained."""
    assert f"ATTEMPT {case}: contained" in hostile_run.database, case
    assert f"ATTEMPT {case}: BROKE" not in hostile_run.database


@pytest.mark.parametrize("secret", ["home-file", "other-run", "canary"])
def test_unpriv_run_no_secret_reaches_anything_the_run_records(
    hostile_run: HostileRun, secret: str
) -> None:
    value = hostile_run.secrets[secret]
    for where, text in hostile_run.records().items():
        assert value not in text, f"{secret} leaked into {where}"
        assert value.encode().hex() not in text, f"{secret} leaked (hex) into {where}"


def test_unpriv_run_the_models_cat_and_read_file_of_outside_files_are_refused(
    hostile_run: HostileRun,
) -> None:
    tried = [path for path in hostile_run.model_reads if path in hostile_run.database]
    assert tried == hostile_run.model_reads  # each attempt is on record…
    for secret in ("home-file", "other-run"):  # …and none of them returned the content
        assert hostile_run.secrets[secret] not in hostile_run.database


def test_unpriv_run_nothing_was_written_outside_the_workspace(hostile_run: HostileRun) -> None:
    assert f"ATTEMPT writes: tried {len(hostile_run.outside_writes)}" in hostile_run.database
    assert [p for p in hostile_run.outside_writes if os.path.lexists(p)] == []


def test_unpriv_suite_passes_as_the_user(unprivileged: Unprivileged) -> None:
    """This suite (every case not marked ``root_only``) as the user, with its own embedded
    Postgres (no ``DATABASE_URL``). The subset may skip nothing; the whole suite only the few
    cases that need another user or root (their reasons are printed)."""
    subset = os.environ.get("SHIPYARD_UNPRIVILEGED_SUITE") == "subset"
    select = ["-k", SUBSET] if subset else []
    home = unprivileged.checkout / ".home"  # what the tests leave in HOME goes with the copy
    home.mkdir()
    unprivileged.give(home)
    done = unprivileged.run(
        [str(unprivileged.python), "-m", "pytest", "tests/security",
         "tests/unit/test_cgroup_parent.py", "-m", "not root_only", *select,
         "-q", "-x", "-rs", "-p", "no:cacheprovider"],
        cwd=unprivileged.checkout,
        env={"HOME": str(home)},
        timeout=900 if not select else 240,
    )  # fmt: skip
    tail = (done.stdout + done.stderr)[-3000:]
    assert done.returncode == 0, tail
    summary = tail.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1])
    skipped = int(summary.split(" skipped")[0].split()[-1]) if " skipped" in summary else 0
    assert passed >= (8 if select else 60), tail
    assert skipped <= (0 if select else 6), tail
