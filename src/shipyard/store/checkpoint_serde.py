"""The serializer of Shipyard's checkpoints, on its own so a reader can have it without the
saver (``store/checkpointer.py`` imports LangGraph's Postgres saver and its pool; ``shipyard
show`` reads checkpoints with plain psycopg, ``store/checkpoint_reader.py``).

It deserializes only Shipyard's own contract types (plus LangGraph's built-in safe types
such as messages and datetimes): any other type stored in a checkpoint comes back as plain
data, never as an instance of that type — a tampered or foreign checkpoint cannot make us
import and construct arbitrary classes.
"""

from __future__ import annotations

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from shipyard.contracts import CONTRACT_TYPES


def contract_allowlist() -> list[tuple[str, str]]:
    """``(module, name)`` of every type allowed to be revived from a checkpoint."""
    return [(cls.__module__, cls.__name__) for cls in CONTRACT_TYPES]


def make_serializer() -> JsonPlusSerializer:
    """The checkpoint serializer with Shipyard's explicit allowlist (no pickle)."""
    return JsonPlusSerializer(allowed_msgpack_modules=contract_allowlist())
