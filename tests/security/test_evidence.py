"""Hostile repositories against the validator and the check cache (whole runs).

Categories (in each test's name):

* ``report_*`` — a ``conftest.py`` replaces pytest's JUnit report once pytest wrote it
  (FIFO, directory, symlink to ``/etc/passwd``, 100 MB file, hard link): the check fails
  with ``report missing or invalid: <why>``, nothing blocks, nothing raises.
* ``bounded_*`` — tests that hang, leave a daemon behind, fork until the pids limit, fill
  the disk or open sockets: each ends as failing evidence saying why, in bounded time.
* ``commit_*`` — files, symlinks, a ``.gitignore`` and a rewritten ``.git`` written by the
  checks never reach a commit or the next attempt (also straight at ``checked_tree``, as
  root and as a normal user with a mode-000 directory).
* ``cache_*`` — the check cache never turns a changed setting into a stale pass, keeps
  owners apart (through ``Runner`` and through the server with two owners' API keys), names
  the run a cached result came from, copies its log into the using run and can be turned
  off.

Every whole-run case drives ``Runner`` (or the server) with the scripted model on a
repository whose tests run at validation, and asserts the run's status, the evidence
message and the files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from shipyard.contracts import Evidence, RunInput
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.settings import Settings
from shipyard.store import psycopg_conninfo
from shipyard.tools import git as gitmod
from shipyard.tools.checked_tree import checked_tree
from tests.e2e.conftest import make_client, start_server
from tests.integration.conftest import MakeRepo, WriteScript, make_repo, write_script
from tests.support import PASSING_TEST, call, finish, git, plan_reply

__all__ = ["make_client", "make_repo", "start_server", "write_script"]  # fixtures used here

LIMIT_S = 60
"""``[checks] timeout_s`` of these runs: every case ends well within it, on a busy machine."""

HANG_S = 5
"""``[checks] timeout_s`` of the hanging case: small, so it ends fast."""

AUTO: dict[str, Any] = {
    "approvals": {"plan": "never"},
    "budgets": {"attempts_per_step": 1, "workspace_mb": 64},
    "checks": {"timeout_s": LIMIT_S},
}
"""``--approve auto``, one attempt per step, a 64 MiB file-size cap, a 60 s check limit."""

REPLACE_REPORT = """import os, shutil


def pytest_unconfigure(config):
    path = config.option.xmlpath
    if path and os.path.exists(path):
        os.unlink(path)
        {action}
"""
"""A conftest that swaps pytest's finished JUnit report for ``action`` (at ``path``)."""


async def _run(
    settings: Settings,
    write_script: WriteScript,
    repo: Path,
    attempts: list[list[dict[str, Any]]] | None = None,
    *,
    policy: dict[str, Any] | None = None,
    owner: str = "local",
) -> tuple[Stop, list[Evidence], dict[str, Any]]:
    """One run of one step (``attempts``: the developer's replies per attempt, default: just
    finish); returns the stop, the last verdict's evidence and the final state values."""
    attempts = attempts or [[finish()]]
    developer = {f"s1/{i}": replies for i, replies in enumerate(attempts, start=1)}
    script = {"planner": [plan_reply(("s1", "work"))], "developer": developer}
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        runner.context.owner = owner
        stop = await runner.start(RunInput(goal="work", repo=str(repo), policy=policy or AUTO))
        snapshot = await runner.graph.aget_state({"configurable": {"thread_id": stop.run_id}})
    verdict = snapshot.values.get("verdict")
    return stop, list(verdict.evidence) if verdict is not None else [], snapshot.values


def _pytest(evidence: list[Evidence]) -> Evidence:
    [found] = [e for e in evidence if e.check == "pytest"]
    return found


def _branch_files(repo: Path, run_id: str) -> list[str]:
    return git(repo, "ls-tree", "-r", "--name-only", f"shipyard/{run_id}").splitlines()


def _no_commit(repo: Path, run_id: str) -> bool:
    return git(repo, "rev-list", f"main..shipyard/{run_id}") == ""


def _hostile_report(make_repo: MakeRepo, action: str) -> Path:
    conftest = REPLACE_REPORT.format(action=action)
    return make_repo({"conftest.py": conftest, "tests/test_ok.py": PASSING_TEST})


