"""The policy's syntax: reading ``.shipyard.toml`` with errors that name a line, and the
small pattern languages of its rules (command rules, shell metacharacters, shell rules,
path globs). The syntax itself is documented in ``policy``'s module docstring.

Kept apart from ``policy/config.py`` so the decisions read without the parsing detail.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shipyard.errors import PolicyError
from shipyard.policy.exec_forms import unwrap

_METACHARS = ";&|<>`()\n\r"
_SHELL_STAR = r"[^;&|<>`()$\n\r]*"


def shell_metachar(text: str) -> str | None:
    """The first shell metacharacter outside quotes in ``text`` (described), else None.

    Quoting follows POSIX sh: nothing is special inside single quotes, a backslash escapes
    the next character outside them. Without a shell, quoted text is a literal argument.
    """
    for start, size in _unquoted_metachars(text):
        return "a newline" if text[start] in "\n\r" else repr(text[start : start + size])
    return None


def shell_segments(text: str) -> list[str]:
    """The simple commands of a shell command line: the non-blank text between unquoted
    metacharacters (a ``$(...)`` or backtick substitution is a segment of its own)."""
    parts, last = [], 0
    for start, size in _unquoted_metachars(text):
        parts.append(text[last:start])
        last = start + size
    parts.append(text[last:])
    return [part for part in parts if part.strip()]


def _unquoted_metachars(text: str) -> Iterator[tuple[int, int]]:
    """``(index, length)`` of every shell metacharacter (or ``$(``) outside quotes."""
    quote = ""
    i = 0
    while i < len(text):
        char = text[i]
        if quote == "'":
            quote = "" if char == "'" else quote
        elif quote == '"':
            if char == "\\":
                i += 1
            elif char == '"':
                quote = ""
        elif char == "\\":
            i += 1
        elif char in "'\"":
            quote = char
        elif char in _METACHARS:
            yield i, 1
        elif text.startswith("$(", i):
            yield i, 2
            i += 1
        i += 1


def valid_rule(rule: str) -> str:
    try:
        tokens = shlex.split(rule)
    except ValueError as err:
        raise ValueError(f"cannot parse rule {rule!r}: {err}") from None
    if not tokens:
        raise ValueError("a rule must name a program")
    return rule


def valid_shell_rule(rule: str) -> str:
    if not rule.strip():
        raise ValueError("a shell rule must not be empty")
    return rule


def rule_tokens(rule: str) -> list[str]:
    """The tokens of a command rule or remembered pattern; ``PolicyError`` when unparsable."""
    return list(_rule_tokens(rule))


@lru_cache(maxsize=1024)
def _rule_tokens(rule: str) -> tuple[str, ...]:
    try:
        tokens = shlex.split(rule)
    except ValueError as err:
        raise PolicyError(f"cannot parse command pattern {rule!r}: {err}") from None
    if not tokens:
        raise PolicyError("an empty command pattern matches nothing")
    return tuple(tokens)


def rule_matches(tokens: Sequence[str], argv: Sequence[str], *, loose_program: bool) -> bool:
    """Whether ``argv`` matches a rule's tokens (see the module docstring for the syntax)."""
    program, *patterns = tokens
    names = (argv[0], posixpath.basename(argv[0])) if loose_program else (argv[0],)
    if not any(fnmatchcase(name, program) for name in names):
        return False
    args = list(argv[1:])
    if patterns and patterns[-1] == "*":
        patterns = patterns[:-1]
        if len(args) < len(patterns):
            return False
        args = args[: len(patterns)]
    elif len(args) != len(patterns):
        return False
    return all(fnmatchcase(a, p) for a, p in zip(args, patterns, strict=True))


def normalize_path(path: str) -> str | None:
    """Workspace-relative POSIX form of ``path``, or None when it is absolute or leaves it."""
    if not path or path.startswith("/") or "\0" in path:
        return None
    rel = posixpath.normpath(path)
    if rel == ".." or rel.startswith("../"):
        return None
    return rel


def remember_pattern(argv: Sequence[str]) -> str:
    """Generalise an approved command to a pattern for the rest of the run.

    Keeps the program and its subcommand (``git commit -m x`` -> ``git commit *``,
    ``python -m build .`` -> ``python -m build *``, ``ls src`` -> ``ls *``). For a wrapper
    it keeps the wrapper's own arguments and generalises the command it runs
    (``timeout 60 make -j4`` -> ``timeout 60 make *``), so the approval never covers
    another program behind the same wrapper.
    """
    if not argv:
        raise ValueError("cannot remember an empty command")
    start = unwrap(argv)
    if start is not None and start < len(argv):
        wrapper = " ".join(shlex.quote(_escaped(token)) for token in argv[:start])
        return f"{wrapper} {remember_pattern(argv[start:])}"
    keep = [argv[0]]
    rest = list(argv[1:])
    if len(rest) >= 2 and rest[0] == "-m":
        keep += rest[:2]
    elif rest and _is_subcommand(rest[0]):
        keep.append(rest[0])
    return " ".join([*(shlex.quote(_escaped(token)) for token in keep), "*"])


def _escaped(token: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in token)


def _is_subcommand(token: str) -> bool:
    return token.replace("-", "").replace("_", "").isalnum() and not token.startswith("-")


@lru_cache(maxsize=256)
def shell_rule_regex(rule: str) -> re.Pattern[str]:
    """Regex for a ``[commands].shell`` rule on a whole command line.

    ``*`` matches any run of characters except shell metacharacters and ``$``, so a
    wildcard can never smuggle in another command; ``?`` matches one such character.
    Runs of whitespace in the rule match runs of whitespace.
    """
    parts: list[str] = []
    for char in rule.strip():
        if char == "*":
            parts.append(_SHELL_STAR)
        elif char == "?":
            parts.append(_SHELL_STAR[:-1])
        elif char.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(char))
    return re.compile(re.sub(r"(\\s\+)+", r"\\s+", "".join(parts)))


