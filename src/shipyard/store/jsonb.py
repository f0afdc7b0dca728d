"""JSON parameters for ``jsonb`` columns written with plain psycopg."""

from __future__ import annotations

import json
from typing import Any

from psycopg.types.json import Jsonb


def jsonb(value: Any) -> Jsonb:
    """``value`` as a ``jsonb`` parameter; NUL characters (which ``jsonb`` refuses, and
    command output can hold) become U+FFFD."""
    return Jsonb(value, dumps=_dumps)


def _dumps(value: Any) -> str:
    text = json.dumps(value)
    if "\\u0000" in text:
        text = json.dumps(_without_nul(value))
    return text


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value
