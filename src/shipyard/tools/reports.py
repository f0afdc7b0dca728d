"""Parsing check output into individual failures: JUnit XML, ruff JSON, mypy lines, exit codes.

Every parser returns a :class:`ParsedReport`. Pass/fail is the exit code, and a report
that lists failures or errors fails even with exit code 0; the parsed report adds the
individual failures and the summary. Reports are written by code running in the sandbox, so
they are untrusted input: a report that is there but does not parse (XML with a DTD is
refused, so no entity expansion; numbers that are not numbers) fails the check with
``report missing or invalid: <why>``, and every ``detail`` is capped. A failing check always
has at least one failure, holding a compact tail of its output.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.contracts import Failure
from shipyard.sandbox.launcher import CommandResult

INVALID = "report missing or invalid"
"""How every bad-report message starts (the reader's and the parsers' alike)."""

DETAIL_BYTES = 1500
"""Upper bound of ``Failure.detail``: a slice to act on, never the whole log."""

# Where a traceback points: pytest's ``path.py:12: Error`` and Python's ``File "p", line 12``.
_LOCATION = re.compile(
    r'^(?P<path>[^\s:][^:\n]*\.py):(?P<line>\d+): |File "(?P<fpath>[^"\n]+)", line (?P<fline>\d+)',
    re.M,
)
_MYPY_FOUND = re.compile(r"^Found (?P<count>\d+) errors? in \d+ files?", re.M)
_MYPY_LINE = re.compile(
    r"^(?P<path>[^:\n]+):(?P<line>\d+):(?:\d+:)? (?P<sev>error|note): (?P<msg>.*?)"
    r"(?:  \[(?P<code>[\w-]+)\])?$"
)


@dataclass
class ParsedReport:
    """What a check's output says: passed, a one-line summary, the individual failures."""

    passed: bool
    summary: str
    failures: list[Failure] = field(default_factory=list)
    complete: bool = False
    """The failures are every failure the check found, each a real one (a failing test, a
    lint or type error), never a stand-in for output that did not parse."""


def compact(text: str, limit: int = DETAIL_BYTES) -> str:
    """A slice of ``text`` worth reading: around the last ``>`` line (pytest's marker of
    the failing source line) if any, else the last lines; at most ``limit`` characters."""
    lines = text.strip("\n").splitlines()
    marks = [i for i, line in enumerate(lines) if line.startswith(">")]
    lines = lines[max(0, marks[-1] - 3) : marks[-1] + 12] if marks else lines[-15:]
    out = "\n".join(lines)
    if len(out) > limit:
        out = out[: limit - 16] + "\n… (truncated)"
    return out


def parse_report(
    kind: str, name: str, result: CommandResult, raw: bytes | None, workspace: Path
) -> ParsedReport:
    """Dispatch on the check's kind; see the module docstring for the contract."""
    if kind == "pytest":
        parsed = _junit(name, result, raw, workspace)
    elif kind == "ruff":
        parsed = _ruff(name, result, raw, workspace)
    elif kind == "mypy":
        parsed = _mypy(name, result, workspace)
    else:
        parsed = ParsedReport(result.exit_code == 0, f"{name}: exit code {result.exit_code}")
    if not parsed.passed and not parsed.failures:
        tail = compact(result.stdout + "\n" + result.stderr)
        parsed.failures.append(Failure(id=name, message=parsed.summary, detail=tail))
    return parsed


def _relative(path: str, workspace: Path) -> str:
    """``path`` relative to the workspace when it is inside it, else unchanged."""
    p = Path(path)
    if p.is_absolute():
        for root in (workspace, workspace.resolve()):
            if p.is_relative_to(root):
                return p.relative_to(root).as_posix()
    return path


# -- pytest -------------------------------------------------------------------------------


def _junit(name: str, result: CommandResult, raw: bytes | None, workspace: Path) -> ParsedReport:
    passed = result.exit_code == 0
    if result.exit_code == 5:
        return ParsedReport(False, f"{name}: no tests were collected (exit 5)")
    if raw is None:
        return ParsedReport(passed, f"{name}: exit code {result.exit_code}, no JUnit report")
    root = _xml(raw)
    if root is None:
        why = f"{INVALID}: not well-formed JUnit XML, or it declares a DTD"
        return ParsedReport(False, f"{name}: {why} (exit {result.exit_code})")
    counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in root.iter("testsuite"):
        for key in counts:
            counts[key] += _count(suite.get(key))
    failures = [
        _junit_failure(case, child, workspace)
        for case in root.iter("testcase")
        for child in case
        if child.tag in {"failure", "error"}
    ]
    ok = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    passed = passed and not failures and not (counts["failures"] or counts["errors"])
    summary = (
        f"{name}: {ok} passed, {counts['failures']} failed, {counts['errors']} errors, "
        f"{counts['skipped']} skipped (exit {result.exit_code})"
    )
    # Exit 1: tests failed; 2: interrupted by collection errors (listed as errors).
    complete = bool(failures) and result.exit_code in (1, 2)
    return ParsedReport(passed, summary, failures, complete)


def _count(value: str | None) -> int:
    """A JUnit count attribute; what is not a small non-negative number counts as 0."""
    text = (value or "0").strip()
    return int(text) if text.isdigit() and len(text) < 10 else 0