@lru_cache(maxsize=256)
def glob_regex(glob: str) -> re.Pattern[str]:
    """Regex for a path glob (see ``policy`` module docstring), matched case-insensitively
    so that a protected path stays protected on case-insensitive file systems."""
    body = glob.strip().strip("/")
    anchored = "/" in body
    parts: list[str] = []
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif body.startswith("/**", i) and i + 3 == len(body):
            parts.append("(?:/.*)?")
            i += 3
        elif body.startswith("**", i):
            parts.append(".*")
            i += 2
        else:
            parts.append({"*": "[^/]*", "?": "[^/]"}.get(body[i], re.escape(body[i])))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(prefix + "".join(parts), re.IGNORECASE | re.DOTALL)


def read_toml(path: Path) -> tuple[str | None, dict[str, Any]]:
    """``(text, data)`` of a policy file, or ``(None, {})`` when there is none.

    Raises ``PolicyError`` (with the line, for TOML syntax errors) when it cannot be read.
    """
    if not path.exists():
        return None, {}
    if not path.is_file():
        raise PolicyError("is not a regular file", path=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise PolicyError(f"is not UTF-8 text ({err.reason})", path=str(path)) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        found = re.search(r"line (\d+)", str(err))
        line = int(found.group(1)) if found else None
        message = f"TOML syntax error: {err}"
        raise PolicyError(message, path=str(path), line=line) from None


def policy_error_from_validation(
    err: ValidationError, path: Path, text: str | None, overrides: Mapping[str, Any]
) -> PolicyError:
    """A ``PolicyError`` for every validation problem, the first one locating the error."""
    lines = key_lines(text or "")
    located: list[tuple[str, int | None, str, str]] = []
    for problem in err.errors():
        loc = tuple(str(part) for part in problem["loc"])
        field = _field_name(problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if _in_overrides(problem["loc"], overrides):
            located.append(("per-run override", None, field, message))
        else:
            located.append((str(path), _best_line(loc, lines), field, message))
    source, line, field, message = located[0]
    extra = [f"{f} (line {ln}): {m}" if ln else f"{f}: {m}" for _, ln, f, m in located[1:]]
    full = f"{field}: {message}" + ("".join(f"; also {e}" for e in extra))
    return PolicyError(full, path=source, line=line, field=field)


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name or "(top level)"


def _in_overrides(loc: tuple[int | str, ...], overrides: Mapping[str, Any]) -> bool:
    node: Any = overrides
    for part in loc:
        if isinstance(node, Mapping) and isinstance(part, str) and part in node:
            node = node[part]
            if not isinstance(node, Mapping):
                return True
        else:
            return False
    return bool(loc)


def _best_line(loc: tuple[str, ...], lines: Mapping[tuple[str, ...], int]) -> int | None:
    for size in range(len(loc), 0, -1):
        if loc[:size] in lines:
            return lines[loc[:size]]
    return None


_HEADER = re.compile(r"^\s*(\[\[?)([^\[\]]+)\]\]?\s*(?:#.*)?$")
_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")
_KEY_PART = re.compile(_PART)


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The first line (1-based) of every table header and key path in TOML ``text``.

    Arrays of tables get their index as a path part (``("checks", "run", "0")``), the way
    pydantic reports locations. A line scanner, not a parser: keys inside multi-line
    strings may be mistaken for keys, which at worst points at a nearby line.
    """
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    counts: dict[tuple[str, ...], int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            names = tuple(p.strip("\"'") for p in _KEY_PART.findall(header.group(2)))
            if header.group(1) == "[[":
                counts[names] = counts.get(names, -1) + 1
                names = (*names, str(counts[names]))
            table = names
            found.setdefault(table, number)
        elif key := _KEY.match(line):
            parts = tuple(p.strip("\"'") for p in _KEY_PART.findall(key.group(1)))
            found.setdefault((*table, *parts), number)
    return found
