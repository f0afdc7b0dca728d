"""The oracle's reference patch reaches the run's tree exactly as written: real runs through
the graph with the oracle's scripted models, real git, the hidden tests in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipyard.evals.errors import HarnessError
from shipyard.evals.harness import EvalOptions, evaluate, prepare
from shipyard.evals.oracle import APPLY, PATCH_FILE, REMOVE, reference
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from tests.integration.eval_support import (
    ADD_TEST,
    diff,
    fix,
    make_calc_repo,
    result,
    task,
    write_tasks,
)
from tests.support import git

pytestmark = pytest.mark.slow  # whole runs through the graph

KEYED = (
    "RETURNS_KEY = '__return__'\n"
    "API_TOKEN = 'not-a-secret-value'\n\n\n"
    "def add(a, b):\n    return a + b\n\n\n"
    "def mul(a, b):\n    return a * b\n"
)
"""Code that reads like a credential assignment to the redactor's patterns; it is code."""

KEYED_TEST = (
    "import calc\n\n\ndef test_add():\n    assert calc.add(2, 3) == 5\n"
    "    assert calc.RETURNS_KEY == '__return__'\n"
    "    assert calc.API_TOKEN == 'not-a-secret-value'\n"
)


class _Quiet:
    def print(self, text: str, /) -> None:
        del text


async def _eval(settings: Settings, options: EvalOptions) -> dict[str, Any]:
    selection = prepare(options)
    async with Runner.open(settings) as runner:
        return await evaluate(options, selection, runner, _Quiet())


async def test_code_that_looks_like_a_credential_is_written_verbatim(
    settings: Settings, tmp_path: Path
) -> None:
    repo, base = make_calc_repo(tmp_path / "calc")
    hidden = diff(repo, {"tests/test_add.py": KEYED_TEST})
    patch = diff(repo, {"calc.py": KEYED})
    tasks = write_tasks(tmp_path / "tasks.jsonl", [task("keyed", "calc", base, patch=patch,
                                                         test_patch=hidden)])  # fmt: skip
    options = EvalOptions(tasks_file=tasks, out=tmp_path / "out", cache=tmp_path / "cache",
                          oracle=True, test_timeout_s=60)  # fmt: skip

    data = await _eval(settings, options)

    keyed = result(options.out, "keyed")
    assert data["resolved"] == ["keyed"], keyed
    assert keyed["run_status"] == "completed" and keyed["validator"] == "agree"
    assert "+RETURNS_KEY = '__return__'" in keyed["model_patch"]
    assert "REDACTED" not in keyed["model_patch"]


BLOB = bytes(range(256)) * 4
"""A binary file (not UTF-8): only a ``GIT binary patch`` carries it."""


def _faithful_patch(repo: Path) -> str:
    """A patch that fixes ``add``, deletes a file, renames one, adds a binary file and an
    executable script — as ``git diff --binary`` writes it; the repository is left as it was."""
    (repo / "calc.py").write_text((repo / "calc.py").read_text().replace("a - b", "a + b"))
    git(repo, "rm", "-q", "slow/test_mul_big.py")
    git(repo, "mv", "tests/test_mul.py", "tests/test_times.py")
    (repo / "data").mkdir()
    (repo / "data" / "table.bin").write_bytes(BLOB)
    (repo / "run.sh").write_text("#!/bin/sh\necho ok\n")
    (repo / "run.sh").chmod(0o755)
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "--binary", "-M", "HEAD") + "\n"
    git(repo, "reset", "-q", "--hard", "HEAD")
    return patch


def _tree_after(repo: Path, base: str, patch: str, scratch: Path) -> str:
    """The tree ``patch`` makes of ``base``, applied with ``git apply --index`` in a clone."""
    scratch.parent.mkdir(parents=True)
    git(scratch.parent, "clone", "-q", str(repo), str(scratch))
    git(scratch, "checkout", "-q", "--detach", base)
    (scratch.parent / "p.diff").write_text(patch)
    git(scratch, "apply", "--index", str(scratch.parent / "p.diff"))
    return git(scratch, "write-tree")


async def test_a_patch_write_file_cannot_express_is_applied_faithfully(
    settings: Settings, tmp_path: Path
) -> None:
    repo, base = make_calc_repo(tmp_path / "calc")
    hidden = diff(repo, {"tests/test_add.py": ADD_TEST})
    patch = _faithful_patch(repo)
    line = task("faithful", "calc", base, patch=patch, test_patch=hidden,
                PASS_TO_PASS=["tests/test_times.py::test_mul"])  # fmt: skip
    tasks = write_tasks(tmp_path / "tasks.jsonl", [line])
    options = EvalOptions(tasks_file=tasks, out=tmp_path / "out", cache=tmp_path / "cache",
                          oracle=True, test_timeout_s=60)  # fmt: skip

    data = await _eval(settings, options)

    made = result(options.out, "faithful")
    assert data["resolved"] == ["faithful"], made
    assert made["run_status"] == "completed" and made["validator"] == "agree"
    # The run's change, as preds.json has it, remakes exactly the reference patch's tree.
    want = _tree_after(repo, base, patch, tmp_path / "want" / "repo")
    got = _tree_after(repo, base, made["model_patch"], tmp_path / "got" / "repo")
    assert got == want
    assert "deleted file mode" in made["model_patch"] and "GIT binary patch" in made["model_patch"]
    # The patch file the developer applied is gone, and nothing else was run.
    trajectory = json.loads((options.out / "tasks" / "faithful" / "trajectory.json").read_text())
    commands = [e["intent"]["args"]["command"] for e in trajectory["journal"]
                if e["kind"] == "tool:run_command"]  # fmt: skip
    assert commands == [APPLY, REMOVE]
    assert PATCH_FILE not in made["model_patch"]


def test_a_patch_that_does_not_apply_to_the_base_is_a_harness_error(tmp_path: Path) -> None:
    repo, base = make_calc_repo(tmp_path / "calc")
    stale = fix(repo).replace("-    return a - b", "-    return a - b - 0")
    with pytest.raises(HarnessError, match="the reference patch does not apply"):
        reference(repo, base, stale)
    plain = reference(repo, base, fix(repo))
    assert not plain.applied and set(plain.files) == {"calc.py"}
    assert reference(repo, base, _faithful_patch(repo)).applied
