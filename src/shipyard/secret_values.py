"""The secret values of this process's environment, and masking them wherever they appear.

A variable is secret by its name: ``*_KEY``/``*_KEYS``, ``*SECRET*``, ``*_TOKEN``/``*_TOKENS``,
``*PASSWORD*``/``*PASSWD*``, the well-known credential names below (``AWS_ACCESS_KEY_ID``,
``PGPASSWORD`` …) and every name listed, comma-separated, in ``SHIPYARD_SECRET_NAMES``. Of any
variable holding a URL with a password (``DATABASE_URL=postgresql://u:pw@h/db``, a proxy URL)
the password is secret. Each occurrence of a secret value in a text becomes
``[REDACTED:<VAR_NAME>]``, as do its common encodings: URL-quoted (``%2F``, ``+`` for
spaces), JSON-escaped, and base64 (the whole 3-byte groups of its start, so it matches where
the encoding of the value starts aligned, as ``base64 <<< "$SECRET"`` gives).

Values shorter than ``MIN_LENGTH`` (8) characters are ignored: they are too short to be real
credentials, and masking ``1`` or ``true`` everywhere would destroy ordinary text.

The environment is read on first use, never at import, and kept; ``load_secrets()`` reads it
again (a process entry point calls it once it has its environment; a run's start does).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

MIN_LENGTH = 8
"""Shorter values are not treated as secrets (see the module docstring)."""

NAMES_VARIABLE = "SHIPYARD_SECRET_NAMES"
"""Comma-separated names of further variables whose values are secret."""

WELL_KNOWN = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "GOOGLE_API_KEY",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GITLAB_TOKEN",
        "HF_TOKEN",
        "LANGSMITH_API_KEY",
        "LANGCHAIN_API_KEY",
        "NPM_TOKEN",
        "PYPI_TOKEN",
        "TWINE_PASSWORD",
        "PGPASSWORD",
        "SLACK_BOT_TOKEN",
    }
)
"""Credential names masked even if the name rule below would miss them."""

_SECRET_NAME = re.compile(r"(?:^|_)(?:KEYS?|TOKENS?)$|SECRET|PASSWORD|PASSWD")


@dataclass(frozen=True)
class _Secrets:
    pattern: re.Pattern[str] | None
    names: dict[str, str]
    """Each masked form -> the name of the variable it came from."""


_lock = threading.Lock()
_loaded: dict[str, _Secrets] = {}
"""``"secrets"`` -> what ``load_secrets`` compiled last (empty until the first use)."""


def is_secret_name(name: str, extra: frozenset[str] = frozenset()) -> bool:
    """True when the value of variable ``name`` is masked (``extra``: further names)."""
    upper = name.upper()
    if upper == NAMES_VARIABLE:
        return False
    return upper in WELL_KNOWN or upper in extra or bool(_SECRET_NAME.search(upper))


def secret_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Every secret value of ``environ`` (at least ``MIN_LENGTH`` long) -> its variable name."""
    listed = environ.get(NAMES_VARIABLE, "")
    extra = frozenset(n.strip().upper() for n in listed.split(",") if n.strip())
    found: dict[str, str] = {}
    for name, value in sorted(environ.items()):
        if is_secret_name(name, extra):
            found.setdefault(value, name)
        elif "://" in value and (password := _url_password(value)):
            found.setdefault(password, name)
    return {value: name for value, name in found.items() if len(value) >= MIN_LENGTH}


_registered: dict[str, str] = {}
"""Values registered by ``register_secret`` -> their names; kept across ``load_secrets``."""
_environ_values: dict[str, dict[str, str]] = {}
"""``"values"`` -> the secret values ``load_secrets`` found last."""


def register_secret(name: str, value: str) -> None:
    """Mask ``value`` as ``[REDACTED:<name>]`` from now on, whatever environment was loaded
    (a credential read where it is used, such as a forge token)."""
    if len(value) < MIN_LENGTH:
        return
    with _lock:
        if _registered.get(value) == name:
            return
        _registered[value] = name
        found = _environ_values.get("values")
    if found is None:
        load_secrets()
    else:
        _install(found)


def load_secrets(environ: Mapping[str, str] | None = None) -> None:
    """(Re)read the secret values from ``environ`` (default: the process environment)."""
    _install(secret_values(os.environ if environ is None else environ))


def _install(found: dict[str, str]) -> None:
    with _lock:
        registered = dict(_registered)
    secrets = _compile({**registered, **found})
    with _lock:
        _environ_values["values"] = found
        _loaded["secrets"] = secrets


def _secrets() -> _Secrets:
    found = _loaded.get("secrets")
    if found is None:
        load_secrets()
        found = _loaded["secrets"]
    return found


def redact_values(text: str) -> str:
    """``text`` with every secret value (and its encodings) replaced by
    ``[REDACTED:<VAR_NAME>]``."""
    secrets = _secrets()
    if secrets.pattern is None:
        return text
    names = secrets.names
    return secrets.pattern.sub(lambda m: f"[REDACTED:{names[m.group(0)]}]", text)


def _url_password(value: str) -> str | None:
    try:
        return urlsplit(value.strip()).password
    except ValueError:
        return None


def _compile(values: Mapping[str, str]) -> _Secrets:
    names: dict[str, str] = {}
    for value, name in values.items():
        for form in _forms(value):
            if len(form) >= MIN_LENGTH:
                names.setdefault(form, name)
    if not names:
        return _Secrets(None, {})
    ordered = sorted(names, key=len, reverse=True)
    return _Secrets(re.compile("|".join(map(re.escape, ordered))), names)


def _forms(value: str) -> set[str]:
    """The value and the encodings it is commonly printed in."""
    raw = value.encode("utf-8", "surrogateescape")
    aligned = raw[: len(raw) - len(raw) % 3]
    return {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        base64.b64encode(aligned).decode(),
        base64.urlsafe_b64encode(aligned).decode(),
    }


def redact_values_obj(obj: Any) -> Any:
    """A copy of ``obj`` with ``redact_values`` applied to every string, recursively through
    dicts (values), lists and tuples; other values are returned unchanged."""
    if isinstance(obj, str):
        return redact_values(obj)
    if isinstance(obj, dict):
        return {k: redact_values_obj(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_values_obj(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_values_obj(v) for v in obj)
    return obj


def redact_values_bytes(data: bytes) -> bytes:
    """``redact_values`` on bytes: they are read as UTF-8 (undecodable bytes kept as they
    are), so the result differs from ``data`` only where a secret value was."""
    if not data or _secrets().pattern is None:
        return data
    text = data.decode("utf-8", "surrogateescape")
    return redact_values(text).encode("utf-8", "surrogateescape")
