"""Which files of a change decide how the change is tested: the test-configuration classifier.

A change that edits the machinery judging it could forge its own verdict, so Shipyard
classifies every changed file (``docs/architecture.md``, evidence integrity). Given the
files' contents before (at the base commit) and after, :func:`classify` returns one
:class:`Alteration` per file that alters how the change is tested, with the reason in
words. A file counts when it is

* a ``conftest.py`` anywhere; ``pytest.ini`` / ``.pytest.ini``; ``tox.ini``; ``noxfile.py``;
  Shipyard's own ``.shipyard.toml``; a file named like the check runner's report
  (``.shipyard-report-*``);
* ``pyproject.toml`` whose ``[tool.pytest…]`` or ``[project.entry-points.pytest11]``
  changed; ``setup.cfg`` whose ``[tool:pytest]`` or ``pytest11`` entry points changed;
  ``package.json`` whose ``scripts`` (or ``jest`` / ``mocha`` / ``ava`` settings) changed —
  content-aware: a dependency bump is not a change in how the change is tested, but a
  file that no longer parses is;
* a pytest plugin of the repository: a module named by ``-p NAME`` in pytest's
  ``addopts``, by ``pytest_plugins`` in a ``conftest.py``, or by a ``pytest11`` entry point,
  looked up at the root, under ``src/`` and under the ``pythonpath`` directories the config
  names (a package counts with every file under it), in the configuration before *or* after;
* a file a check command executes: a relative path among its arguments (``bash
  scripts/test.sh``), the ``Makefile`` of ``make``, ``tox.ini`` / ``noxfile.py`` /
  ``package.json`` of ``tox`` / ``nox`` / ``npm``, the module of ``python -m``;
* a test file the base commit has whose test functions are gone (deleted or emptied);
* any Python file that defines pytest hooks (``def pytest_…``, ``hookimpl``,
  ``pytest_plugins``) or imports pytest's internals (``_pytest``).

Scripts called by those scripts, and weakened assertions inside a test that keeps its
name, are not detected; the diff shows them to the reviewer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from shipyard.tools.plugins import (
    PYTEST11_PYPROJECT,
    PYTEST11_SETUP_CFG,
    Plugin,
    dig,
    parse_ini,
    parse_toml,
    plugin_owners,
)

REPORT_PREFIX = ".shipyard-report-"
"""How the check runner names its report files in the workspace."""

PYTEST_CONFIGS = ("pytest.ini", ".pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini")
"""The files pytest reads its configuration from, which may name plugins."""


@dataclass(frozen=True)
class FileChange:
    """One changed file: its bytes at the base commit and now (``None``: absent)."""

    path: str
    before: bytes | None
    after: bytes | None


@dataclass(frozen=True)
class Alteration:
    """A changed file that alters how the change is tested, and why, in words."""

    path: str
    reason: str


def classify(
    changes: Sequence[FileChange],
    *,
    plugins: Iterable[Plugin] = (),
    roots: Iterable[str] = ("", "src"),
    commands: Sequence[Sequence[str]] = (),
) -> list[Alteration]:
    """The changes among ``changes`` that alter how the change is tested (see the module
    docstring), in the order given, one reason each. ``plugins`` and ``roots`` come from
    :func:`~shipyard.tools.plugins.plugins_named`; ``commands`` are the argvs of the checks
    that judge the change."""
    owners = plugin_owners(list(plugins), list(roots))
    executed = executed_files(commands)
    found = []
    for change in changes:
        reason = _reason(change, owners, executed)
        if reason is not None:
            found.append(Alteration(change.path, reason))
    return found


def _reason(
    change: FileChange, owners: Callable[[str], str | None], executed: Mapping[str, str]
) -> str | None:
    for rule in _RULES:
        reason = rule(change)
        if reason is not None:
            return reason
    if (origin := owners(change.path)) is not None:
        return f"{_status(change)} pytest plugin ({origin})"
    if change.path in executed:
        return f"{_status(change)} file the check `{executed[change.path]}` runs"
    return _removed_tests(change) or _pytest_internals(change)


def _status(change: FileChange) -> str:
    if change.before is None:
        return "new"
    return "removed" if change.after is None else "changed"


def _by_name(change: FileChange) -> str | None:
    name = PurePosixPath(change.path).name
    fixed = {
        "conftest.py": "pytest hooks and fixtures",
        "pytest.ini": "pytest configuration",
        ".pytest.ini": "pytest configuration",
        "tox.ini": "tox and pytest configuration",
        "noxfile.py": "nox sessions",
    }
    if name in fixed:
        return f"{_status(change)} {fixed[name]}"
    if change.path == ".shipyard.toml":
        return f"{_status(change)} Shipyard policy, which configures the checks"
    if name.startswith(REPORT_PREFIX):
        return "a file named like the check runner's own report"
    return None


def _pyproject(change: FileChange) -> str | None:
    if change.path != "pyproject.toml":
        return None
    keys = {"[tool.pytest…]": ("tool", "pytest"), "pytest11 entry points": PYTEST11_PYPROJECT}
    return _tables_changed(change, parse_toml, keys)


def _setup_cfg(change: FileChange) -> str | None:
    if change.path != "setup.cfg":
        return None
    keys = {"[tool:pytest]": ("tool:pytest",), "pytest11 entry points": PYTEST11_SETUP_CFG}
    return _tables_changed(change, parse_ini, keys)


def _package_json(change: FileChange) -> str | None:
    if change.path != "package.json":
        return None
    keys = {f'"{k}"': (k,) for k in ("scripts", "jest", "mocha", "ava")}
    return _tables_changed(change, _json, keys)


def _tables_changed(
    change: FileChange,
    parse: Callable[[bytes], dict[str, Any]],
    keys: Mapping[str, tuple[str, ...]],
) -> str | None:
    try:
        before, after = (parse(b) if b is not None else {} for b in (change.before, change.after))
    except ValueError:
        return f"{change.path} does not parse: a change to its test settings cannot be ruled out"
    changed = [label for label, key in keys.items() if dig(before, key) != dig(after, key)]
    return f"changes {', '.join(changed)} in {change.path}" if changed else None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(str(err)) from None
    return data if isinstance(data, dict) else {}


_RULES: tuple[Callable[[FileChange], str | None], ...] = (
    _by_name,
    _pyproject,
    _setup_cfg,
    _package_json,
)

_TEST_DEF = re.compile(rb"^\s*(?:async\s+)?def\s+(test\w*)\s*\(", re.M)
_INTERNALS = re.compile(
    rb"^\s*(?:async\s+)?def\s+pytest_\w+\s*\(|hookimpl|hookwrapper|pytest_plugins\s*=|"
    rb"^\s*(?:from|import)\s+_pytest\b|import\s+[^\n]*\b_pytest\b",
    re.M,
)


def _is_test_file(path: str) -> bool:
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _removed_tests(change: FileChange) -> str | None:
    if change.before is None or not _is_test_file(change.path):
        return None
    gone = set(_TEST_DEF.findall(change.before)) - set(_TEST_DEF.findall(change.after or b""))
    if not gone:
        return None
    if change.after is None:
        return "removed test file the base commit has"
    names = ", ".join(sorted(n.decode(errors="replace") for n in gone))
    return f"removes tests the base commit has ({names})"


def _pytest_internals(change: FileChange) -> str | None:
    if not change.path.endswith(".py") or change.after is None:
        return None
    if _INTERNALS.search(change.after) and not (
        change.before is not None and _INTERNALS.search(change.before)
    ):
        return "defines pytest hooks or reaches into pytest's internals"
    if change.before is not None and _INTERNALS.search(change.after):
        return "changed file that defines pytest hooks or reaches into pytest's internals"
    return None


# ----- check commands ------------------------------------------------------------------------

_PROGRAM_FILES = {
    "make": ("Makefile", "makefile", "GNUmakefile"),
    "gmake": ("Makefile", "makefile", "GNUmakefile"),
    "tox": ("tox.ini",),
    "nox": ("noxfile.py",),
    "npm": ("package.json",),
    "yarn": ("package.json",),
    "pnpm": ("package.json",),
}


def executed_files(commands: Sequence[Sequence[str]]) -> dict[str, str]:
    """Repository files the check commands execute (path → the command, for the reason)."""
    found: dict[str, str] = {}
    for argv in commands:
        if not argv:
            continue
        text = " ".join(argv)
        program = PurePosixPath(argv[0]).name
        names = list(_PROGRAM_FILES.get(program, ()))
        words = list(argv) if "/" in argv[0] else list(argv[1:])
        for i, word in enumerate(words):
            if word == "-m" and i + 1 < len(words):
                stem = words[i + 1].replace(".", "/")
                names += [f"{stem}.py", f"{stem}/__main__.py", f"src/{stem}.py"]
            elif word == "-f" and program in ("make", "gmake") and i + 1 < len(words):
                names.append(words[i + 1])
            elif not word.startswith("-") and not word.startswith("/"):
                names.append(word)
        for name in names:
            rel = PurePosixPath(name).as_posix().removeprefix("./")
            found.setdefault(rel, text)
    return found


__all__ = [
    "PYTEST_CONFIGS",
    "REPORT_PREFIX",
    "Alteration",
    "FileChange",
    "Plugin",
    "classify",
    "executed_files",
]
