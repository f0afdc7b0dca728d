"""Checks that produce evidence: detect, run through the launcher, parse, cache (DESIGN §1).

The validator believes reports, not the model: pass/fail comes from exit codes and from
parsed reports (pytest's JUnit XML, ruff's JSON, mypy's error lines), each failure becomes a
:class:`~shipyard.contracts.Failure` with a compact slice of output, and the full, redacted
log goes to the artifact store. :func:`verdict_from` turns evidence into the step's verdict.

Results are cached by (tree hash of the workspace's files, command key): an unchanged tree is
never checked twice. A run cut short by a launcher limit is evidence of failure but is not
cached, since a retry on a quieter machine may finish.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from shipyard.contracts import Evidence, Failure, Finding, Verdict
from shipyard.redact import redact
from shipyard.sandbox import CommandResult, Launcher, Limits
from shipyard.tools.checkspec import CheckSpec, detect_checks
from shipyard.tools.git import snapshot_tree
from shipyard.tools.reports import ParsedReport, compact, parse_report

__all__ = [
    "Artifacts",
    "CheckCache",
    "CheckSpec",
    "MemoryCheckCache",
    "command_key",
    "detect_checks",
    "run_checks",
    "targeted_tests",
    "verdict_from",
]

# Clean, non-interactive output; bytecode off so a check run leaves the tree hash unchanged.
_CHECK_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1", "PY_COLORS": "0", "CI": "1"}


class Artifacts(Protocol):
    """Where full logs go; ``put`` returns a reference that ``Evidence.log_ref`` holds."""

    def put(self, run_id: str, name: str, data: bytes | str) -> str: ...


class CheckCache(Protocol):
    """Evidence by (tree hash, command key). Implementations: :class:`MemoryCheckCache`,
    and the Postgres one in ``store/``."""

    def get(self, tree_hash: str, command_key: str) -> Evidence | None: ...

    def put(self, tree_hash: str, command_key: str, evidence: Evidence) -> None: ...


class MemoryCheckCache:
    """A :class:`CheckCache` in a dict, for one process (tests, the offline demo)."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Evidence] = {}

    def get(self, tree_hash: str, command_key: str) -> Evidence | None:
        found = self._items.get((tree_hash, command_key))
        return found.model_copy(deep=True) if found is not None else None

    def put(self, tree_hash: str, command_key: str, evidence: Evidence) -> None:
        self._items[(tree_hash, command_key)] = evidence.model_copy(deep=True)


def command_key(spec: CheckSpec, targets: Sequence[str] = ()) -> str:
    """A stable key for "this check, run this way" (the tree hash is the other half)."""
    body = json.dumps(
        {"spec": spec.model_dump(mode="json"), "targets": list(targets)}, sort_keys=True
    )
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def verdict_from(evidence: Sequence[Evidence], findings: Sequence[Finding] = ()) -> Verdict:
    """Passed only if every check passed and no finding is an error. No checks at all is a
    pass with empty evidence; the caller decides whether that is acceptable."""
    passed = all(e.passed for e in evidence) and not any(f.severity == "error" for f in findings)
    return Verdict(passed=passed, evidence=list(evidence), findings=list(findings))


def targeted_tests(workspace: Path, changed_files: Sequence[str]) -> list[str]:
    """Test files touching ``changed_files``: changed test files themselves, and
    ``tests/**/test_<module>.py`` for a changed ``<module>.py``. Paths relative, sorted."""
    root = workspace.resolve()
    found: set[str] = set()
    for name in changed_files:
        path = PurePosixPath(name)
        if path.suffix != ".py" or path.stem in {"__init__", "conftest"}:
            continue
        if path.name.startswith("test_") or path.stem.endswith("_test"):
            candidates = [root / path]
        else:
            candidates = sorted((root / "tests").glob(f"**/test_{path.stem}.py"))
        for cand in candidates:
            real = cand.resolve()
            if real.is_file() and real.is_relative_to(root):
                found.add(real.relative_to(root).as_posix())
    return sorted(found)


@dataclass(frozen=True)
class _Context:
    workspace: Path
    launcher: Launcher
    artifacts: Artifacts
    run_id: str
    cache: CheckCache | None
    tree: str | None


def run_checks(
    specs: Sequence[CheckSpec],
    *,
    workspace: Path,
    launcher: Launcher,
    artifacts: Artifacts,
    run_id: str,
    cache: CheckCache | None = None,
    changed_files: Sequence[str] = (),
) -> list[Evidence]:
    """Run ``specs`` in ``workspace`` through ``launcher`` and return one ``Evidence`` each.

    With ``changed_files``, a pytest check first runs the tests touching them
    (``<name>[targeted]``); if those fail the full suite is skipped for fast feedback,
    otherwise it runs too. Other checks always run. With a ``cache``, the workspace's tree
    hash keys the results and a hit comes back with ``cached=True`` without running
    anything. A launcher that cannot start a command raises ``SandboxError``.
    """
    ctx = _Context(
        workspace, launcher, artifacts, run_id, cache, snapshot_tree(workspace) if cache else None
    )
    evidence: list[Evidence] = []
    for spec in specs:
        targets = targeted_tests(workspace, changed_files) if spec.kind == "pytest" else []
        if targets:
            first = _cached_run(ctx, spec, targets)
            evidence.append(first)
            if not first.passed:
                continue
        evidence.append(_cached_run(ctx, spec, []))
    return evidence


