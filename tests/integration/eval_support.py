"""Small generated tasks for the evaluation harness's tests: a real git repository with a
bug, reference patches made by real ``git diff``, and task lines in SWE-bench's format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import git

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
"""The bug: ``add`` subtracts."""

FILES = {
    "calc.py": CALC,
    "pytest.ini": "[pytest]\ntestpaths = tests\n",
    ".shipyard.toml": "[budgets]\nattempts_per_step = 1\n",
    "tests/test_mul.py": "from calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n",
    "slow/test_mul_big.py": (
        "from calc import mul\n\n\ndef test_mul_big():\n    assert mul(200, 3) == 600\n"
    ),
}
"""``slow/`` is outside the repository's default test selection (``testpaths``): Shipyard's
own checks do not run it, the hidden tests do when a task names it."""

ADD_TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
HANG_TEST = "import time\n\n\ndef test_hang():\n    time.sleep(600)\n"

F2P = ["tests/test_add.py::test_add"]
P2P = ["tests/test_mul.py::test_mul", "slow/test_mul_big.py::test_mul_big"]


BROKEN_TEST = (
    "from pathlib import Path\n\n\ndef test_pins_the_old_behaviour():\n"
    "    assert 'a - b' in Path('calc.py').read_text()\n"
)
"""A repository test that any fix of ``add`` breaks (one that pinned the bug), and that the
hidden tests do not run: the validator refuses a change the hidden tests accept."""


def make_calc_repo(root: Path, extra: dict[str, str] | None = None) -> tuple[Path, str]:
    """The repository (with ``extra`` files) and its base commit."""
    for name, text in {**FILES, **(extra or {})}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root.parent, "init", "-q", "-b", "main", str(root))
    git(root, "add", "-A")
    git(root, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "calc")
    return root, git(root, "rev-parse", "HEAD")


def diff(repo: Path, changes: dict[str, str]) -> str:
    """The patch that makes ``changes`` (path -> new content), as ``git diff`` writes it;
    the repository is left as it was."""
    for name, text in changes.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "HEAD") + "\n"
    git(repo, "reset", "-q", "--hard", "HEAD")
    return patch


def fix(repo: Path, add: str = "a + b", mul: str = "a * b") -> str:
    """A patch of ``calc.py`` with these bodies."""
    body = f"def add(a, b):\n    return {add}\n\n\ndef mul(a, b):\n    return {mul}\n"
    return diff(repo, {"calc.py": body})


def task(instance_id: str, repo: str, base: str, **fields: Any) -> dict[str, Any]:
    """A task line's fields (the defaults: the add bug with its hidden test)."""
    return {
        "instance_id": instance_id,
        "repo": repo,
        "base_commit": base,
        "problem_statement": "add() subtracts instead of adding",
        "FAIL_TO_PASS": json.dumps(F2P),  # SWE-bench writes the lists as JSON text
        "PASS_TO_PASS": P2P,
        **fields,
    }


def write_tasks(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    """A tasks file; a ``str`` item is written as the raw line."""
    text = "\n".join(item if isinstance(item, str) else json.dumps(item) for item in lines)
    path.write_text(text + "\n")
    return path


def result(out: Path, instance_id: str) -> dict[str, Any]:
    """A task's ``result.json``."""
    data: dict[str, Any] = json.loads((out / "tasks" / instance_id / "result.json").read_text())
    return data


def starts(out: Path, instance_id: str) -> int:
    """How many times the harness started the task."""
    log = out / "tasks" / instance_id / "starts.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0
