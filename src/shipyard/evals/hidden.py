"""The hidden tests: outside the agent's reach, after its run has ended.

The commit of the run's final tree (``evals.run.final_commit``) is checked out in a worktree
of its own (``hidden/``, never the run's workspace), every file the task's ``test_patch``
touches is put back as it is at the base commit (SWE-bench's rule: a run that edited a test
file the hidden tests replace — a test that pinned the old behaviour — is judged by the
hidden tests, not by its own edit of them), the ``test_patch`` is applied there, the
environment is prepared (``tools/environment.py``), and ``FAIL_TO_PASS`` and
``PASS_TO_PASS`` run in Shipyard's sandbox as one pytest command bounded by a wall limit::

    <python> -m pytest -p no:cacheprovider -rA --tb=short <pytest_args> <ids...>

A test passes when pytest's ``-rA`` summary says ``PASSED`` or ``XFAIL`` for exactly its id
(SWE-bench's rule); an id the summary does not name — not collected, or cut off by the wall
limit — fails. A test patch that does not apply is a ``HarnessError``: the task is then
neither resolved nor unresolved.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.evals.errors import HarnessError
from shipyard.evals.task import Task
from shipyard.sandbox.launcher import Launcher, Limits
from shipyard.tools.check_cache import CHECK_ENV
from shipyard.tools.environment import EnvironmentSetupError, command_path, interpreter, prepare

PASSING = frozenset({"PASSED", "XFAIL"})
_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) (.+)$")
OUTPUT_BYTES = 8 << 20


@dataclass
class HiddenResult:
    """What the hidden tests said. ``tests`` maps each id to its summary word, or
    ``MISSING`` when pytest did not report it."""

    fail_to_pass: dict[str, str] = field(default_factory=dict)
    pass_to_pass: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    timed_out: bool = False
    seconds: float = 0.0
    log: str = ""

    @property
    def resolved(self) -> bool:
        """Every FAIL_TO_PASS passes and every PASS_TO_PASS still passes."""
        every = [*self.fail_to_pass.values(), *self.pass_to_pass.values()]
        return not self.timed_out and all(status in PASSING for status in every)


def run_hidden(
    task: Task,
    clone: Path,
    head: str,
    where: Path,
    launcher: Launcher,
    timeout_s: float,
    *,
    base: str,
) -> HiddenResult:
    """Run the task's hidden tests on commit ``head`` of ``clone``, in ``where`` (a
    directory that must not exist; removed afterwards, its log kept by the caller), the
    files ``test_patch`` touches first put back as they are at commit ``base``."""
    ids = list(dict.fromkeys([*task.FAIL_TO_PASS, *task.PASS_TO_PASS]))
    if not ids:
        raise HarnessError("the task names no tests (FAIL_TO_PASS and PASS_TO_PASS are empty)")
    _git(clone, "worktree", "add", "--quiet", "--detach", str(where), head)
    try:
        _restore(clone, base, patch_paths(task.test_patch), where)
        _apply(task.test_patch, where)
        try:
            marker = where.parent / "environment.setup"  # a fresh worktree: set up anew
            marker.unlink(missing_ok=True)
            prepare(task.environment, where, launcher, marker, timeout_s)
            argv = [interpreter(task.environment), "-m", "pytest", "-p", "no:cacheprovider",
                    "-rA", "--tb=short", *task.environment.pytest_args, *ids]  # fmt: skip
        except EnvironmentSetupError as err:
            raise HarnessError(str(err)) from None
        result = launcher.run(
            argv,
            workspace=where,
            env={**CHECK_ENV, "PATH": command_path(task.environment)},
            limits=Limits(timeout_s=timeout_s, output_bytes=OUTPUT_BYTES),
        )
    finally:
        _git(clone, "worktree", "remove", "--force", str(where), check=False)
        shutil.rmtree(where, ignore_errors=True)
    statuses = summary_statuses(result.stdout, ids)
    return HiddenResult(
        fail_to_pass={i: statuses.get(i, "MISSING") for i in task.FAIL_TO_PASS},
        pass_to_pass={i: statuses.get(i, "MISSING") for i in task.PASS_TO_PASS},
        exit_code=result.exit_code,
        timed_out=result.timed_out,
        seconds=result.duration_s,
        log=f"$ {' '.join(argv)}\n{result.stdout}\n--- stderr ---\n{result.stderr}",
    )


def summary_statuses(stdout: str, ids: list[str]) -> dict[str, str]:
    """The ``-rA`` summary word of each of ``ids`` found in ``stdout`` (the first wins)."""
    wanted = set(ids)
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        match = _SUMMARY.match(line.rstrip())
        if match is None:
            continue
        word, rest = match.groups()
        test = rest if rest in wanted else _prefix_id(rest, wanted)
        if test is not None:
            found.setdefault(test, word)
    return found


def _prefix_id(rest: str, wanted: set[str]) -> str | None:
    """The id that ``rest`` (``<id> - <message>``) starts with; the longest one wins, since
    a parametrised id may itself hold `` - ``."""
    heads = [i for i in wanted if rest.startswith(i + " - ")]
    return max(heads, key=len) if heads else None


def patch_paths(patch: str) -> list[str]:
    """Every path ``patch`` touches (both names of a rename), as ``git apply`` reads it;
    a patch git cannot parse is a ``HarnessError``."""
    if not patch.strip():
        return []
    done = subprocess.run(
        ["git", "apply", "--numstat", "-z"],
        input=patch.encode("utf-8"), capture_output=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()
        raise HarnessError(f"test_patch cannot be read: {why}")
    # Each entry is "added\tdeleted\tpath\0"; a rename or copy is named by its new path.
    entries = done.stdout.decode(errors="surrogateescape").split("\0")
    paths = [entry.split("\t", 2)[2] for entry in entries if entry.count("\t") >= 2]
    for line in patch.splitlines():
        if line.startswith("rename from "):
            paths.append(_unquoted(line.removeprefix("rename from ")))
    return list(dict.fromkeys(p for p in paths if p))


def _unquoted(name: str) -> str:
    """A path as git writes it in a patch header: C-quoted when it has unusual bytes."""
    if not (name.startswith('"') and name.endswith('"')):
        return name
    raw = name[1:-1].encode("latin-1", errors="backslashreplace").decode("unicode_escape")
    return raw.encode("latin-1").decode("utf-8", errors="surrogateescape")


def _restore(clone: Path, base: str, paths: list[str], where: Path) -> None:
    """``paths`` in the worktree ``where`` as they are at ``base``: checked out from it, or
    removed when ``base`` does not have them."""
    if not paths:
        return
    listed = subprocess.run(
        ["git", "ls-tree", "-r", "-z", "--name-only", base, "--",
         *[f":(literal){p}" for p in paths]],
        cwd=clone, capture_output=True, check=False,
    )  # fmt: skip
    if listed.returncode != 0:
        why = listed.stderr.decode(errors="replace").strip()
        raise HarnessError(f"git ls-tree {base}: {why}")
    at_base = set(filter(None, listed.stdout.decode(errors="surrogateescape").split("\0")))
    if at_base:
        _git(where, "checkout", base, "--", *[f":(literal){p}" for p in sorted(at_base)])
    for path in paths:
        target = where / path
        if path not in at_base and (target.is_file() or target.is_symlink()):
            target.unlink()


def _apply(patch: str, where: Path) -> None:
    if not patch.strip():
        return
    patch_file = where.parent / "test.patch"
    patch_file.write_text(patch, encoding="utf-8")
    done = subprocess.run(
        ["git", "apply", "--whitespace=nowarn", str(patch_file)],
        cwd=where, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise HarnessError(
            f"test_patch does not apply to the run's final tree: {done.stderr.strip()}"
        )


def _git(repo: Path, *args: str, check: bool = True) -> None:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise HarnessError(f"git {args[0]} {args[1]}: {done.stderr.strip()}")


__all__ = ["PASSING", "HiddenResult", "run_hidden", "summary_statuses"]
