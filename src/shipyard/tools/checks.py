"""Checks that produce evidence: detect, run through the launcher, parse, cache.

The validator believes reports, not the model: pass/fail comes from exit codes and from
parsed reports (pytest's JUnit XML, ruff's JSON, mypy's error lines), each failure becomes a
:class:`~shipyard.contracts.Failure` with a compact slice of output, and the full, redacted
log goes to the artifact store. :func:`verdict_from` turns evidence into the step's verdict.

Results are cached per owner by (tree hash of the workspace's files, command key), where the
command key covers the check, its toolchain, the sandbox's environment, the policy and the
isolation (``tools/check_cache.py``): the cache is a speed-up, never a verdict. A hit says so
(``cached``, ``cached_from`` and the summary name the run that produced it) and its log is
copied into the using run's artifacts; a hit whose log is gone is run again. A run cut short
by a launcher limit is evidence of failure but is not cached, since a retry on a quieter
machine may finish.

Reports are untrusted input from the checked code: they are read only as regular files inside
the workspace, never blocking, with a size cap (``tools/report_file.py``); a check whose
report is missing or invalid fails with ``report missing or invalid: <why>``.

Under tracing each check is a ``check <name>`` span under the running node
(``tools/check_span.py``); a failing check's span has status ERROR.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shipyard.contracts import Evidence, Failure, Finding, Verdict
from shipyard.errors import CommandRefusedError
from shipyard.redact import redact
from shipyard.sandbox.launcher import CommandResult, Launcher, Limits
from shipyard.tools.check_cache import (
    CHECK_ENV,
    Artifacts,
    CheckCache,
    MemoryCheckCache,
    command_key,
    key_context,
    reuse,
)
from shipyard.tools.check_span import record
from shipyard.tools.checkspec import CheckSpec, detect_checks
from shipyard.tools.git import snapshot_tree
from shipyard.tools.report_file import ReportProblem, read_report
from shipyard.tools.reports import ParsedReport, compact, failure_identity, parse_report
from shipyard.tracing import child_span

__all__ = [
    "Artifacts",
    "CheckCache",
    "CheckSpec",
    "MemoryCheckCache",
    "command_key",
    "detect_checks",
    "run_check",
    "run_checks",
    "targeted_tests",
    "verdict_from",
]


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
    owner: str
    policy_hash: str
    limits: Limits


def run_checks(
    specs: Sequence[CheckSpec],
    *,
    workspace: Path,
    launcher: Launcher,
    artifacts: Artifacts,
    run_id: str,
    cache: CheckCache | None = None,
    changed_files: Sequence[str] = (),
    owner: str = "local",
    policy_hash: str = "",
    tree: str | None = None,
    limits: Limits | None = None,
) -> list[Evidence]:
    """Run ``specs`` in ``workspace`` through ``launcher`` and return one ``Evidence`` each.

    With ``changed_files``, a pytest check first runs the tests touching them
    (``<name>[targeted]``); if those fail the full suite is skipped for fast feedback,
    otherwise it runs too. Other checks always run. With a ``cache``, ``owner``'s entries
    for ``tree`` (default: the workspace's tree hash now) and each check's command key
    (which covers ``policy_hash``) are looked up first; a hit comes back with
    ``cached=True`` and ``cached_from`` without running anything. A launcher that cannot
    start a command raises ``SandboxError``. ``limits`` (default ``Limits()``) bound every
    check, except that its own ``timeout`` is its wall-clock limit.
    """
    if cache is not None and tree is None:
        tree = snapshot_tree(workspace)
    ctx = _Context(
        workspace,
        launcher,
        artifacts,
        run_id,
        cache,
        tree,
        owner,
        policy_hash or "unknown",
        limits or Limits(),
    )
    evidence: list[Evidence] = []
    for spec in specs:
        targets = targeted_tests(workspace, changed_files) if spec.kind == "pytest" else []
        if targets:
            first = _traced_run(ctx, spec, targets)
            evidence.append(first)
            if not first.passed:
                continue
        evidence.append(_traced_run(ctx, spec, []))
    return evidence


def run_check(
    spec: CheckSpec,
    targets: Sequence[str],
    *,
    workspace: Path,
    launcher: Launcher,
    artifacts: Artifacts,
    run_id: str,
    tree: str,
    cache: CheckCache | None = None,
    owner: str = "local",
    policy_hash: str = "",
    limits: Limits | None = None,
) -> Evidence:
    """One check on exactly ``targets`` (none: the whole check) in ``workspace``, whose
    files are ``tree`` (the cache key's half), cached like :func:`run_checks`' checks."""
    ctx = _Context(
        workspace, launcher, artifacts, run_id, cache, tree, owner,
        policy_hash or "unknown", limits or Limits(),
    )  # fmt: skip
    return _traced_run(ctx, spec, list(targets))


def _traced_run(ctx: _Context, spec: CheckSpec, targets: list[str]) -> Evidence:
    """``_cached_run`` inside a ``check <name>`` span under the current node (when tracing
    is on), described by ``check_span.record``."""
    name = f"{spec.name}[targeted]" if targets else spec.name
    with child_span(f"check {name}", {"shipyard.check.name": name}) as span:
        evidence = _cached_run(ctx, spec, targets)
        if span is not None:
            record(span, evidence)
    return evidence


def _cached_run(ctx: _Context, spec: CheckSpec, targets: list[str]) -> Evidence:
    if ctx.cache is None or ctx.tree is None:
        return _execute(ctx, spec, targets)[0]
    isolation = ctx.launcher.report().model_dump(mode="json")
    setting = key_context(spec, ctx.workspace, policy_hash=ctx.policy_hash, isolation=isolation)
    setting["limits"] = dataclasses.asdict(ctx.limits)
    key = command_key(spec, targets, setting)
    hit = ctx.cache.get(ctx.owner, ctx.tree, key)
    reused = reuse(hit, ctx.artifacts, ctx.run_id) if hit is not None else None
    if reused is not None:
        return reused
    evidence, limit = _execute(ctx, spec, targets)
    if limit is None:
        ctx.cache.put(
            ctx.owner, ctx.tree, key, evidence.model_copy(update={"cached_from": ctx.run_id})
        )
    return evidence


@contextmanager
def _scratch(workspace: Path, suffix: str) -> Iterator[str]:
    """A report file name inside the workspace (the only place the sandbox may write),
    relative to it, removed afterwards (whatever the check made of it: a file, a symlink,
    a FIFO, a directory) so it never reaches git or the tree hash."""
    name = f".shipyard-report-{uuid.uuid4().hex}{suffix}"
    try:
        yield name
    finally:
        path = workspace / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _argv(spec: CheckSpec, report: str, targets: list[str]) -> list[str]:
    argv = list(spec.argv)
    if spec.kind == "pytest":
        argv += [f"--junitxml={report}", "-o", "junit_family=xunit1", "-p", "no:cacheprovider"]
    elif spec.kind == "ruff" and not any(a.startswith("--output-format") for a in argv):
        argv += ["--output-format=json", f"--output-file={report}"]
    return argv + targets


KEPT_IDENTITIES = 20_000
"""Failures whose identities evidence keeps for the comparison with the base commit's run;
a check with more gets no comparison (it fails as it is)."""

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
    limits = dataclasses.replace(
        ctx.limits,
        timeout_s=spec.timeout,
        cpu_s=max(ctx.limits.cpu_s, math.ceil(spec.timeout)),
        output_bytes=LOG_BYTES,
    )
    with _scratch(ctx.workspace, ".json" if spec.kind == "ruff" else ".xml") as report:
        argv = _argv(spec, report, targets)
        try:
            result = ctx.launcher.run(
                argv,
                workspace=ctx.workspace,
                cwd=ctx.workspace,
                env=CHECK_ENV,
                limits=limits,
            )
        except CommandRefusedError as err:  # e.g. a configured check's program is missing
            return _not_started(ctx, spec, name, targets, str(err)), None
        raw = _read(ctx.workspace, report) if any(report in a for a in argv) else None
    log_ref = ctx.artifacts.put(
        ctx.run_id, f"checks/{name}-{uuid.uuid4().hex[:8]}.log", _log(result)
    )
    parsed = _interpret(spec, name, result, raw, ctx.workspace, targeted=bool(targets))
    failures = [
        f.model_copy(
            update={
                "message": redact(f.message)[:KEPT_DETAIL],
                "detail": _ends(redact(f.detail), KEPT_DETAIL),
            }
        )
        for f in parsed.failures
    ]
    complete = parsed.complete and len(failures) <= KEPT_IDENTITIES
    evidence = Evidence(
        check=name,
        command=[redact(a) for a in (*spec.argv, *targets)],
        exit_code=result.exit_code,
        passed=parsed.passed,
        duration_s=round(result.duration_s, 3),
        summary=redact(parsed.summary),
        failures=failures[:KEPT_FAILURES],
        failure_count=len(parsed.failures),
        identities=[failure_identity(spec.kind, f) for f in failures] if complete else None,
        log_ref=log_ref,
        isolation=result.isolation,
    )
    return evidence, result.limit


def _not_started(
    ctx: _Context, spec: CheckSpec, name: str, targets: list[str], why: str
) -> Evidence:
    """Failing evidence for a check the launcher could not start (the sandbox works, the
    command as configured cannot run): the run goes on to refine or escalate, saying why."""
    command = [redact(a) for a in (*spec.argv, *targets)]
    summary = redact(f"{name}: could not start: {why}")
    log_ref = ctx.artifacts.put(ctx.run_id, f"checks/{name}-{uuid.uuid4().hex[:8]}.log", summary)
    return Evidence(
        check=name, command=command, exit_code=None, passed=False, duration_s=0.0,
        summary=summary, log_ref=log_ref,
    )  # fmt: skip


def _read(workspace: Path, report: str) -> bytes | ReportProblem:
    """The report the check was asked to write, or why there is none to trust."""
    return read_report(workspace, report)


def _interpret(
    spec: CheckSpec,
    name: str,
    result: CommandResult,
    raw: bytes | ReportProblem | None,
    workspace: Path,
    *,
    targeted: bool,
) -> ParsedReport:
    """The check's outcome: a limit hit, a vacuous targeted run, a bad report, or the
    parsed report. Never raises on what the check wrote."""
    tail = compact(result.stdout + "\n" + result.stderr)
    if result.limit is not None:
        why = f"stopped by the {result.limit} limit"
        if result.limit == "timeout":
            why = f"timed out after {spec.timeout:g} s"
        return ParsedReport(False, f"{name}: {why}", [Failure(id=name, message=why, detail=tail)])
    # pytest exit 5 is "no tests collected": vacuous for a targeted run, a failure otherwise.
    if targeted and result.exit_code == 5:
        return ParsedReport(True, f"{name}: no tests collected among the targeted files", [])
    if isinstance(raw, ReportProblem) and not (spec.kind == "pytest" and result.exit_code == 5):
        return _bad_report(name, raw.message, result, tail)
    try:
        report = raw if isinstance(raw, bytes) else None
        return parse_report(spec.kind, name, result, report, workspace)
    except (ValueError, TypeError, RecursionError) as err:
        return _bad_report(name, f"report missing or invalid: {type(err).__name__}", result, tail)


def _bad_report(name: str, message: str, result: CommandResult, tail: str) -> ParsedReport:
    summary = f"{name}: {message} (exit {result.exit_code})"
    return ParsedReport(False, summary, [Failure(id=name, message=message, detail=tail)])


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