# -- report_* --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "why"),
    [
        ("os.mkfifo(path)", "is not a regular file"),
        ("os.mkdir(path)", "is a directory"),
        ("os.symlink('/etc/passwd', path)", "is a symlink"),
        ("open(path + '.x', 'w').write('<testsuites/>'); os.link(path + '.x', path)", "hard link"),
    ],
    ids=["report_fifo", "report_directory", "report_symlink_etc_passwd", "report_hard_link"],
)
async def test_report_replaced_by_the_repository_fails_the_check(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript, action: str, why: str
) -> None:
    repo = _hostile_report(make_repo, action)
    started = time.monotonic()
    stop, evidence, _ = await _run(settings, write_script, repo)
    assert time.monotonic() - started < LIMIT_S
    assert stop.status == "needs_human_review", stop
    check = _pytest(evidence)
    assert check.exit_code == 0, check.summary  # the tests passed; the report did not
    assert check.passed is False
    message = check.failures[0].message
    assert message.startswith("report missing or invalid: "), message
    assert why in message
    assert "report missing or invalid" in check.summary
    assert "root:x:0:0" not in check.model_dump_json()
    assert _no_commit(repo, stop.run_id)


async def test_report_written_100mb_is_refused_by_size(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    """A 100 MB report (sparse, so the test is fast) under a file-size cap large enough."""
    action = "f = open(path, 'wb'); f.truncate(100 * 2**20); f.close()"
    repo = _hostile_report(make_repo, action)
    policy = {**AUTO, "budgets": {"attempts_per_step": 1, "workspace_mb": 200}}
    stop, evidence, _ = await _run(settings, write_script, repo, policy=policy)
    assert stop.status == "needs_human_review", stop
    message = _pytest(evidence).failures[0].message
    assert message == (
        "report missing or invalid: "
        f"{_report_name(message)} is 104857600 bytes, over the 33554432-byte cap"
    )
    assert _no_commit(repo, stop.run_id)


def _report_name(message: str) -> str:
    return message.removeprefix("report missing or invalid: ").split(" ", 1)[0]


# -- bounded_* -------------------------------------------------------------------------------


async def test_bounded_hanging_test_times_out_at_the_policy_limit(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    hang = "import time\n\n\ndef test_hang():\n    time.sleep(3600)\n"
    repo = make_repo({"tests/test_hang.py": hang})
    policy = {**AUTO, "checks": {"timeout_s": HANG_S}}
    started = time.monotonic()
    stop, evidence, _ = await _run(settings, write_script, repo, policy=policy)
    elapsed = time.monotonic() - started
    assert stop.status == "needs_human_review", stop
    check = _pytest(evidence)
    assert check.passed is False and check.summary == f"pytest: timed out after {HANG_S} s"
    assert check.failures[0].message == f"timed out after {HANG_S} s"
    assert HANG_S <= elapsed < HANG_S + 40
    assert _no_commit(repo, stop.run_id)


async def test_bounded_daemon_left_behind_does_not_hold_the_validator(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    marker = "3599.25"
    daemon = (
        "import subprocess\n\n\ndef test_spawns():\n"
        f"    subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
    )
    repo = make_repo({"tests/test_daemon.py": daemon})
    started = time.monotonic()
    stop, evidence, _ = await _run(settings, write_script, repo)
    assert time.monotonic() - started < LIMIT_S + 30
    check = _pytest(evidence)
    # Either the daemon died with the sandbox (the test passed) or the limit stopped it.
    assert check.passed or "timed out" in check.summary, check.summary
    assert stop.status == ("completed" if check.passed else "needs_human_review")
    assert not _processes_with(marker)


def _processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if text.encode() in cmdline and b"pytest" not in cmdline:
                found.append(int(entry.name))
    return found


async def test_bounded_fork_bomb_is_stopped_by_the_pids_limit(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    marker = "3598.5"
    bomb = (
        "import os, time\n\n\ndef test_fork():\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        f"            os.execvp('sleep', ['sleep', '{marker}'])\n"
    )
    repo = make_repo({"tests/test_bomb.py": bomb})
    started = time.monotonic()
    stop, evidence, _ = await _run(settings, write_script, repo)
    assert time.monotonic() - started < LIMIT_S + 30
    assert stop.status == "needs_human_review", stop
    check = _pytest(evidence)
    assert check.passed is False
    said = check.summary + " ".join(f.message + f.detail for f in check.failures)
    assert "processes limit" in said or "Resource temporarily unavailable" in said, said
    assert not _processes_with(marker)
    assert _no_commit(repo, stop.run_id)


async def test_bounded_disk_filler_hits_the_file_size_cap(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    filler = (
        "def test_fill():\n"
        "    with open('filler.bin', 'wb') as fh:\n"
        "        while True:\n"
        "            fh.write(b'x' * (8 << 20))\n"
    )
    repo = make_repo({"tests/test_fill.py": filler})
    stop, evidence, values = await _run(settings, write_script, repo)
    assert stop.status == "needs_human_review", stop
    check = _pytest(evidence)
    assert check.passed is False
    said = " ".join(f.message + f.detail for f in check.failures)
    assert "File too large" in said or "file_size" in check.summary, said
    assert not (Path(values["workspace"]) / "filler.bin").exists()
    assert _no_commit(repo, stop.run_id)


async def test_bounded_test_opening_sockets_reaches_nothing_outside(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        dial = (
            "import socket\n\n\ndef test_dial():\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        )
        repo = make_repo({"tests/test_dial.py": dial})
        stop, evidence, _ = await _run(settings, write_script, repo)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    assert stop.status == "needs_human_review", stop
    check = _pytest(evidence)
    assert check.passed is False and check.failure_count == 1
    assert check.failures[0].id == "tests/test_dial.py::test_dial"
    assert "Error" in check.failures[0].message  # ConnectionRefused / network unreachable


# -- commit_* --------------------------------------------------------------------------------

LITTERING = """import os, pathlib


def pytest_sessionstart(session):
    root = pathlib.Path(__file__).parent
    (root / "junk.txt").write_text("from the checks\\n")
    (root / "pkg").mkdir(exist_ok=True)
    (root / "pkg" / "generated.py").write_text("X = 1\\n")
    (root / "README.md").write_text("rewritten by the checks\\n")
    if not os.path.lexists(root / "root_link"):
        os.symlink("/root", root / "root_link")
    (root / ".gitignore").write_text("*\\n")
    (root / "hidden.txt").write_text("hidden by the checks' .gitignore\\n")
    try:
        (root / ".git").write_text("gitdir: /nowhere\\n")
    except OSError:
        pass
"""
"""A conftest that litters the workspace: new files, a changed tracked file, a symlink to
``/root``, a ``.gitignore`` hiding it all, and a rewritten ``.git`` file if it can."""

NEEDS_FIX = "import pathlib\n\n\ndef test_fixed():\n    assert pathlib.Path('fixed.txt').exists()\n"


async def test_commit_holds_only_what_the_developer_wrote(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(
        {"conftest.py": LITTERING, "README.md": "original\n", "tests/test_ok.py": PASSING_TEST}
    )
    attempts = [[call("write_file", path="feature.py", content="VALUE = 2\n"), finish()]]
    stop, evidence, values = await _run(settings, write_script, repo, attempts)
    assert stop.status == "completed", stop
    assert _pytest(evidence).passed
    branch = f"shipyard/{stop.run_id}"
    stat = git(repo, "show", "--stat", "--format=", branch)
    assert "feature.py" in stat and "1 file changed" in stat, stat
    assert _branch_files(repo, stop.run_id) == [
        "README.md",
        "conftest.py",
        "feature.py",
        "tests/test_ok.py",
    ]
    assert git(repo, "show", f"{branch}:README.md") == "original"
    workspace = Path(values["workspace"])
    if workspace.exists():
        for name in ("junk.txt", "pkg", "root_link", "hidden.txt", ".gitignore"):
            assert not os.path.lexists(workspace / name), name
        assert (workspace / "README.md").read_text() == "original\n"


async def test_commit_after_a_failed_attempt_holds_nothing_the_checks_wrote(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    """The checks of a failing attempt littered the workspace; the next attempt's commit has
    only the developer's fix."""
    repo = make_repo(
        {"conftest.py": LITTERING, "README.md": "original\n", "tests/test_fix.py": NEEDS_FIX}
    )
    attempts = [[finish()], [call("write_file", path="fixed.txt", content="ok\n"), finish()]]
    policy = {**AUTO, "budgets": {"attempts_per_step": 2, "workspace_mb": 64}}
    stop, _, _ = await _run(settings, write_script, repo, attempts, policy=policy)
    assert stop.status == "completed", stop
    assert stop.report is not None and stop.report.steps[0].attempts == 2
    stat = git(repo, "show", "--stat", "--format=", f"shipyard/{stop.run_id}")
    assert "fixed.txt" in stat and "1 file changed" in stat, stat
    assert _branch_files(repo, stop.run_id) == [
        "README.md",
        "conftest.py",
        "fixed.txt",
        "tests/test_fix.py",
    ]


# -- cache_* ---------------------------------------------------------------------------------

NEEDS_UTC = "import os\n\n\ndef test_tz():\n    assert os.environ.get('TZ') == 'UTC'\n"


async def test_cache_environment_change_is_never_a_stale_pass(
    settings: Settings,
    make_repo: MakeRepo,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_repo({"tests/test_tz.py": NEEDS_UTC})
    monkeypatch.setenv("TZ", "UTC")
    first, evidence1, _ = await _run(settings, write_script, repo)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    second, evidence2, _ = await _run(settings, write_script, repo)
    assert first.status == "completed" and _pytest(evidence1).passed
    assert second.status == "needs_human_review", second
    stale = _pytest(evidence2)
    assert stale.cached is False and stale.passed is False
    assert "test_tz" in stale.failures[0].id and "cached" not in stale.summary
    monkeypatch.setenv("TZ", "UTC")
    third, evidence3, _ = await _run(settings, write_script, repo)
    assert third.status == "completed" and _pytest(evidence3).cached  # the cache does work


async def test_cache_policy_change_runs_the_checks_again(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    other = {**AUTO, "commands": {"allow": ["ls"]}}
    _, evidence1, _ = await _run(settings, write_script, repo)
    _, evidence2, _ = await _run(settings, write_script, repo, policy=other)
    _, evidence3, _ = await _run(settings, write_script, repo)
    assert [_pytest(e).cached for e in (evidence1, evidence2, evidence3)] == [False, False, True]


async def test_cache_hit_names_its_source_run_and_copies_its_log(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    first, evidence1, _ = await _run(settings, write_script, repo)
    second, evidence2, _ = await _run(settings, write_script, repo)
    assert (first.status, second.status) == ("completed", "completed")
    fresh, hit = _pytest(evidence1), _pytest(evidence2)
    assert hit.cached and hit.cached_from == first.run_id and fresh.cached_from is None
    assert hit.summary == f"{fresh.summary} (cached from run {first.run_id})"
    assert fresh.log_ref is not None and hit.log_ref is not None
    assert hit.log_ref.startswith(f"artifact://{second.run_id}/")
    copied = (settings.artifacts / hit.log_ref.removeprefix("artifact://")).read_text()
    original = (settings.artifacts / fresh.log_ref.removeprefix("artifact://")).read_text()
    assert f"from run {first.run_id}" in copied and original in copied


async def test_cache_entries_of_one_owner_are_not_used_for_another(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    _, alice, _ = await _run(settings, write_script, repo, owner="alice")
    _, bob, _ = await _run(settings, write_script, repo, owner="bob")
    _, alice_again, _ = await _run(settings, write_script, repo, owner="alice")
    assert [_pytest(e).cached for e in (alice, bob, alice_again)] == [False, False, True]
    assert sorted(r[0] for r in _cache_rows(settings)) == ["alice", "bob"]


async def test_cache_off_in_policy_runs_the_checks_every_time(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    off = {**AUTO, "checks": {"timeout_s": LIMIT_S, "cache": False}}
    stops = [await _run(settings, write_script, repo, policy=off) for _ in range(2)]
    assert [s.status for s, _, _ in stops] == ["completed", "completed"]
    assert [_pytest(e).cached for _, e, _ in stops] == [False, False]
    assert _cache_rows(settings) == []


def _cache_rows(settings: Settings) -> list[tuple[Any, ...]]:
    with psycopg.connect(psycopg_conninfo(settings.database_url or "")) as conn:
        return conn.execute("SELECT owner, tree_hash FROM check_cache").fetchall()


def test_commit_checked_tree_undoes_what_the_checks_wrote(make_repo: MakeRepo) -> None:
    """Straight at ``checked_tree`` on a real worktree: everything the "checks" wrote is
    undone — a rewritten ``.git`` file, a mode-000 directory, a symlink to ``/root``, a new
    ignored cache — while an ignored directory that was there before is kept."""
    repo = make_repo({".gitignore": "cache/\n.venv/\n", "a.py": "A = 1\n"})
    worktree = repo.parent / "wt"
    git(repo, "worktree", "add", "-q", "-b", "shipyard/t", str(worktree))
    (worktree / ".venv").mkdir()
    (worktree / ".venv" / "keep").write_text("the developer's venv\n")
    (worktree / "b.py").write_text("B = 2\n")  # the developer's untracked change
    gitfile = (worktree / ".git").read_text()
    with checked_tree(worktree) as tree:
        (worktree / ".git").write_text("gitdir: /nowhere\n")
        (worktree / "a.py").write_text("A = 'changed by the checks'\n")
        os.symlink("/root", worktree / "root_link")
        (worktree / "cache").mkdir()
        (worktree / "cache" / "x").write_text("x")
        locked = worktree / "locked"
        locked.mkdir()
        (locked / "f").write_text("f")
        locked.chmod(0)
    assert (worktree / ".git").read_text() == gitfile
    assert sorted(p.name for p in worktree.iterdir()) == [
        ".git",
        ".gitignore",
        ".venv",
        "a.py",
        "b.py",
    ]
    assert (worktree / "a.py").read_text() == "A = 1\n"
    assert (worktree / ".venv" / "keep").exists()
    assert git(worktree, "status", "--porcelain") == "A  b.py"  # the index is the tree
    result = gitmod.commit_tree(worktree, tree, "step")
    stat = git(worktree, "show", "--stat", "--format=", "HEAD")
    assert result.created and stat.startswith("b.py") and "1 file changed" in stat
    assert git(worktree, "rev-parse", "HEAD^{tree}") == tree
    assert gitmod.commit_tree(worktree, tree, "again").created is False


AS_USER = """
import os, subprocess, sys, tempfile
from pathlib import Path
from shipyard.tools.checked_tree import checked_tree

def git(cwd, *args):
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=u", "-c", "user.email=u@x",
                           *args], check=True, capture_output=True, text=True).stdout.strip()

top = Path(tempfile.mkdtemp(dir=Path.home()))
repo, worktree = top / "repo", top / "wt"
repo.mkdir()
(repo / "a.py").write_text("A = 1\\n")
git(repo, "init", "-q", "-b", "main")
git(repo, "add", "-A")
git(repo, "commit", "-qm", "initial")
git(repo, "worktree", "add", "-q", "-b", "shipyard/t", str(worktree))
with checked_tree(worktree) as tree:
    locked = worktree / "locked" / "deeper"
    locked.mkdir(parents=True)
    (locked / "f").write_text("f")
    locked.chmod(0)
    (worktree / "locked").chmod(0)
    os.symlink("/root", worktree / "root_link")
print(sorted(p.name for p in worktree.iterdir()), git(worktree, "rev-parse", "HEAD^{tree}") == tree)
"""


def test_commit_checked_tree_as_a_normal_user(unprivileged: Any) -> None:
    """As a normal user, directories the checks made unreadable (mode 000) are still
    removed, and the worktree is back at its tree."""
    done = unprivileged.run([str(unprivileged.python), "-c", AS_USER])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['.git', 'a.py'] True"


async def test_cache_owners_stay_apart_through_the_server(
    start_server: Any, make_client: Any, settings: Settings, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """Over the API with two owners' keys: each run's checks are cached under the run's
    owner, so bob never gets alice's result and alice's second run gets her own."""
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = tmp_path / "server-script.json"
    script.write_text(
        json.dumps({"planner": [plan_reply(("s1", "work"))], "developer": {"s1/1": [finish()]}})
    )
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    keys = {who: running.state.auth.create(who, who)[1] for who in ("alice", "bob")}
    goal = {"goal": "work", "repo": str(repo), "policy": AUTO}
    evidence, threads = [], []
    for who in ("alice", "bob", "alice"):
        sdk = make_client(running.url, keys[who])
        thread = (await sdk.threads.create())["thread_id"]
        threads.append(thread)
        final = await sdk.runs.wait(thread, "shipyard", input=goal)
        assert final["status"] == "completed", final
        [check] = [e for e in final["report"]["evidence"] if e["check"] == "pytest"]
        evidence.append(check)
    assert [e["cached"] for e in evidence] == [False, False, True]
    assert evidence[2]["cached_from"] == threads[0]  # the run id is the thread id
    assert evidence[2]["log_ref"].startswith(f"artifact://{threads[2]}/")
    assert sorted(r[0] for r in _cache_rows(settings)) == ["alice", "bob"]
