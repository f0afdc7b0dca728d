"""The hidden tests judge the run's final tree with the task's own test files: every file
the ``test_patch`` touches is put back as at the base commit first (SWE-bench's rule), so a
run that edited those test files is scored, not turned into a harness error."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.evals.errors import HarnessError
from shipyard.evals.hidden import patch_paths, run_hidden
from shipyard.evals.task import Task
from shipyard.sandbox.launcher import SandboxLauncher, make_launcher
from tests.integration.eval_support import ADD_TEST, BROKEN_TEST, CALC, diff, make_calc_repo
from tests.support import git

FIXED = CALC.replace("a - b", "a + b")
RUN_OWN_TEST = "def test_add():\n    assert True  # the run's own, weaker test\n"


@pytest.fixture(scope="module")
def launcher() -> SandboxLauncher:
    return make_launcher()


def _task(test_patch: str, base: str) -> Task:
    return Task.model_validate({
        "instance_id": "hidden", "repo": "calc", "base_commit": base, "problem_statement": "x",
        "test_patch": test_patch, "FAIL_TO_PASS": ["tests/test_add.py::test_add"],
        "PASS_TO_PASS": ["tests/test_mul.py::test_mul"],
    })  # fmt: skip


def _commit(repo: Path, files: dict[str, str | None]) -> str:
    """A commit on top of HEAD with ``files`` written (``None``: removed); HEAD stays."""
    head = git(repo, "rev-parse", "HEAD")
    for name, text in files.items():
        if text is None:
            (repo / name).unlink()
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "run")
    made = git(repo, "rev-parse", "HEAD")
    git(repo, "reset", "-q", "--hard", head)
    return made


def test_test_files_the_run_edited_are_put_back_before_the_test_patch(
    tmp_path: Path, launcher: SandboxLauncher
) -> None:
    repo, base = make_calc_repo(tmp_path / "calc", {"tests/test_pin.py": BROKEN_TEST})
    # The hidden tests replace the test that pinned the bug and add tests/test_add.py.
    hidden = diff(repo, {"tests/test_pin.py": "def test_nothing_pinned():\n    pass\n",
                         "tests/test_add.py": ADD_TEST})  # fmt: skip
    # The run fixed the bug, rewrote the pinning test its own way and wrote its own
    # tests/test_add.py: the test patch applies to neither as the run left them.
    final = _commit(repo, {"calc.py": FIXED, "tests/test_pin.py": "def test_x():\n    pass\n",
                           "tests/test_add.py": RUN_OWN_TEST})  # fmt: skip

    judged = run_hidden(_task(hidden, base), repo, final, tmp_path / "h", launcher, 60, base=base)

    assert judged.resolved, judged.log
    assert judged.fail_to_pass == {"tests/test_add.py::test_add": "PASSED"}
    assert not (tmp_path / "h").exists()
    # Put back means as at the base: the run's own test_add.py is not what ran.
    unfixed = _commit(repo, {"tests/test_add.py": RUN_OWN_TEST})
    judged = run_hidden(_task(hidden, base), repo, unfixed, tmp_path / "h", launcher, 60,
                        base=base)  # fmt: skip
    assert judged.fail_to_pass == {"tests/test_add.py::test_add": "FAILED"}


def test_the_paths_a_test_patch_touches_include_deleted_and_renamed_files(tmp_path: Path) -> None:
    repo, _ = make_calc_repo(tmp_path / "calc")
    git(repo, "mv", "tests/test_mul.py", "tests/test_times.py")
    git(repo, "rm", "-q", "slow/test_mul_big.py")
    renamed = git(repo, "diff", "--cached", "-M", "HEAD") + "\n"
    git(repo, "reset", "-q", "--hard", "HEAD")

    assert sorted(patch_paths(renamed)) == [
        "slow/test_mul_big.py",
        "tests/test_mul.py",
        "tests/test_times.py",
    ]
    with pytest.raises(HarnessError, match="test_patch cannot be read"):
        patch_paths("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n")
