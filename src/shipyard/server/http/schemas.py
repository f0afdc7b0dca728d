"""JSON Schemas of a graph for ``/assistants/{id}/schemas`` and ``/subgraphs`` (Studio draws
its input form and context panel from them).

LangGraph derives them with pydantic, which refuses ``typing.TypedDict`` on Python 3.11 and
types that are not data (the ``shipyard`` graph's ``Context`` holds live objects). Then we
fall back to a schema built field by field, leaving a field untyped (``{}``) when its type
has no JSON form — a usable form beats none.

The state schema and the configurable schema are derived as the official server derives
them: the state from the graph's output channels (each property titled and defaulting to
``null``, named ``<graph id>_state``), the configurable from ``config_schema()``'s
``configurable`` field (``{}`` when the graph declares none).
"""

from __future__ import annotations

import typing
import warnings
from typing import Any

from langchain_core.utils.pydantic import create_model
from pydantic import TypeAdapter

from shipyard.server.http.shapes import JsonObject

_HIDDEN_CONFIGURABLE = (
    "__pregel_checkpointer",
    "__pregel_store",
    "checkpoint_id",
    "checkpoint_ns",
    "thread_id",
)


def graph_schemas(graph_id: str, graph: Any) -> JsonObject:
    """``{graph_id, input_schema, output_schema, state_schema, config_schema, context_schema}``
    of a compiled graph (or subgraph)."""
    builder = getattr(graph, "builder", None)
    context = _try(graph.get_context_jsonschema)
    return {
        "graph_id": graph_id,
        "input_schema": _try(graph.get_input_jsonschema) or _fields(builder, "input_schema"),
        "output_schema": _try(graph.get_output_jsonschema) or _fields(builder, "output_schema"),
        "state_schema": _try(lambda: _channels(graph, graph_id))
        or _fields(builder, "state_schema"),
        "config_schema": _try(lambda: _configurable(graph)),
        "context_schema": context,
    }


def _channels(graph: Any, graph_id: str) -> JsonObject:
    """The state as an object of the graph's output channels, each typed by what it accepts
    (untyped when pydantic cannot describe that)."""
    fields: JsonObject = {}
    for key in graph.stream_channels_list:
        update_type = graph.channels[key].UpdateType
        try:
            create_model(key, __root__=(update_type, None)).model_json_schema()
        except Exception:  # no JSON form: leave the property untyped
            update_type = Any
        fields[key] = (update_type, None)
    name = graph.get_name("State", name=graph_id if graph.name == "LangGraph" else None)
    schema = create_model(name, **fields).model_json_schema()
    return dict(schema)


def _configurable(graph: Any) -> JsonObject:
    """The schema of ``config["configurable"]`` without LangGraph's own keys; ``{}`` when
    the graph's config declares no ``configurable``."""
    with warnings.catch_warnings():  # ``config_schema`` is deprecated, still what servers use
        warnings.simplefilter("ignore", DeprecationWarning)
        config_model = graph.config_schema()
    field = getattr(config_model, "model_fields", {}).get("configurable")
    if field is None:
        return {}
    schema: JsonObject = TypeAdapter(field.annotation).json_schema()
    for key in _HIDDEN_CONFIGURABLE:
        schema.get("properties", {}).pop(key, None)
    type_name = getattr(getattr(graph, "config_type", None), "__name__", None)
    if type_name:
        schema["title"] = type_name
    return schema


def _try(make: Any) -> JsonObject | None:
    try:
        schema = make()
    except Exception:  # pydantic cannot describe it: use the fallback
        return None
    return schema if isinstance(schema, dict) else None


def _fields(builder: Any, attr: str) -> JsonObject | None:
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


def _field(tp: Any) -> JsonObject:
    try:
        schema = TypeAdapter(tp).json_schema()
    except Exception:  # e.g. a TypedDict inside: leave the field untyped
        return {}
    return schema if isinstance(schema, dict) else {}
