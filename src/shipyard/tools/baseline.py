"""The change's test configuration read from git, and its checks re-run under the base's.

:func:`alterations_of` reads a workspace's change against the base commit and classifies it
with :mod:`shipyard.tools.testconfig`. :func:`baseline_evidence` is the baseline
rule (``docs/architecture.md``, evidence integrity): when the change alters how it is
tested and its own checks passed, the test checks run a second time in a scratch copy of
the change's files in which every file that alters testing is as it was at the base commit
(files the change added are removed, files it removed come back). The evidence is named
``<check> (base test configuration)``:

* that run passes — passed;
* it fails only in test files the change added (they may need its new fixtures) — passed,
  saying plainly that the pass could not be established for those tests;
* anything else fails (a pre-existing test fails, collection breaks, no tests run, or more
  failures than are kept) — failed: either the change's test configuration hides these
  failures or the tests need it, and the pass could not be established without it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shipyard.contracts import Evidence
from shipyard.policy.config import Policy
from shipyard.sandbox.launcher import Launcher
from shipyard.tools.checks import Artifacts, run_checks
from shipyard.tools.checkspec import CheckSpec, detect_checks
from shipyard.tools.environment import environment_checks
from shipyard.tools.git import _git, snapshot_tree
from shipyard.tools.plugins import Plugin, plugins_named
from shipyard.tools.testconfig import PYTEST_CONFIGS, Alteration, FileChange, classify

SUFFIX = " (base test configuration)"
"""Appended to a check's name for its run under the base commit's test configuration."""

_TEST_KINDS = ("pytest", "npm", "exit-code")
"""Check kinds that run tests; linters and type checkers are not re-run."""

_NAMED = 8
"""Files named in an evidence summary (the approval request lists all of them)."""

_CONTENT = (".py", "pyproject.toml", "setup.cfg", "package.json", "tox.ini", "pytest.ini")
"""Files whose content the classifier reads; for others only presence matters."""


@dataclass(frozen=True)
class Alterations:
    """How a change alters its testing: the files (with reasons) and the paths it added."""

    changes: list[Alteration]
    added: frozenset[str]

    @property
    def paths(self) -> list[str]:
        """The files that alter how the change is tested."""
        return [c.path for c in self.changes]


def check_specs(workspace: Path, policy: Policy) -> list[CheckSpec]:
    """The checks validate runs in ``workspace`` under ``policy`` (configured, or detected)."""
    configured = policy.checks.run or None
    found = detect_checks(workspace, configured) if configured or policy.checks.detect else []
    return environment_checks(found, policy.environment)


def alterations_of(workspace: Path, base: str, policy: Policy) -> Alterations:
    """Classify the workspace's change against ``base`` (see :mod:`~shipyard.tools.testconfig`)."""
    tree = snapshot_tree(workspace)
    raw = _git(workspace, "diff-tree", "-r", "--no-renames", "--name-only", "-z", base, tree)
    files = [p for p in raw.stdout.decode(errors="surrogateescape").split("\0") if p]
    before, after = _entries(workspace, base, files), _entries(workspace, tree, files)
    changes = [
        FileChange(p, _content(workspace, p, before.get(p)), _content(workspace, p, after.get(p)))
        for p in files
    ]
    plugins: list[Plugin] = []
    roots: list[str] = []
    for rev in (base, tree):  # the plugins named before and after the change
        for path, sha in _config_files(workspace, rev).items():
            named, extra = plugins_named({path: _blob(workspace, sha)})
            plugins += named
            roots += extra
    commands = [spec.argv for spec in check_specs(workspace, policy)]
    found = classify(changes, plugins=plugins, roots=["", "src", *roots], commands=commands)
    return Alterations(found, frozenset(c.path for c in changes if c.before is None))


def diff_split(workspace: Path, base: str, paths: Sequence[str]) -> tuple[str, str]:
    """The diff from ``base`` to the workspace's files: of ``paths`` first, then the rest."""
    tree = snapshot_tree(workspace)
    args = ["diff-tree", "-r", "--no-renames", "-p", "--binary", base, tree, "--"]
    if not paths:
        return "", _text(_git(workspace, *args).stdout)
    first = _git(workspace, *args, *[f":(literal){p}" for p in paths]).stdout
    rest = _git(workspace, *args, *[f":(exclude,literal){p}" for p in paths]).stdout
    return _text(first), _text(rest)


