"""The planner's repository map: files with their top-level symbols, ranked, cut to a token
budget (docs/agent-features.md).

Contract:

* The files are those of the base commit (``git ls-tree``), minus what the policy forbids
  reading; contents are read from git, never executed.
* Symbols: Python files through the standard ``ast`` module (classes with their methods,
  functions, UPPER_CASE constants); other files through Universal Ctags when ``ctags`` is
  on PATH (top-level tags only, one batch call with a time limit); otherwise the name only.
  A file that does not parse is listed by name.
* Rank: words of the goal found in a file's path or symbols first, then how many other
  Python files import it, then shallow paths, test files at half weight; ties by path.
  Test functions are counted, not listed. Lines are added in rank order
  while the estimate (``llm.pricing.estimate_tokens``) stays within ``max_tokens``; the
  files left out are counted on the last line.
"""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import SandboxError
from shipyard.llm.pricing import estimate_tokens
from shipyard.policy.config import Policy
from shipyard.sandbox.launcher import Launcher, Limits
from shipyard.tools import git

MAX_PARSE_BYTES = 256 * 1024
"""Python files larger than this are listed by name (parsing them costs more than it tells)."""
CTAGS_TIMEOUT_S = 30.0
CTAGS_OUTPUT_BYTES = 8 << 20
"""ctags' JSON output kept (beyond it the rest of the files get names only)."""
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]{2,}")
_SKIP_DIRS = ("node_modules/", "vendor/", "dist/", "build/", ".venv/", "venv/")


@dataclass
class _Entry:
    path: str
    symbols: list[str] = field(default_factory=list)
    imports: set[str] = field(default_factory=set)
    score: float = 0.0


def build(
    worktree: Path, commit: str, goal: str, policy: Policy, launcher: Launcher | None = None
) -> str:
    """The map of ``commit``'s files for ``goal``, within ``[agent.repo_map] max_tokens``
    (other languages' symbols through ctags in ``launcher``'s sandbox, when given)."""
    paths = [
        p
        for p in git.tracked_files(worktree, commit)
        if policy.check_path(p, "read").action != "deny" and not p.startswith(_SKIP_DIRS)
    ]
    entries = {p: _Entry(p) for p in paths}
    python = [p for p in paths if p.endswith(".py")]
    for path, data in git.blobs(worktree, commit, python, MAX_PARSE_BYTES).items():
        _python_symbols(data, entries[path])
    regular = set(git.tracked_files(worktree, commit, regular_only=True))
    others = [p for p in paths if p in regular and not p.endswith(".py")]
    _ctags_symbols(worktree, others, entries, launcher)
    _rank(list(entries.values()), goal)
    ranked = sorted(entries.values(), key=lambda e: (-e.score, e.path))
    return _render(ranked, policy.agent.repo_map.max_tokens)


def _python_symbols(data: bytes, entry: _Entry) -> None:
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError):
        return
    tests = 0
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = [
                n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            entry.symbols.append(
                f"class {node.name}" + (f"({', '.join(methods[:12])})" if methods else "")
            )
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.startswith("test_"):
                tests += 1  # counted, not listed: test names cost much and locate little
            else:
                entry.symbols.append(f"def {node.name}")
        elif isinstance(node, ast.Assign):
            entry.symbols += [
                t.id for t in node.targets if isinstance(t, ast.Name) and t.id.isupper()
            ]
        elif isinstance(node, ast.Import):
            entry.imports.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            entry.imports.add(node.module)
            entry.imports.update(f"{node.module}.{alias.name}" for alias in node.names)
    if tests:
        entry.symbols.append(f"{tests} test(s)")


def _ctags_symbols(
    worktree: Path, paths: list[str], entries: dict[str, _Entry], launcher: Launcher | None
) -> None:
    """Top-level tags of ``paths`` (regular files of the worktree, which is at the base
    commit while the planner works; never symlinks, which could point outside it).

    ctags parses the repository's files, so it runs in the sandbox like any command of the
    run, with option files off (``--options=NONE``: a repository's ``.ctags.d`` cannot
    configure it) and every path given as ``./path`` (a file named like an option is a
    file). Without a launcher, or a ctags that refuses those options, names only.
    """
    program = shutil.which("ctags")
    if program is None or not paths or launcher is None:
        return
    argv = [program, "--options=NONE", "--output-format=json", "--fields=+sK", "-f", "-"]
    try:
        done = launcher.run(
            [*argv, *(f"./{p}" for p in paths)], workspace=worktree, cwd=worktree,
            limits=Limits(timeout_s=CTAGS_TIMEOUT_S, output_bytes=CTAGS_OUTPUT_BYTES),
        )  # fmt: skip
    except SandboxError:
        return  # names only, as without ctags
    for line in done.stdout.splitlines():
        try:
            tag = json.loads(line)
        except json.JSONDecodeError:
            continue  # Exuberant ctags and other non-JSON output: names only
        entry = entries.get(str(tag.get("path", "")).removeprefix("./"))
        if entry is not None and "scope" not in tag and tag.get("name"):
            entry.symbols.append(f"{tag.get('kind', 'tag')} {tag['name']}")


def _rank(entries: list[_Entry], goal: str) -> None:
    words = {w.lower() for w in _WORD.findall(goal)}
    imported: Counter[str] = Counter()
    for entry in entries:
        imported.update(entry.imports)
    for entry in entries:
        module = entry.path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        refs = sum(n for name, n in imported.items() if _names_module(name, module))
        text = " ".join([entry.path, *entry.symbols]).lower()
        hits = sum(1 for w in words if w in text)
        depth = entry.path.count("/")
        score = 10.0 * hits + 2.0 * math.log1p(refs) + 1.0 / (1 + depth)
        entry.score = score / 2 if _is_test(entry.path) else score


def _is_test(path: str) -> bool:
    """Tests rank below the code they test: the plan names the code, then its tests."""
    name = path.rsplit("/", 1)[-1]
    return path.startswith(("tests/", "test/")) or "/tests/" in path or name.startswith("test_")


def _names_module(imported: str, module: str) -> bool:
    """``import a.b`` or ``from a.b import c`` names the module ``src/a/b.py`` (a source root
    prefix such as ``src.`` is allowed)."""
    return module.endswith(imported) and (module == imported or module.endswith("." + imported))


def _render(ranked: list[_Entry], max_tokens: int) -> str:
    lines: list[str] = []
    used = 0
    for shown, entry in enumerate(ranked):
        line = entry.path + (f": {'; '.join(entry.symbols)}" if entry.symbols else "")
        cost = estimate_tokens(line) + 1
        if used + cost > max_tokens:
            lines.append(f"... {len(ranked) - shown} more file(s) not shown (map budget)")
            break
        lines.append(line)
        used += cost
    return "\n".join(lines) if lines else "(no files)"
