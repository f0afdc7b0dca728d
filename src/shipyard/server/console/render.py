"""HTML for the console: Jinja2 templates (``console/templates``) with autoescaping on for
everything, and diffs highlighted server-side by Pygments, one collapsible block per file.

Nothing in a page is trusted: goals, file names, commit messages, test output and model
text all reach the page escaped — Jinja escapes every value, Pygments escapes the diff
text it wraps, and the file names of a diff go through Jinja.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer

from shipyard.server.console.session import CSRF_FIELD, csrf_token, with_csrf

TEMPLATES = Path(__file__).parent / "templates"
_FORMATTER = HtmlFormatter(nowrap=True)
_LEXER = DiffLexer()


@dataclass(frozen=True)
class FileDiff:
    """One file's part of a diff, highlighted."""

    path: str
    html: Markup
    added: int
    removed: int


def split_diff(diff: str) -> list[FileDiff]:
    """``diff`` (git's unified format) as one highlighted block per file."""
    parts: list[list[str]] = []
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git ") or not parts:
            parts.append([])
        parts[-1].append(line)
    return [_file_diff("".join(p)) for p in parts if "".join(p).strip()]


def _file_diff(text: str) -> FileDiff:
    first = text.splitlines()[0] if text else ""
    path = first.split(" b/", 1)[1] if first.startswith("diff --git ") and " b/" in first else ""
    lines = text.splitlines()
    added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
    removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
    # Pygments escapes the text it highlights; the result is safe to insert.
    html = Markup(highlight(text, _LEXER, _FORMATTER))  # noqa: S704
    return FileDiff(path or "(diff)", html, added, removed)


def duration(seconds: float | None) -> str:
    """``1h 2m``, ``3m 4s``, ``5.6s``; ``…`` for none."""
    if seconds is None:
        return "…"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def when(moment: datetime | None) -> str:
    """A UTC timestamp to the second."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else ""


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = duration
    env.filters["when"] = when
    env.globals["split_diff"] = split_diff
    env.globals["csrf_field"] = CSRF_FIELD
    return env


ENV = _environment()


def fragment(name: str, **context: Any) -> str:
    """A template rendered to text (a fragment for live updates, or a whole page)."""
    return ENV.get_template(name).render(**context)


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page: ``name`` rendered with the request's CSRF token and viewer."""
    context.setdefault("viewer", None)
    context.setdefault("notice", "")
    html = fragment(name, csrf=csrf_token(request), **context)
    response = HTMLResponse(html, status_code=status_code, headers=_HEADERS)
    return with_csrf(request, response)  # type: ignore[return-value]


_HEADERS = {
    # Only this server: no inline script, no other origin (the pages need neither).
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


__all__ = ["ENV", "FileDiff", "duration", "fragment", "page", "split_diff", "when"]