def baseline_evidence(
    evidence: Sequence[Evidence],
    *,
    workspace: Path,
    base: str,
    policy: Policy,
    launcher: Launcher,
    artifacts: Artifacts,
    run_id: str,
    scratch_root: Path,
) -> list[Evidence]:
    """The baseline rule (module docstring): evidence to add to ``evidence`` (the change's
    own), ``[]`` when the change does not alter how it is tested or one of its own checks
    failed. A repository whose tests fail to run raises nothing: that is failing evidence; a
    launcher that cannot start a command raises ``SandboxError``."""
    if not all(e.passed for e in evidence):
        return []  # the verdict fails already; no check at all still gets the baseline
    testing = alterations_of(workspace, base, policy)
    if not testing.changes:
        return []
    shown = testing.paths[:_NAMED]
    more = len(testing.paths) - len(shown)
    restored = ", ".join(shown) + (f" and {more} more" if more else "")
    with _scratch(workspace, base, testing.paths, scratch_root / f"{run_id}.base-config") as tree:
        limit = policy.checks.timeout_s
        specs = [
            s.model_copy(update={"timeout": min(s.timeout, limit)})
            for s in check_specs(tree, policy)
            if s.kind in _TEST_KINDS
        ]
        results = run_checks(
            specs, workspace=tree, launcher=launcher, artifacts=artifacts, run_id=run_id
        )
    if not results:
        summary = (
            "The base commit's test configuration has no test check, so a pass under it "
            f"could not be established (files put back as at the base: {restored})"
        )
        return [Evidence(check="tests" + SUFFIX, command=[], exit_code=None, passed=True,
                         duration_s=0.0, summary=summary)]  # fmt: skip
    return [_judged(e, testing, restored) for e in results]


def _judged(result: Evidence, testing: Alterations, restored: str) -> Evidence:
    where = f"Under the base commit's test configuration (put back: {restored})"
    if result.passed:
        summary = f"{where} the tests pass too. {result.summary}"
        return result.model_copy(update={"check": result.check + SUFFIX, "summary": summary})
    ids = [f.id for f in result.failures]
    only_new = (
        bool(result.failures)
        and result.failure_count <= len(result.failures)
        and all(_test_file(f.id, f.path) in testing.added for f in result.failures)
    )
    if only_new:
        summary = (
            f"{where} no pre-existing test fails, but the pass could not be established for "
            f"new tests that fail without the change's test configuration (they may need its "
            f"new fixtures): {', '.join(ids)}. {result.summary}"
        )
        passed = True
    else:
        summary = (
            f"{where} the checks fail: {result.summary}. Either the change's test "
            "configuration hides these failures or the tests need it; the pass could not be "
            "established without it."
        )
        passed = False
    update = {"check": result.check + SUFFIX, "summary": summary, "passed": passed}
    return result.model_copy(update=update)


def _test_file(test_id: str, path: str | None) -> str:
    file = test_id.split("::", 1)[0]
    return file if file.endswith(".py") else (path or test_id)


@contextmanager
def _scratch(workspace: Path, base: str, paths: Sequence[str], scratch: Path) -> Iterator[Path]:
    """The workspace's files with ``paths`` as at ``base``, in ``scratch`` (removed after)."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        at_base = _entries(workspace, base, paths)
        with tempfile.TemporaryDirectory(prefix="shipyard-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _git(workspace, "read-tree", snapshot_tree(workspace), env=env)
            for path in paths:
                if path in at_base:
                    mode, sha = at_base[path]
                    info = f"{mode},{sha},{path}"
                    _git(workspace, "update-index", "--add", "--cacheinfo", info, env=env)
                else:
                    _git(workspace, "update-index", "--force-remove", "--", path, env=env)
            _git(workspace, "checkout-index", "-a", "-f", f"--prefix={scratch}/", env=env)
        for venv in (".venv", "venv"):  # ignored, so not in the tree: the checks use it
            if (workspace / venv).is_dir() and not (scratch / venv).exists():
                (scratch / venv).symlink_to(workspace / venv)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _entries(workspace: Path, rev: str, paths: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``path → (mode, blob id)`` at ``rev`` for those of ``paths`` it has."""
    if not paths:
        return {}
    specs = [f":(literal){p}" for p in paths]
    raw = _git(workspace, "ls-tree", "-r", "-z", "--full-tree", rev, "--", *specs).stdout
    found: dict[str, tuple[str, str]] = {}
    for entry in filter(None, raw.decode(errors="surrogateescape").split("\0")):
        meta, _, path = entry.partition("\t")
        mode, _kind, sha = meta.split()
        found[path] = (mode, sha)
    return found


def _config_files(workspace: Path, rev: str) -> dict[str, str]:
    """pytest's configuration files and every ``conftest.py`` at ``rev``: path → blob id."""
    raw = _git(workspace, "ls-tree", "-r", "-z", "--full-tree", rev).stdout
    found: dict[str, str] = {}
    for entry in filter(None, raw.decode(errors="surrogateescape").split("\0")):
        meta, _, path = entry.partition("\t")
        name = PurePosixPath(path).name
        if name == "conftest.py" or path in PYTEST_CONFIGS:
            found[path] = meta.split()[2]
    return found


def _content(workspace: Path, path: str, entry: tuple[str, str] | None) -> bytes | None:
    if entry is None:
        return None
    return _blob(workspace, entry[1]) if path.endswith(_CONTENT) else b""


def _blob(workspace: Path, sha: str) -> bytes:
    return _git(workspace, "cat-file", "blob", sha).stdout


def _text(raw: bytes) -> str:
    return raw.decode(errors="replace")


__all__ = [
    "SUFFIX",
    "Alterations",
    "alterations_of",
    "baseline_evidence",
    "check_specs",
    "diff_split",
]
