"""The bundled suite ``evals/tasks.jsonl`` is well formed, offline.

Each line must be a task the harness accepts (``shipyard.evals.task``), name its source as
a PyPI release, carry attribution (upstream repository, fix commit, licence) that the
suite's README repeats, and hold two unified diffs that ``git apply`` can read: the hidden
tests touching only test files, the fix touching non-test files and, where a repository
test pins the behaviour the fix changes, that test file with upstream's own edit of it
(hunks the hidden tests have too: the hidden tests put the file back as at the base commit
before they apply theirs); never the same non-test file. Every test id names a file the
hidden tests touch. Whether the patches apply and the tests flip is the oracle run's job
(``shipyard eval evals/tasks.jsonl --oracle``).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shipyard.evals.task import BadLine, TaskLine, read_tasks

SUITE = Path(__file__).resolve().parents[2] / "evals"
TASKS = SUITE / "tasks.jsonl"
README = SUITE / "README.md"

PYPI = re.compile(r"^pypi:[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9._+!-]+$")
SHA = re.compile(r"^[0-9a-f]{40}$")
UPSTREAM = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+$")
TEST_FILE = re.compile(r"(^|/)(tests?|testing)/|(^|/)test_[^/]*\.py$|_test\.py$|(^|/)conftest\.py$")
NODE_ID = re.compile(r"^(?P<file>[\w./-]+\.py)::[\x21-\x7e]+$")


def diff_files(diff: str) -> list[str]:
    """The paths a unified diff touches, as ``git apply`` reads it; ``ValueError`` when git
    cannot read it as a patch."""
    proc = subprocess.run(
        ["git", "apply", "--numstat", "-"], input=diff, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ValueError(f"not a patch git can read: {proc.stderr.strip() or 'no files'}")
    return [line.split("\t", 2)[2] for line in proc.stdout.splitlines()]


def problems(task: dict[str, Any]) -> list[str]:
    """What is wrong with one suite task beyond what the harness's own parser checks."""
    found: list[str] = []
    if not PYPI.match(str(task.get("repo", ""))):
        found.append("repo is not pypi:NAME==VERSION")
    if not SHA.match(str(task.get("base_commit", ""))):
        found.append("base_commit is not a 40-hex commit")
    if not UPSTREAM.match(str(task.get("upstream", ""))):
        found.append("upstream is not a GitHub repository URL")
    if not SHA.match(str(task.get("upstream_commit", ""))):
        found.append("upstream_commit is not a 40-hex commit")
    if not str(task.get("license", "")).strip():
        found.append("license is missing")
    found += _diff_problems(str(task.get("patch", "")), str(task.get("test_patch", "")), task)
    return found


def _diff_problems(patch: str, test_patch: str, task: dict[str, Any]) -> list[str]:
    try:
        fixed, tests = diff_files(patch), diff_files(test_patch)
    except ValueError as err:
        return [str(err)]
    found = [
        f"patch touches test file {p} beyond upstream's edits in the test_patch"
        for p in fixed
        if TEST_FILE.search(p) and not _hunks_within(patch, test_patch, p)
    ]
    found += [f"test_patch touches non-test file {p}" for p in tests if not TEST_FILE.search(p)]
    found += [f"both patches touch {p}" for p in sorted(set(fixed) & set(tests))
              if not TEST_FILE.search(p)]  # fmt: skip
    if not task.get("FAIL_TO_PASS"):
        found.append("FAIL_TO_PASS is empty")
    for test_id in [*task.get("FAIL_TO_PASS", []), *task.get("PASS_TO_PASS", [])]:
        match = NODE_ID.match(test_id)
        if match is None:
            found.append(f"not a plain pytest node id: {test_id!r}")
        elif match["file"] not in tests:
            found.append(f"{test_id} is not in a file the test_patch touches")
    return found


def _hunks(diff: str, path: str) -> list[str]:
    """The bodies (without their ``@@`` line numbers) of ``diff``'s hunks of ``path``."""
    found: list[str] = []
    current: list[str] | None = None
    inside = False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            inside = line.endswith(f" b/{path}")
            current = None
        elif inside and line.startswith("@@"):
            current = []
            found.append("")
        elif inside and current is not None:
            current.append(line)
            found[-1] = "\n".join(current)
    return found


def _hunks_within(patch: str, test_patch: str, path: str) -> bool:
    """Whether every hunk of ``patch`` on ``path`` is a hunk of ``test_patch`` on it."""
    theirs = _hunks(test_patch, path)
    return all(any(mine in hunk for hunk in theirs) for mine in _hunks(patch, path))


