"""What text Postgres can store, and the one JSON encoder for ``jsonb`` columns.

Postgres text (and so ``jsonb``) cannot hold NUL (U+0000), and UTF-8 cannot hold an unpaired
surrogate (U+D800–U+DFFF, which ``json.loads`` accepts from a ``\\ud800`` escape). Two uses:

* ``find_unstorable(value)`` — the validator for what a client sends: the path to the first
  string (key or value) that cannot be stored, so the caller can refuse it naming the field.
* ``dumps(value)`` / ``jsonb(value)`` — the encoder for everything Shipyard itself writes
  (command output, model text, graph values): such characters become U+FFFD, so a write never
  fails on them. The SQLAlchemy engine, the server's writes and the store's own use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from psycopg.types.json import Jsonb

from shipyard.secret_values import redact_values

REPLACEMENT = "\ufffd"
"""What an unstorable character becomes when Shipyard stores text itself."""

Path = tuple[str | int, ...]
"""Keys and indexes from the top of a JSON value down to one string."""

_OPTIONS = orjson.OPT_NON_STR_KEYS


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(text: str) -> str | None:
    """Why Postgres cannot store ``text`` (``None`` when it can)."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "text cannot contain NUL (\\u0000) characters"
    return "text cannot contain unpaired surrogates (\\ud800-\\udfff)"


def find_unstorable(value: Any) -> tuple[Path, str] | None:
    """The path to the first string of ``value`` (plain JSON data) Postgres cannot store, and
    why; a key's path ends with the key itself. ``None`` when all of it can be stored."""
    stack: list[tuple[Path, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            reason = unstorable_reason(item)
            if reason is not None:
                return path, reason
        elif isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                reason = unstorable_reason(key) if isinstance(key, str) else None
                if reason is not None:
                    return (*path, key), reason
                stack.append(((*path, key), child))
        elif isinstance(item, list | tuple):
            stack.extend(((*path, i), child) for i, child in reversed(list(enumerate(item))))
    return None


def storable(value: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """A copy of ``value`` whose strings (keys too) Postgres can store: NUL and unpaired
    surrogates become U+FFFD. Other leaves go through ``default`` first when given."""
    if isinstance(value, str):
        return _clean(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {_clean(str(k)): storable(v, default) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [storable(v, default) for v in value]
    return value if default is None else storable(default(value), default)


def _clean(text: str) -> str:
    return _UNSTORABLE.sub(REPLACEMENT, text)


def dumps(value: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON text Postgres accepts as ``jsonb`` (see ``storable``); ``default``
    converts what JSON has no form for, as in ``orjson.dumps``. Secret values of the
    environment are masked (``shipyard.secret_values``): no row holds one."""
    return redact_values(_encode(value, default))


def _encode(value: Any, default: Callable[[Any], Any] | None) -> str:
    try:
        text = orjson.dumps(value, default=default, option=_OPTIONS)
    except orjson.JSONEncodeError:  # unpaired surrogates (or a type ``default`` refuses)
        return orjson.dumps(storable(value, default), option=_OPTIONS).decode()
    if b"\\u0000" in text:
        return orjson.dumps(storable(value, default), option=_OPTIONS).decode()
    return text.decode()


def jsonb(value: Any, default: Callable[[Any], Any] | None = None) -> Jsonb:
    """``value`` as a ``jsonb`` parameter for plain psycopg, encoded by ``dumps``."""
    return Jsonb(value, dumps=lambda v: dumps(v, default))
