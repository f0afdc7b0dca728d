"""Task lines, test-summary parsing and the validator comparison of the evaluation
harness: pure functions, no processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipyard.evals.errors import TaskFileError
from shipyard.evals.harness import EvalOptions, select
from shipyard.evals.hidden import summary_statuses
from shipyard.evals.result import validator_of
from shipyard.evals.run import run_input
from shipyard.evals.source import kind_of
from shipyard.evals.task import BadLine, TaskLine, read_tasks

LINE = {
    "instance_id": "a__b-1",
    "repo": "pypi:attrs==23.1.0",
    "base_commit": "HEAD",
    "problem_statement": "fix it",
    "patch": "",
    "test_patch": "",
    "FAIL_TO_PASS": '["t.py::test_a"]',
    "PASS_TO_PASS": [],
    "version": "1.0",
}


def _file(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_lists_are_read_as_json_text_or_lists_and_unknown_fields_ignored(tmp_path: Path) -> None:
    [item] = read_tasks(_file(tmp_path, LINE))
    assert isinstance(item, TaskLine) and item.line == 1
    assert item.task.FAIL_TO_PASS == ["t.py::test_a"] and item.task.PASS_TO_PASS == []


def test_each_bad_line_is_named_by_its_number_and_the_rest_is_read(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "# a comment",
        LINE,
        "",
        "[1, 2]",
        {**LINE, "instance_id": "b", "FAIL_TO_PASS": "not json"},
        {**LINE, "instance_id": "../escape"},
        {**LINE, "instance_id": "c", "environment": {"setup": "make", "network": True}},
        {**LINE, "instance_id": "d", "problem_statement": "   "},
        LINE,
        {**LINE, "instance_id": "ok2"},
    )
    items = read_tasks(path)
    bad = {b.line: b.error for b in items if isinstance(b, BadLine)}
    assert [t.task.instance_id for t in items if isinstance(t, TaskLine)] == ["a__b-1", "ok2"]
    assert bad[4] == "a JSON object was expected, got list"
    assert "FAIL_TO_PASS" in bad[5] and "JSON-encoded list" in bad[5]
    assert "instance_id" in bad[6]
    assert "environment.network" in bad[7] and "never have the network" in bad[7]
    assert "blank" in bad[8]
    assert bad[9] == "duplicate instance_id (first on line 2)"


def test_ids_and_limit_select_tasks_and_an_unknown_id_is_refused(tmp_path: Path) -> None:
    lines = read_tasks(_file(tmp_path, *({**LINE, "instance_id": f"t{i}"} for i in range(4))))
    options = EvalOptions(tasks_file=tmp_path / "tasks.jsonl", out=tmp_path, cache=tmp_path)
    chosen, _ = select(lines, EvalOptions(**{**options.__dict__, "ids": ("t2", "t0")}))
    assert [t.task.instance_id for t in chosen] == ["t0", "t2"]
    first, _ = select(lines, EvalOptions(**{**options.__dict__, "limit": 1}))
    assert [t.task.instance_id for t in first] == ["t0"]
    with pytest.raises(TaskFileError, match="no valid task with id t9"):
        select(lines, EvalOptions(**{**options.__dict__, "ids": ("t9",)}))


def test_unreadable_tasks_file_is_a_task_file_error(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="cannot read tasks file"):
        read_tasks(tmp_path / "missing.jsonl")


def test_summary_words_are_matched_to_exact_ids() -> None:
    stdout = "\n".join(
        [
            "tests/t.py ..F",
            "PASSED tests/t.py::test_a",
            "PASSED tests/t.py::test_a2",
            "FAILED tests/t.py::test_b[x - y] - AssertionError: 1 - 2",
            "XFAIL tests/t.py::test_c - reason",
            "ERROR tests/t.py::test_d - fixture missing",
        ]
    )
    ids = ["tests/t.py::test_a", "tests/t.py::test_b[x - y]", "tests/t.py::test_c",
           "tests/t.py::test_d", "tests/t.py::test_e"]  # fmt: skip
    assert summary_statuses(stdout, ids) == {
        "tests/t.py::test_a": "PASSED",
        "tests/t.py::test_b[x - y]": "FAILED",
        "tests/t.py::test_c": "XFAIL",
        "tests/t.py::test_d": "ERROR",
    }


def test_validator_false_pass_and_false_failure() -> None:
    assert validator_of("completed", True) == "agree"
    assert validator_of("completed", False) == "false_pass"
    assert validator_of("needs_human_review", True) == "false_failure"
    assert validator_of("needs_human_review", False) == "agree"


@pytest.mark.parametrize(
    ("repo", "kind"),
    [("pypi:attrs==23.1.0", "pypi"), ("https://github.com/x/y", "url"),
     ("git@github.com:x/y.git", "url"), ("file:///srv/r.git", "url"), ("../repo", "path"),
     ("/abs/repo", "path")],
)  # fmt: skip
def test_repo_forms(repo: str, kind: str) -> None:
    assert kind_of(repo) == kind


def test_an_evaluation_run_never_grants_a_setup_the_network() -> None:
    # No person approves in an evaluation: whatever the task's environment or the
    # repository's policy says, the run's overrides switch a setup's network off.
    task_env = {"environment": {"setup": ["make"], "pytest_args": ["-q"]}}
    for policy in ({}, task_env):
        given = run_input("fix it", Path("/tmp/clone"), "abc", policy)
        assert given.policy is not None
        assert given.policy["environment"]["network"] is False
    assert given.policy["environment"]["pytest_args"] == ["-q"]
    assert given.policy["approvals"] == {"plan": "never"}