def _xml(raw: bytes | None) -> ET.Element | None:
    if not raw or b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        return None
    try:
        return ET.fromstring(raw)  # noqa: S314 - DTDs refused above, so no entity expansion
    except ET.ParseError:
        return None


def _location(text: str, workspace: Path) -> tuple[str, int] | None:
    """The deepest traceback frame inside the workspace: where it actually failed (frames
    in the standard library or site-packages say little about the change)."""
    found = None
    for match in _LOCATION.finditer(text):
        path = _relative(match["path"] or match["fpath"], workspace)
        if not path.startswith(("/", "<")):
            found = (path, int(match["line"] or match["fline"]))
    return found


def _node_id(case: ET.Element) -> str:
    """pytest's node id from an xunit1 ``testcase``: ``file::Class::name``."""
    file, cls, test = case.get("file"), case.get("classname", ""), case.get("name", "")
    if not file:
        return f"{cls}::{test}" if cls else test
    module = file.removesuffix(".py").replace("/", ".")
    if not cls and test == module:  # a collection error names the module itself
        return file
    inner = cls[len(module) :].lstrip(".") if cls.startswith(module) else ""
    return "::".join([file, *(inner.split(".") if inner else []), test])


def _junit_failure(case: ET.Element, child: ET.Element, workspace: Path) -> Failure:
    text = child.text or ""
    message = (child.get("message") or text.strip().split("\n", 1)[0]).strip()
    line_attr = case.get("line", "")
    path, line = _location(text, workspace) or (
        case.get("file"),
        _count(line_attr) + 1 if line_attr.strip().isdigit() else None,
    )
    return Failure(
        id=_node_id(case),
        message=message[:500],
        path=path,
        line=line,
        detail=compact(text),
    )


# -- ruff and mypy ------------------------------------------------------------------------


def _ruff(name: str, result: CommandResult, raw: bytes | None, workspace: Path) -> ParsedReport:
    passed = result.exit_code == 0
    try:
        items: Any = json.loads(raw or result.stdout)
    except (ValueError, RecursionError):
        items = None
    if not isinstance(items, list) and raw is not None:
        why = f"{INVALID}: not a JSON list of violations"
        return ParsedReport(False, f"{name}: {why} (exit {result.exit_code})")
    if not isinstance(items, list):
        return ParsedReport(passed, f"{name}: exit code {result.exit_code}, no JSON report")
    failures = [_ruff_failure(item, workspace) for item in items if isinstance(item, dict)]
    count = len(failures)
    complete = result.exit_code == 1 and count > 0 and raw is not None
    summary = f"{name}: {count} violation{'s' * (count != 1)}"
    return ParsedReport(passed, summary, failures, complete)


def _ruff_failure(item: dict[str, Any], workspace: Path) -> Failure:
    code = str(item.get("code") or "syntax-error")
    path = _relative(str(item.get("filename", "")), workspace)
    loc = item.get("location")
    loc = loc if isinstance(loc, dict) else {}
    row, col = loc.get("row"), loc.get("column")
    message = str(item.get("message", ""))
    detail = f"{path}:{row}:{col}: {code} {message}"
    source = _source_line(workspace, path, row)
    if source is not None:
        detail += f"\n{row:>5} | {source}"
    return Failure(
        id=code,
        message=message,
        path=path,
        line=row if isinstance(row, int) else None,
        detail=detail[:DETAIL_BYTES],
    )


def _source_line(workspace: Path, path: str, row: Any) -> str | None:
    target = (workspace / path).resolve()
    if not isinstance(row, int) or row < 1 or not target.is_relative_to(workspace.resolve()):
        return None
    try:
        with target.open(encoding="utf-8", errors="replace") as fh:
            for number, text in enumerate(fh, start=1):
                if number == row:
                    return text.rstrip("\n")[:300]
    except OSError:
        return None
    return None


def _mypy(name: str, result: CommandResult, workspace: Path) -> ParsedReport:
    failures: list[Failure] = []
    for text in result.stdout.splitlines():
        match = _MYPY_LINE.match(text)
        if match is None:
            continue
        if match["sev"] == "note":  # a note explains the error above it
            if failures:
                last = failures[-1]
                detail = (last.detail + "\n" + text)[:DETAIL_BYTES]
                failures[-1] = last.model_copy(update={"detail": detail})
            continue
        path = _relative(match["path"], workspace)
        failures.append(
            Failure(
                id=match["code"] or "mypy",
                message=match["msg"],
                path=path,
                line=int(match["line"]),
                detail=text[:DETAIL_BYTES],
            )
        )
    count = len(failures)
    passed = result.exit_code == 0
    found = _MYPY_FOUND.search(result.stdout)
    complete = (
        result.exit_code == 1 and count > 0 and (found is None or int(found["count"]) == count)
    )
    return ParsedReport(passed, f"{name}: {count} error{'s' * (count != 1)}", failures, complete)


# -- identities ---------------------------------------------------------------------------

_LINE_REF = re.compile(r"\bline \d+")


def failure_identity(kind: str, failure: Failure) -> str:
    """What makes ``failure`` the same failure on another tree: a test's node id; a lint or
    type error's file, code and message, without line numbers (a message's ``line 12``
    included), so an edit that only moves it keeps its identity."""
    if kind == "pytest":
        return failure.id
    message = _LINE_REF.sub("line N", failure.message)
    return f"{failure.path or ''}::{failure.id}::{message}"
