"""JSON Schemas of a graph for ``/assistants/{id}/schemas`` and ``/subgraphs`` (Studio draws
its input form and context panel from them).

LangGraph derives them with pydantic, which refuses ``typing.TypedDict`` on Python 3.11 and
types that are not data (the ``shipyard`` graph's ``Context`` holds live objects). Then we
fall back to a schema built field by field, leaving a field untyped (``{}``) when its type
has no JSON form — a usable form beats none.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import TypeAdapter


def graph_schemas(graph_id: str, graph: Any) -> dict[str, Any]:
    """``{graph_id, input_schema, output_schema, state_schema, config_schema, context_schema}``
    of a compiled graph (or subgraph)."""
    builder = getattr(graph, "builder", None)
    context = _try(graph.get_context_jsonschema)
    return {
        "graph_id": graph_id,
        "input_schema": _try(graph.get_input_jsonschema) or _fields(builder, "input_schema"),
        "output_schema": _try(graph.get_output_jsonschema) or _fields(builder, "output_schema"),
        "state_schema": _fields(builder, "state_schema"),
        "config_schema": context,
        "context_schema": context,
    }


def _try(make: Any) -> dict[str, Any] | None:
    try:
        schema = make()
    except Exception:  # pydantic cannot describe it: use the fallback
        return None
    return schema if isinstance(schema, dict) else None


def _fields(builder: Any, attr: str) -> dict[str, Any] | None:
    """An object schema from the type hints of the builder's ``attr`` type (TypedDict or
    pydantic model)."""
    cls = getattr(builder, attr, None)
    if cls is None:
        return None
    model_fields = getattr(cls, "model_fields", None)
    if model_fields is not None:
        hints = {name: f.annotation for name, f in model_fields.items()}
    else:
        try:
            hints = typing.get_type_hints(cls, include_extras=False)
        except Exception:  # unresolvable annotations: describe nothing rather than fail
            return None
    properties = {name: _field(tp) for name, tp in hints.items()}
    return {"title": getattr(cls, "__name__", "State"), "type": "object", "properties": properties}


def _field(tp: Any) -> dict[str, Any]:
    try:
        schema = TypeAdapter(tp).json_schema()
    except Exception:  # e.g. a TypedDict inside: leave the field untyped
        return {}
    return schema if isinstance(schema, dict) else {}
