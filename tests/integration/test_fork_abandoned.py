"""A fork from an older checkpoint rewinds the run branch, but never loses the commits it
drops: before the rewind, ``refs/shipyard/<run>/abandoned/<n>`` points at the old tip, and
the CLI output and the run report say where. Runner and the ``shipyard`` CLI as a
subprocess, scripted model, real git and Postgres."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from shipyard.tools import git as shipyard_git
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, call, finish, git, plan_reply

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`

NO_PLAN_APPROVAL = {"approvals": {"plan": "never"}}


def _two_steps() -> dict[str, Any]:
    return {
        "planner": [plan_reply(("s1", "a"), ("s2", "b"))],
        "developer": {
            "s1/1": [call("write_file", path="a.txt", content="a\n"), finish()],
            "s2/1": [call("write_file", path="b.txt", content="b\n"), finish()],
        },
    }


async def _completed_with_checkpoint(
    settings: Settings, repo: Path, script: Path
) -> tuple[str, str, str]:
    """A completed two-step run: its id, the checkpoint after step 1, and the branch tip."""
    async with Runner.open(dataclasses.replace(settings, model_script=script)) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo), policy=NO_PLAN_APPROVAL))
        assert stop.status == "completed"
        history = await runner.history(stop.run_id)
    after_s1 = next(
        s for s in history if s.next == ("execute",) and s.values.get("step_index") == 1
    )
    tip = git(repo, "rev-parse", f"shipyard/{stop.run_id}")
    return stop.run_id, after_s1.config["configurable"]["checkpoint_id"], tip


async def test_fork_keeps_the_dropped_commits_at_a_ref_named_in_stop_and_report(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = write_script(_two_steps())
    run_id, checkpoint, old_tip = await _completed_with_checkpoint(settings, repo, script)

    async with Runner.open(dataclasses.replace(settings, model_script=script)) as runner:
        forked = await runner.fork(run_id, checkpoint)
        second_tip = git(repo, "rev-parse", f"shipyard/{run_id}")
        again = await runner.fork(run_id, checkpoint)
    first_ref = f"refs/shipyard/{run_id}/abandoned/1"
    second_ref = f"refs/shipyard/{run_id}/abandoned/2"
    assert forked.status == "completed"
    assert forked.notice == f"the newer commits stay reachable at {first_ref}"
    assert git(repo, "rev-parse", first_ref) == old_tip
    assert git(repo, "show", f"{first_ref}:b.txt") == "b"  # the abandoned step 2
    # the branch was rewound and continued to the fork's own step-2 commit
    assert forked.report is not None and second_tip == forked.report.head_commit
    assert forked.report is not None and forked.report.abandoned == [first_ref]
    # a second fork from the same checkpoint keeps the second abandoned line too, and the
    # report lists every line the run abandoned
    assert again.notice == f"the newer commits stay reachable at {second_ref}"
    assert git(repo, "rev-parse", second_ref) == second_tip
    assert git(repo, "rev-parse", first_ref) == old_tip
    assert again.report is not None and again.report.abandoned == [first_ref, second_ref]
    report_md = Path(again.report.report_path or "").with_suffix(".md").read_text()
    assert first_ref in report_md and second_ref in report_md


async def test_fork_from_the_newest_commit_keeps_no_ref(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = write_script(_two_steps())
    async with Runner.open(dataclasses.replace(settings, model_script=script)) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo), policy=NO_PLAN_APPROVAL))
        history = await runner.history(stop.run_id)
        # the checkpoint before finalize records the branch tip: nothing is dropped
        before_end = next(s for s in history if s.next == ("finalize",))
        forked = await runner.fork(stop.run_id, before_end.config["configurable"]["checkpoint_id"])
    assert forked.status == "completed" and forked.notice is None
    assert forked.report is not None and forked.report.abandoned == []
    assert git(repo, "for-each-ref", f"refs/shipyard/{stop.run_id}/") == ""


def test_keep_abandoned_refuses_a_run_id_that_is_not_a_plain_token(
    make_repo: MakeRepo,
) -> None:
    repo = make_repo({"a.txt": "a\n"})
    for bad in ("../x", "a b", "x..y"):
        try:
            shipyard_git.keep_abandoned(repo, bad, "HEAD")
        except ValueError as err:
            assert "cannot name a branch" in str(err)
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert git(repo, "for-each-ref", "refs/shipyard/") == ""


async def test_cli_fork_says_where_the_newer_commits_stay(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = write_script(_two_steps())
    run_id, checkpoint, old_tip = await _completed_with_checkpoint(settings, repo, script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "OPENAI_"))}
    env.update(
        SHIPYARD_HOME=str(settings.home),
        DATABASE_URL=settings.database_url or "",
        SHIPYARD_MODEL_SCRIPT=str(script),
        COLUMNS="200",
    )
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli", "fork", run_id, "--checkpoint", checkpoint],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ref = f"refs/shipyard/{run_id}/abandoned/1"
    assert f"the newer commits stay reachable at {ref}" in " ".join(done.stdout.split())
    assert git(repo, "rev-parse", ref) == old_tip
