"""``shipyard eval`` as a user runs it: a real subprocess, killed with SIGKILL mid-eval and
run again, and its answers to bad arguments."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shipyard.settings import Settings
from tests.integration.eval_support import (
    ADD_TEST,
    diff,
    fix,
    make_calc_repo,
    starts,
    task,
    write_tasks,
)

pytestmark = pytest.mark.slow  # whole runs through the graph

SHIPYARD = str(Path(sys.executable).parent / "shipyard")


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "OPENAI_"))}
    env.update(SHIPYARD_HOME=str(settings.home), DATABASE_URL=settings.database_url or "")
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SHIPYARD, "eval", *args], env=env, capture_output=True, text=True, timeout=600,
        check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _tasks(tmp_path: Path, count: int) -> Path:
    repo, base = make_calc_repo(tmp_path / "calc")
    hidden = diff(repo, {"tests/test_add.py": ADD_TEST})
    lines = [task(f"t{i}", "calc", base, patch=fix(repo), test_patch=hidden) for i in range(count)]
    return write_tasks(tmp_path / "tasks.jsonl", [*lines])


@pytest.mark.slow
def test_killed_eval_continues_and_never_reruns_a_finished_task(
    settings: Settings, tmp_path: Path
) -> None:
    tasks, out = _tasks(tmp_path, 3), tmp_path / "out"
    env = _env(settings)
    args = [
        SHIPYARD,
        "eval",
        str(tasks),
        "--out",
        str(out),
        "--oracle",
        "--cache",
        str(tmp_path / "c"),
    ]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        first = out / "tasks" / "t0" / "result.json"
        while not first.is_file():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    done_at_kill = {
        i: (out / "tasks" / i / "result.json").read_text()
        for i in ("t0", "t1", "t2")
        if (out / "tasks" / i / "result.json").is_file()
    }
    assert "t0" in done_at_kill and len(done_at_kill) < 3

    again = _cli(env, str(tasks), "--out", str(out), "--oracle", "--cache", str(tmp_path / "c"))

    assert again.returncode == 0, again.stderr
    assert f"{len(done_at_kill)} task(s) already finished: not run again" in again.stderr
    assert "3 resolved, 0 unresolved, 0 errors" in again.stdout
    for instance_id, text in done_at_kill.items():  # untouched, started exactly once
        assert (out / "tasks" / instance_id / "result.json").read_text() == text
        assert starts(out, instance_id) == 1
    for instance_id in {"t0", "t1", "t2"} - set(done_at_kill):
        assert 1 <= starts(out, instance_id) <= 2  # the one cut short is started afresh
    report = json.loads((out / "report.json").read_text())
    assert report["resolved"] == ["t0", "t1", "t2"]
    run_ids = [r["run_id"] for r in report["results"]]
    assert len(set(run_ids)) == 3
    for r in report["results"]:  # each result's run is the last one its task started
        log = (out / "tasks" / r["instance_id"] / "starts.log").read_text().splitlines()
        assert log[-1].endswith(f"run={r['run_id']}")


def test_bad_arguments_are_refused_before_anything_runs(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings)
    missing = _cli(env, str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2
    assert "cannot read tasks file" in missing.stderr and "none.jsonl" in missing.stderr
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task("a", "calc", "HEAD", patch="x")])
    unknown = _cli(env, str(tasks), "--out", str(tmp_path / "o"), "--ids", "a,zzz")
    assert unknown.returncode == 2 and "no valid task with id zzz" in unknown.stderr
    zero = _cli(env, str(tasks), "--out", str(tmp_path / "o"), "--concurrency", "0")
    assert zero.returncode == 2 and "--concurrency must be at least 1" in zero.stderr
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "eval.json").write_text(
        json.dumps({"tasks_file": str(tmp_path / "other.jsonl"), "oracle": True})
    )
    other = _cli(env, str(tasks), "--out", str(tmp_path / "o"))
    assert other.returncode == 2 and "holds an eval of" in other.stderr
    assert not (tmp_path / "o" / "tasks").exists()


def test_an_unreachable_model_stops_the_eval_without_scoring_the_task(
    settings: Settings, tmp_path: Path
) -> None:
    tasks, out = _tasks(tmp_path, 1), tmp_path / "out"
    env = _env(settings)
    env.update(OPENAI_BASE_URL="http://127.0.0.1:9/v1", OPENAI_API_KEY="sk-test-unused",
               SHIPYARD_MODEL_RETRIES="0", SHIPYARD_MODEL_TIMEOUT="5")  # fmt: skip

    done = _cli(env, str(tasks), "--out", str(out))

    assert done.returncode == 3, done.stderr
    assert "paused" in done.stderr and "run the same command to continue" in done.stderr
    assert starts(out, "t0") == 1
    assert not (out / "tasks" / "t0" / "result.json").exists()
    assert not (out / "report.json").exists()
