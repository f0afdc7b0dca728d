"""The evaluation harness end to end on small generated tasks: real git, real Postgres,
real Shipyard runs through the graph, the oracle's scripted models, hidden tests in the
real sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.evals.harness import EvalOptions, evaluate, prepare
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from tests.integration.eval_support import (
    ADD_TEST,
    BROKEN_TEST,
    CALC,
    HANG_TEST,
    diff,
    fix,
    make_calc_repo,
    result,
    starts,
    task,
    write_tasks,
)
from tests.support import git

pytestmark = pytest.mark.slow  # whole runs through the graph


class Lines:
    """Collects the progress lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, text: str, /) -> None:
        self.lines.append(text)


async def _eval(settings: Settings, options: EvalOptions) -> tuple[dict[str, Any], Lines]:
    lines = Lines()
    selection = prepare(options)
    async with Runner.open(settings) as runner:
        data = await evaluate(options, selection, runner, lines)
    return data, lines


async def test_eval_scores_each_kind_of_task_two_at_a_time(
    settings: Settings, tmp_path: Path
) -> None:
    repo, base = make_calc_repo(tmp_path / "calc")
    hidden = diff(repo, {"tests/test_add.py": ADD_TEST})
    good = fix(repo)
    # Its context is in no version of the file (the files it touches are put back as at
    # the base commit before it is applied, so only such a patch fails to apply).
    mul_test = "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
    stale = diff(repo, {"tests/test_mul.py": mul_test + "# hidden\n"}).replace(
        " def test_mul():", " def test_mul_stale():"
    )
    hang = diff(repo, {"tests/test_add.py": ADD_TEST + HANG_TEST})
    hang_ids = ["tests/test_add.py::test_add", "tests/test_add.py::test_hang"]
    offline = "https://127.0.0.1:9/nothing.git"
    make_calc_repo(tmp_path / "broken", {"tests/test_net.py": BROKEN_TEST})
    protected = diff(
        repo,
        {"calc.py": CALC.replace("a - b", "a + b"), "tests/conftest.py": "# shared fixtures\n"},
    )
    lines: list[dict[str, Any] | str] = [
        task("ok", "calc", base, patch=good, test_patch=hidden),
        task("wrong", "calc", base, patch=fix(repo, add="a + b + 1"), test_patch=hidden),
        task("breaks-p2p", "calc", base, patch=fix(repo, mul="a * b if a < 100 else 0"),
             test_patch=hidden),
        "{this is not json",
        task("no-repo", "does-not-exist", base, patch=good, test_patch=hidden),
        task("no-base", "calc", "0" * 40, patch=good, test_patch=hidden),
        task("offline", offline, base, patch=good, test_patch=hidden),
        task("bad-test-patch", "calc", base, patch=good, test_patch=stale),
        task("hangs", "calc", base, patch=good, test_patch=hang, FAIL_TO_PASS=hang_ids),
        {"instance_id": "no-statement", "repo": "calc", "base_commit": base},
        task("false-failure", "broken", "HEAD", patch=good, test_patch=hidden),
        task("protected", "calc", base, patch=protected, test_patch=hidden),
    ]  # fmt: skip
    tasks = write_tasks(tmp_path / "tasks.jsonl", lines)
    options = EvalOptions(
        tasks_file=tasks, out=tmp_path / "out", cache=tmp_path / "cache", concurrency=2,
        oracle=True, test_timeout_s=20,
    )  # fmt: skip

    data, progress = await _eval(settings, options)

    out = options.out
    assert data["resolved"] == ["ok", "false-failure", "protected"]
    assert data["unresolved"] == ["wrong", "breaks-p2p", "hangs"]
    assert data["error"] == ["no-repo", "no-base", "offline", "bad-test-patch"]
    malformed = {(m["line"], m["instance_id"]) for m in data["malformed"]}
    assert malformed == {(4, None), (10, "no-statement")}
    assert "not JSON" in data["malformed"][0]["error"]
    assert "problem_statement" in data["malformed"][1]["error"]
    # The correct patch: resolved, and Shipyard's validator agreed.
    ok = result(out, "ok")
    assert ok["run_status"] == "completed" and ok["validator"] == "agree"
    assert ok["fail_to_pass"] == {"tests/test_add.py::test_add": "PASSED"}
    assert set(ok["pass_to_pass"].values()) == {"PASSED"}
    assert "+    return a + b" in ok["model_patch"]
    assert ok["usage"]["model_calls"] >= 2 and ok["attempts"] == 1
    # A wrong patch passes the repository's own checks: a validator false pass.
    wrong = result(out, "wrong")
    assert wrong["run_status"] == "completed" and wrong["validator"] == "false_pass"
    assert wrong["fail_to_pass"]["tests/test_add.py::test_add"] == "FAILED"
    # The P2P test it breaks is outside the repository's default selection: only the hidden
    # tests see it, and the task is unresolved although every FAIL_TO_PASS passes.
    broke = result(out, "breaks-p2p")
    assert broke["fail_to_pass"] == {"tests/test_add.py::test_add": "PASSED"}
    assert broke["pass_to_pass"]["slow/test_mul_big.py::test_mul_big"] == "FAILED"
    assert broke["pass_to_pass"]["tests/test_mul.py::test_mul"] == "PASSED"
    # wrong, breaks-p2p and hangs: Shipyard completed each, the hidden tests fail.
    assert data["totals"]["validator_false_passes"] == 3
    # A repository test that pins the bug fails on the fix: Shipyard never completes, yet the
    # change it left passes the hidden tests — a validator false failure, scored on the run's
    # final tree.
    failure = result(out, "false-failure")
    assert failure["run_status"] == "needs_human_review" and failure["validator"] == "false_failure"
    assert "+    return a + b" in failure["model_patch"]
    assert data["totals"]["validator_false_failures"] == 1
    # A change to how the code is tested always stops for a person: the harness approved it.
    guarded = result(out, "protected")
    assert guarded["auto_approvals"] == 1 and guarded["run_status"] == "completed"
    # Harness errors name what went wrong and are never scored.
    assert "does not exist" in result(out, "no-repo")["error"]
    assert result(out, "no-repo")["phase"] == "source"
    assert (
        "base_commit '0000000000000000000000000000000000000000' does not exist"
        in result(out, "no-base")["error"]
    )
    assert result(out, "offline")["phase"] == "source"
    bad = result(out, "bad-test-patch")
    assert bad["phase"] == "hidden" and "test_patch does not apply" in bad["error"]
    assert bad["run_status"] == "completed"  # the run happened; only its scoring could not
    # A hanging hidden test is stopped by the wall limit.
    hangs = result(out, "hangs")
    assert hangs["hidden_timed_out"] and "wall limit" in hangs["run_reason"]
    # preds.json: SWE-bench's format, one entry per task that had a run.
    preds = json.loads((out / "preds.json").read_text())
    assert [p["instance_id"] for p in preds] == ["ok", "wrong", "breaks-p2p", "bad-test-patch",
                                                 "hangs", "false-failure", "protected"]  # fmt: skip
    assert set(preds[0]) == {"instance_id", "model_name_or_path", "model_patch"}
    assert preds[0]["model_patch"] == ok["model_patch"]
    # A trajectory per run: the journal (model calls, the writes, the commit) and events.
    trajectory = json.loads((out / "tasks" / "ok" / "trajectory.json").read_text())
    kinds = [e["kind"] for e in trajectory["journal"]]
    assert "tool:write_file" in kinds and "git:commit" in kinds
    assert trajectory["events"][0]["kind"] == "intake"
    report_md = (out / "report.md").read_text()
    assert "**3 resolved**" in report_md and "line 4 | malformed" in report_md
    assert "approvals: auto" in report_md
    # Two at a time, each task started once, and the user's repository untouched.
    assert any("· 2 running ·" in line for line in progress.lines)
    assert all(starts(out, i) == 1 for i in ("ok", "wrong", "hangs", "no-repo"))
    assert git(repo, "status", "--porcelain") == "" and git(repo, "rev-parse", "HEAD") == base


async def test_a_finished_eval_runs_nothing_again(settings: Settings, tmp_path: Path) -> None:
    repo, base = make_calc_repo(tmp_path / "calc")
    test_patch = diff(repo, {"tests/test_add.py": ADD_TEST})
    tasks = write_tasks(
        tmp_path / "tasks.jsonl",
        [
            task("ok", "calc", base, patch=fix(repo), test_patch=test_patch),
            task("missing", "nowhere", base, patch=fix(repo), test_patch=test_patch),
        ],
    )
    options = EvalOptions(tasks_file=tasks, out=tmp_path / "out", cache=tmp_path / "c",
                          oracle=True)  # fmt: skip
    first, _ = await _eval(settings, options)
    again, progress = await _eval(settings, options)

    assert first["resolved"] == again["resolved"] == ["ok"]
    assert again["error"] == ["missing"]
    assert starts(options.out, "ok") == 1 and starts(options.out, "missing") == 1
    assert progress.lines[0].endswith("2 task(s) already finished: not run again")
    assert not any(" start " in line for line in progress.lines)
