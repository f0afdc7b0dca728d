"""Bad input through the ``shipyard`` command: a clear message, a non-zero exit code where
it ends the command, and nothing lost."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import get_args

import psycopg
import pytest

from shipyard.cli import main
from shipyard.contracts import RunStatus
from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine, psycopg_conninfo
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, call, finish, git, plan_reply

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("SHIPYARD_MODEL_SCRIPT", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SHIPYARD_HOME", str(settings.home))
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("COLUMNS", "200")
    return settings


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out + err


def _script(monkeypatch: pytest.MonkeyPatch, write_script: WriteScript) -> None:
    script = {
        "planner": [plan_reply(("s1", "add a"))],
        "developer": {"s1/1": [call("write_file", path="a.txt", content="a\n"), finish()]},
    }
    monkeypatch.setenv("SHIPYARD_MODEL_SCRIPT", str(write_script(script)))


@pytest.fixture
def scripted_repo(
    env: Settings,
    make_repo: MakeRepo,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A committed repository with a passing test, and a one-step script in the env."""
    _script(monkeypatch, write_script)
    return make_repo({"tests/test_ok.py": PASSING_TEST})


def test_missing_repo_path(
    env: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = _run(capsys, "run", "--repo", str(tmp_path / "nowhere"), "goal")
    assert code == 2
    assert "no such directory" in out and "nowhere" in out


def test_not_a_git_repository(
    env: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    code, out = _run(capsys, "run", "--repo", str(plain), "goal")
    assert code == 2 and "not a git repository" in out


def test_dirty_tree_is_refused_and_left_alone_unless_allowed(
    env: Settings,
    capsys: pytest.CaptureFixture[str],
    make_repo: MakeRepo,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST, "notes.txt": "committed\n"})
    (repo / "notes.txt").write_text("my unsaved work\n")
    code, out = _run(capsys, "run", "--repo", str(repo), "goal")
    assert code == 2 and "uncommitted changes" in out and "--allow-dirty" in out
    assert (repo / "notes.txt").read_text() == "my unsaved work\n"

    _script(monkeypatch, write_script)
    code, out = _run(capsys, "run", "--repo", str(repo), "--approve", "auto", "--allow-dirty", "g")
    assert code == 0, out
    assert "completed" in out
    assert (repo / "notes.txt").read_text() == "my unsaved work\n"
    assert git(repo, "status", "--porcelain") == "M notes.txt"


def test_unknown_run_id(env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("show", "approve", "resume"):
        code, out = _run(capsys, command, "0123456789ab")
        assert code == 2, command
        assert "no run with id" in out


def test_approving_a_run_that_is_not_waiting(
    scripted_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = scripted_repo
    code, out = _run(capsys, "run", "--repo", str(repo), "--approve", "auto", "g")
    assert code == 0
    run_id = out.split("run ", 1)[1].split()[0]
    code, out = _run(capsys, "approve", run_id)
    assert code == 2 and "not waiting for an approval (completed)" in out


def test_stale_approval_hash_is_refused_and_run_still_waits(
    scripted_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = scripted_repo
    code, out = _run(capsys, "run", "--repo", str(repo), "g")
    run_id = out.split("shipyard approve ", 1)[1].split()[0]
    code, out = _run(capsys, "approve", run_id, "--hash", "sha256:what-i-saw-yesterday")
    assert code == 2 and "what-i-saw-yesterday" in out and "now waits for plan approval" in out
    code, out = _run(capsys, "runs")
    assert "awaiting_approval" in out
    code, out = _run(capsys, "approve", run_id)
    assert code == 0 and "completed" in out


def test_plan_file_that_does_not_validate_names_the_field(
    env: Settings, capsys: pytest.CaptureFixture[str], make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"summary": "s", "risk": "low", "steps": [{"id": "s1"}]}))
    code, out = _run(capsys, "run", "--repo", str(repo), "--plan", str(plan), "g")
    assert code == 2 and "steps.0.title" in out and "plan.json" in out
    plan.write_text("{not json")
    code, out = _run(capsys, "run", "--repo", str(repo), "--plan", str(plan), "g")
    assert code == 2 and "not valid JSON" in out


def test_given_plan_file_skips_the_planner(
    env: Settings,
    capsys: pytest.CaptureFixture[str],
    make_repo: MakeRepo,
    write_script: WriteScript,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    dev_only = {"developer": {"s1/1": [call("write_file", path="a.txt", content="a\n"), finish()]}}
    monkeypatch.setenv("SHIPYARD_MODEL_SCRIPT", str(write_script(dev_only)))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(plan_reply(("s1", "add a"))["json"]))
    code, out = _run(
        capsys, "run", "--repo", str(repo), "--plan", str(plan), "--approve", "auto", "g"
    )
    assert code == 0 and "completed" in out


def test_model_endpoint_unreachable_leaves_a_resumable_paused_run(
    env: Settings,
    capsys: pytest.CaptureFixture[str],
    make_repo: MakeRepo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("SHIPYARD_MODEL_RETRIES", "0")
    code, out = _run(capsys, "run", "--repo", str(repo), "g")
    assert code == 3
    assert "paused" in out and f"127.0.0.1:{port}" in out and "shipyard resume" in out
    code, out = _run(capsys, "runs")
    assert "paused" in out


def test_database_unreachable_at_start_names_url_and_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"postgresql://shipyard:secret@127.0.0.1:{port}/db")
    code, out = _run(capsys, "runs")
    assert code == 3
    assert f"127.0.0.1:{port}" in out and "secret" not in out
    assert "DATABASE_URL" in out


# The real ``shipyard`` command in a subprocess: what a person sees, exit code and all.
SHIPYARD = str(Path(sys.executable).with_name("shipyard"))


def _shipyard(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHIPYARD, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _run_rows(settings: Settings) -> int:
    with psycopg.connect(psycopg_conninfo(settings.database_url or "")) as conn:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]  # type: ignore[index]


@pytest.mark.parametrize("goal", ["", "   "])
def test_empty_goal_is_one_line_and_exit_2(env: Settings, make_repo: MakeRepo, goal: str) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    done = _shipyard("run", "--repo", str(repo), goal)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: the goal is empty"), done.stderr
    assert _run_rows(env) == 0


def test_policy_file_that_does_not_validate_is_refused_before_a_run_exists(
    env: Settings, make_repo: MakeRepo
) -> None:
    bad = '[approvals]\nplan = "auto-low-risk"\nmin_isolation = "bwrap"\n'
    repo = make_repo({"tests/test_ok.py": PASSING_TEST, ".shipyard.toml": bad})
    for extra in ([], ["--approve", "auto"]):
        done = _shipyard("run", "--repo", str(repo), *extra, "add a file")
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert ".shipyard.toml:3" in done.stderr and "min_isolation" in done.stderr
        assert "Traceback" not in done.stdout + done.stderr
    assert _run_rows(env) == 0
    assert git(repo, "branch", "--list", "shipyard/*") == ""
    assert not (env.home / "workspaces").exists() or not any((env.home / "workspaces").iterdir())


def test_runs_list_keeps_statuses_whole_at_80_columns_and_without_a_terminal(
    env: Settings,
) -> None:
    statuses = get_args(RunStatus)
    engine = make_engine(env.database_url or "")
    try:
        store = RunStore(engine)
        for i, status in enumerate(statuses):
            goal = f"goal {i}: " + "make the parser accept every date format we know " * 3
            store.create_run(goal, "/repo", run_id=f"{i:012d}", status=status)
        # A running run has a live driver (else it is shown as interrupted).
        store.leases.acquire(f"{statuses.index('running'):012d}", "elsewhere:1:x", 600)
    finally:
        engine.dispose()
    # 80 columns leave the goal room on the run's line; 60 put it on a line of its own.
    for columns, width, per_run in (("80", 80, 1), ("60", 60, 2), (None, 80, 1)):
        environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        done = subprocess.run(
            [SHIPYARD, "runs"],
            env={**environ, **({"COLUMNS": columns} if columns else {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert len(lines) == per_run * (len(statuses) + 1), done.stdout
        assert all(len(line) <= width for line in lines), done.stdout
        by_id = {line.split()[0]: line for line in lines if line[:12].isdigit()}
        for i, status in enumerate(statuses):
            assert by_id[f"{i:012d}"].split()[1] == status, (columns, done.stdout)
            assert f"goal {i}: make the parser" in done.stdout
        assert done.stdout.count("…") == len(statuses)


def test_wall_time_budget_shows_fractions_of_a_second(
    env: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    slow = "import time\n\n\ndef test_slow():\n    time.sleep(0.8)\n"
    policy = "[budgets]\nwall_s = 0.5\n"
    repo = make_repo({"tests/test_slow.py": slow, ".shipyard.toml": policy})
    script = {
        "planner": [plan_reply(("s1", "add a"), ("s2", "add b"))],
        "developer": {
            "s1/1": [call("write_file", path="a.txt", content="a\n"), finish()],
            "s2/1": [call("write_file", path="b.txt", content="b\n"), finish()],
        },
    }
    done = _shipyard(
        "run", "--repo", str(repo), "--approve", "auto", "add two files",
        SHIPYARD_MODEL_SCRIPT=str(write_script(script)),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "needs_human_review" in done.stdout
    assert "wall-time budget spent:" in done.stdout
    assert " of 0.5 s" in done.stdout and " of 0 s" not in done.stdout, done.stdout
