"""Masking credentials in text and data before they are stored or shown to a model.

Two layers, values first:

* **By value** (``shipyard.secret_values``): the value of every secret-named variable of this
  process's environment (``OPENAI_API_KEY``, ``AWS_SECRET_ACCESS_KEY``, ``DATABASE_URL``'s
  password, the names in ``SHIPYARD_SECRET_NAMES`` …) becomes ``[REDACTED:<VAR_NAME>]``
  wherever it appears, whatever surrounds it.
* **By pattern**: known key formats are replaced by ``[REDACTED:<kind>]``; in assignments
  (``API_KEY=…``, ``"password": "…"``, ``postgresql://user:pass@host``) only the value is
  masked and the name is kept, so a reader still knows what was there. Git SHAs, UUIDs,
  ``sha256:`` digests and ordinary words are left alone: every pattern needs a vendor prefix
  or an assignment.

::

    redact("OPENAI_API_KEY=sk-proj-abc…")  ->  "OPENAI_API_KEY=[REDACTED:openai-key]"
    redact("expected wJalrXUt…")           ->  "expected [REDACTED:AWS_SECRET_ACCESS_KEY]"
    redact_obj({"password": "hunter22"})   ->  {"password": "[REDACTED:password]"}
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from shipyard.secret_values import redact_values

_Sub = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _starts_word(m: re.Match[str]) -> bool:
    """The match does not start in the middle of a word (a ``\\b`` at the start of a pattern
    would stop ``re`` from scanning for its literal prefix, making it ~20x slower)."""
    i = m.start()
    return i == 0 or not (m.string[i - 1].isalnum() or m.string[i - 1] == "_")


def _whole(kind: str) -> Callable[[re.Match[str]], str]:
    def sub(m: re.Match[str]) -> str:
        return f"[REDACTED:{kind}]" if _starts_word(m) else m.group(0)

    return sub


def _value(kind: str) -> Callable[[re.Match[str]], str]:
    """Keep everything before the ``value`` group, mask the value."""

    def sub(m: re.Match[str]) -> str:
        if m.group("value").startswith("[REDACTED"):
            return m.group(0)
        start, end = m.span("value")
        whole, off = m.group(0), m.start()
        return whole[: start - off] + f"[REDACTED:{kind}]" + whole[end - off :]

    return sub


_NAME_WORDS = r"(?:KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|PWD|CREDENTIALS?|AUTH)"
_CODE_WORDS = (
    r"(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key"
    r"|private[_-]?key|client[_-]?secret|auth[_-]?token|credentials?)"
)

_VENDOR: tuple[_Sub, ...] = (
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"
            r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----|\Z)"
        ),
        _whole("private-key"),
    ),
    (
        re.compile(r"://(?P<user>[^:/\s@]+):(?P<value>[^@\s/]+)@"),
        _value("password"),
    ),
    (
        re.compile(r"A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)[0-9A-Z]{16}(?![0-9A-Za-z])"),
        _whole("aws-access-key"),
    ),
    (re.compile(r"gh[pousr]_[A-Za-z0-9]{30,255}(?!\w)"), _whole("github-token")),
    (re.compile(r"github_pat_[A-Za-z0-9_]{22,255}"), _whole("github-token")),
    (re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}"), _whole("anthropic-key")),
    (re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"), _whole("openai-key")),
    (re.compile(r"xox[abprse]-[A-Za-z0-9\-]{10,}"), _whole("slack-token")),
    (re.compile(r"AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])"), _whole("google-api-key")),
    (
        re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
        _whole("jwt"),
    ),
)

# Assignments: only the value is replaced, so the patterns start at the key word (the
# name's prefix does not matter) — which also keeps them fast.
_ENV_STYLE = re.compile(
    # Shell / env / YAML style with an upper-case name: API_KEY=…, DB_PASSWORD: …
    rf"{_NAME_WORDS}[A-Z0-9_]*[ \t]*[=:][ \t]*[\"']?(?P<value>(?![$<{{\[])[^\s\"',;]+)"
)
_CODE_STYLE = re.compile(
    # Run on the lower-cased text (much faster than re.IGNORECASE): "password": "…",
    # api_key = '…', --password=…, token: …  Unquoted values stop at code-like characters
    # so ``token = get_token()`` is left alone.
    rf"{_CODE_WORDS}[\w.\-]*[\"']?[ \t]*[:=][ \t]*"
    r"(?:([\"'])(?P<quoted>(?![$<{\[])[^\"'\s]{6,})\1"
    r"|(?P<bare>(?![\"'$<{(\[])[^\s\"',;&().\[\]]{6,})(?=[\s,;&]|$))",
    re.MULTILINE,
)
_CODE_STYLE_ANYCASE = re.compile(_CODE_STYLE.pattern, re.MULTILINE | re.IGNORECASE)


def _code_style(text: str) -> str:
    low = text.lower()
    # Lower-casing keeps offsets unless the text has one of the rare characters whose
    # lower case is longer; then fall back to the slower case-insensitive scan.
    pattern, scanned = (
        (_CODE_STYLE, low)
        if len(low) == len(text)
        else (
            _CODE_STYLE_ANYCASE,
            text,
        )
    )
    pieces: list[str] = []
    last = 0
    for m in pattern.finditer(scanned):
        group = "quoted" if m.group("quoted") is not None else "bare"
        start, end = m.span(group)
        if scanned.startswith("[redacted", start) or scanned.startswith("[REDACTED", start):
            continue
        pieces += [text[last:start], "[REDACTED:secret]"]
        last = end
    return "".join(pieces) + text[last:] if pieces else text


_SECRET_FIELD = re.compile(rf"(?i)(?:^|[_\-.]){_CODE_WORDS}$|^(?:pass|pwd)$")


def redact(text: str) -> str:
    """``text`` with every secret value of the environment replaced by
    ``[REDACTED:<VAR_NAME>]`` and every credential-looking value by ``[REDACTED:<kind>]``."""
    text = redact_values(text)
    for pattern, sub in _VENDOR:
        text = pattern.sub(sub, text)
    if "=" in text or ":" in text:
        text = _ENV_STYLE.sub(_value("secret"), text)
        text = _code_style(text)
    return text


def redact_obj(obj: Any) -> Any:
    """A copy of ``obj`` with every string redacted, recursively through dicts, lists and
    tuples. Pydantic models are dumped (``mode="json"``) and the redacted dump returned.
    A string value under a credential-named key (``password``, ``api_key``, ``token`` …)
    is masked whole, whatever it looks like. Other values are returned unchanged."""
    if isinstance(obj, str):
        return redact(obj)
    if _is_model(obj):
        return redact_obj(obj.model_dump(mode="json"))
    if isinstance(obj, dict):
        return {k: _redact_item(k, v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)
    return obj


def _is_model(obj: Any) -> bool:
    """Whether ``obj`` is a pydantic model — without importing pydantic (the CLI's listings
    never load it): while it is not imported, nothing can be one."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(obj, pydantic.BaseModel)


def _redact_item(key: Any, value: Any) -> Any:
    if isinstance(key, str) and isinstance(value, str) and value and _SECRET_FIELD.search(key):
        return value if value.startswith("[REDACTED") else f"[REDACTED:{key.lower()}]"
    return redact_obj(value)