def _cached_run(ctx: _Context, spec: CheckSpec, targets: list[str]) -> Evidence:
    key = command_key(spec, targets)
    if ctx.cache is not None and ctx.tree is not None:
        hit = ctx.cache.get(ctx.tree, key)
        if hit is not None:
            return hit.model_copy(update={"cached": True})
    evidence, limit = _execute(ctx, spec, targets)
    if ctx.cache is not None and ctx.tree is not None and limit is None:
        ctx.cache.put(ctx.tree, key, evidence)
    return evidence


@contextmanager
def _scratch(workspace: Path, suffix: str) -> Iterator[str]:
    """A report file name inside the workspace (the only place the sandbox may write),
    relative to it, removed afterwards so it never reaches git or the tree hash."""
    name = f".shipyard-report-{uuid.uuid4().hex}{suffix}"
    try:
        yield name
    finally:
        (workspace / name).unlink(missing_ok=True)


def _argv(spec: CheckSpec, report: str, targets: list[str]) -> list[str]:
    argv = list(spec.argv)
    if spec.kind == "pytest":
        argv += [f"--junitxml={report}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider"]
    elif spec.kind == "ruff" and not any(a.startswith("--output-format") for a in argv):
        argv += ["--output-format=json", f"--output-file={report}"]
    return argv + targets


LOG_BYTES = 8 << 20
"""Output kept per stream of a check (the tail): the log artifact holds all of it up to this."""

KEPT_FAILURES = 8
"""Failures kept in evidence (state, reports); all of them are in the log artifact."""

KEPT_DETAIL = 600
"""Characters of each kept failure's detail: enough for the assertion and its context, small
enough that a failing step's checkpoint stays a few KB (the log artifact has the rest)."""


def _execute(ctx: _Context, spec: CheckSpec, targets: list[str]) -> tuple[Evidence, str | None]:
    """Run one check; returns its evidence and the launcher limit that stopped it, if any."""
    name = f"{spec.name}[targeted]" if targets else spec.name
    limits = Limits(
        timeout_s=spec.timeout,
        cpu_s=max(Limits().cpu_s, math.ceil(spec.timeout)),
        output_bytes=LOG_BYTES,
    )
    with _scratch(ctx.workspace, ".json" if spec.kind == "ruff" else ".xml") as report:
        result = ctx.launcher.run(
            _argv(spec, report, targets),
            workspace=ctx.workspace,
            cwd=ctx.workspace,
            env=_CHECK_ENV,
            limits=limits,
        )
        raw = _read(ctx.workspace / report)
    log_ref = ctx.artifacts.put(
        ctx.run_id, f"checks/{name}-{uuid.uuid4().hex[:8]}.log", _log(result)
    )
    parsed = _interpret(spec, name, result, raw, ctx.workspace, targeted=bool(targets))
    evidence = Evidence(
        check=name,
        command=[redact(a) for a in (*spec.argv, *targets)],
        exit_code=result.exit_code,
        passed=parsed.passed,
        duration_s=round(result.duration_s, 3),
        summary=redact(parsed.summary),
        failures=[
            f.model_copy(
                update={
                    "message": redact(f.message)[:KEPT_DETAIL],
                    "detail": _ends(redact(f.detail), KEPT_DETAIL),
                }
            )
            for f in parsed.failures[:KEPT_FAILURES]
        ],
        failure_count=len(parsed.failures),
        log_ref=log_ref,
        isolation=result.isolation,
    )
    return evidence, result.limit


def _read(path: Path, cap: int = 32 << 20) -> bytes | None:
    """The report a check wrote, or None; a report over ``cap`` bytes is not trusted."""
    try:
        if path.is_symlink() or path.stat().st_size > cap:
            return None
        return path.read_bytes()
    except OSError:
        return None


def _interpret(
    spec: CheckSpec,
    name: str,
    result: CommandResult,
    raw: bytes | None,
    workspace: Path,
    *,
    targeted: bool,
) -> ParsedReport:
    if result.limit is not None:
        why = f"stopped by the {result.limit} limit"
        if result.limit == "timeout":
            why += f" ({spec.timeout:g}s)"
        tail = compact(result.stdout + "\n" + result.stderr)
        return ParsedReport(False, f"{name}: {why}", [Failure(id=name, message=why, detail=tail)])
    # pytest exit 5 is "no tests collected": vacuous for a targeted run, a failure otherwise.
    if targeted and result.exit_code == 5:
        return ParsedReport(True, f"{name}: no tests collected among the targeted files", [])
    return parse_report(spec.kind, name, result, raw, workspace)


def _log(result: CommandResult) -> str:
    """The full (capped, tail-kept) log of one command, redacted before it is stored."""
    head = [
        "$ " + " ".join(result.argv),
        f"exit code: {result.exit_code}  duration: {result.duration_s:.3f}s  "
        f"limit: {result.limit or '-'}  isolation: {result.isolation.level}",
    ]
    if result.truncated:
        head.append("(output truncated by the launcher; the tail is kept)")
    body = [*head, "--- stdout ---", result.stdout, "--- stderr ---", result.stderr]
    return redact("\n".join(body))


def _ends(text: str, limit: int) -> str:
    """Both ends of ``text`` within ``limit`` characters: a slice starts at the assertion and
    ends with the error that stopped it (a collection error's SyntaxError is last)."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return text[:head] + "\n…\n" + text[-(limit - head - 3) :]
