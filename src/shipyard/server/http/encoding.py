"""JSON for the wire: graph state holds pydantic models, dataclasses, LangChain messages,
``Interrupt``s and datetimes; clients get plain JSON.

``to_jsonable(obj)`` converts recursively; ``dumps(obj)`` gives bytes (orjson); ``JSONResponse``
is the response class of every route, so a handler may return state values as they are.
SSE encoders (the runs helper's) use ``dumps`` for their ``data:`` lines. What the server
writes to ``jsonb`` columns goes through ``db_dumps`` / ``jsonb`` instead: the same conversion,
with text Postgres cannot store replaced (``shipyard.store.jsonb``).
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import PurePath
from typing import Any

import orjson
from fastapi.responses import Response
from langgraph.types import Interrupt
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from shipyard.store import jsonb as store_jsonb


def to_jsonable(obj: Any) -> Any:
    """``obj`` as JSON-compatible data (dicts, lists, str, numbers, bool, None)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    return _leaf(obj)


def _leaf(obj: Any) -> Any:
    if isinstance(obj, Interrupt):
        schema = to_jsonable(getattr(obj, "response_schema", None))
        return {"value": to_jsonable(obj.value), "id": obj.id, "response_schema": schema}
    if isinstance(obj, BaseModel):
        return to_jsonable(obj.model_dump(mode="json"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    if isinstance(obj, (uuid.UUID, PurePath)):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    if hasattr(obj, "_asdict"):
        return to_jsonable(obj._asdict())
    return repr(obj)


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes of ``obj`` (see ``to_jsonable``)."""
    return orjson.dumps(obj, default=to_jsonable, option=orjson.OPT_NON_STR_KEYS)


def db_dumps(obj: Any) -> str:
    """JSON text of ``obj`` (see ``to_jsonable``) that a ``jsonb`` column accepts."""
    return store_jsonb.dumps(obj, to_jsonable)


def jsonb(obj: Any) -> Jsonb:
    """``obj`` (see ``to_jsonable``) as a ``jsonb`` parameter for plain psycopg."""
    return store_jsonb.jsonb(obj, to_jsonable)


class JSONResponse(Response):
    """A JSON response that accepts graph values as they come out of a checkpoint."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialize ``content``."""
        return dumps(content)