def suite_lines() -> list[dict[str, Any]]:
    """The suite's task lines as JSON objects (comments and blank lines skipped)."""
    text = TASKS.read_text(encoding="utf-8")
    return [json.loads(raw) for raw in text.splitlines() if raw.strip() and raw[0] != "#"]


def test_every_line_is_a_task_the_harness_accepts() -> None:
    parsed = read_tasks(TASKS)
    bad = [item for item in parsed if isinstance(item, BadLine)]
    assert bad == []
    ids = [item.task.instance_id for item in parsed if isinstance(item, TaskLine)]
    assert len(ids) >= 20
    assert len(set(ids)) == len(ids)


def test_the_suite_spans_several_projects() -> None:
    projects = {task["repo"].split("==")[0] for task in suite_lines()}
    assert len(projects) >= 6


@pytest.mark.parametrize("task", suite_lines(), ids=lambda task: task["instance_id"])
def test_task_is_attributed_and_its_patches_are_disjoint_diffs(task: dict[str, Any]) -> None:
    assert problems(task) == []


def test_readme_attributes_every_task() -> None:
    readme = README.read_text(encoding="utf-8")
    rows = {
        line.split("|")[1].strip(): line for line in readme.splitlines() if line.startswith("| `")
    }
    for task in suite_lines():
        row = rows.get(f"`{task['instance_id']}`")
        assert row is not None, f"{task['instance_id']} has no row in evals/README.md"
        assert task["upstream_commit"][:12] in row
        assert task["repo"].removeprefix("pypi:") in row
        assert task["license"] in row


GOOD: dict[str, Any] = {
    "repo": "pypi:demo==1.0",
    "base_commit": "a" * 40,
    "upstream": "https://github.com/demo/demo",
    "upstream_commit": "b" * 40,
    "license": "MIT",
    "patch": (
        "diff --git a/demo.py b/demo.py\n--- a/demo.py\n+++ b/demo.py\n"
        "@@ -1 +1 @@\n-x = 1\n+x = 2\n"
    ),
    "test_patch": (
        "diff --git a/tests/test_demo.py b/tests/test_demo.py\n--- a/tests/test_demo.py\n"
        "+++ b/tests/test_demo.py\n@@ -1 +1,2 @@\n def test_a(): pass\n+def test_b(): pass\n"
    ),
    "FAIL_TO_PASS": ["tests/test_demo.py::test_b"],
    "PASS_TO_PASS": ["tests/test_demo.py::test_a"],
}


def test_a_well_formed_task_has_no_problems() -> None:
    assert problems(GOOD) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"repo": "https://github.com/demo/demo"}, "repo is not pypi:NAME==VERSION"),
        ({"base_commit": "HEAD"}, "base_commit is not a 40-hex commit"),
        ({"upstream": ""}, "upstream is not a GitHub repository URL"),
        ({"upstream_commit": "abc"}, "upstream_commit is not a 40-hex commit"),
        ({"license": " "}, "license is missing"),
        ({"patch": "not a diff\n"}, "not a patch git can read"),
        ({"patch": "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n"}, "not a"),
        (
            {"patch": str(GOOD["test_patch"]).replace("test_b", "test_c")},
            "patch touches test file tests/test_demo.py beyond upstream's edits",
        ),
        ({"test_patch": GOOD["patch"]}, "test_patch touches non-test file demo.py"),
        ({"FAIL_TO_PASS": []}, "FAIL_TO_PASS is empty"),
        ({"FAIL_TO_PASS": ["tests/test_demo.py::test b"]}, "not a plain pytest node id"),
        ({"PASS_TO_PASS": ["tests/test_other.py::test_a"]}, "is not in a file the test_patch"),
    ],
)
def test_each_kind_of_bad_task_is_named(change: dict[str, Any], expected: str) -> None:
    found = problems(GOOD | change)
    assert any(expected in problem for problem in found), found


def test_a_fix_may_carry_upstream_s_own_edit_of_a_test_the_hidden_tests_replace() -> None:
    # A repository test that pins the old behaviour: the fix edits it as upstream did.
    assert problems(GOOD | {"patch": str(GOOD["patch"]) + str(GOOD["test_patch"])}) == []


def test_a_file_in_both_patches_is_named() -> None:
    both = str(GOOD["patch"]) + str(GOOD["test_patch"])
    task = GOOD | {"patch": both.split("diff --git a/tests")[0], "test_patch": both}
    assert any("test_patch touches non-test file demo.py" in p for p in problems(task))
    assert any("both patches touch demo.py" in p for p in problems(task))
