"""The JSON the server speaks: ``Json`` for a value the API leaves open (metadata, config,
a graph's values, a resume), ``JsonObject`` for such an object, and the API's own objects
(``Thread``, ``Assistant``, ``Run``, ``Cron``) as typed dictionaries, so every reader of a
store's result is held to the keys the API defines.

These are the JSON boundaries: ``Any`` appears in the server's signatures only as ``Json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, cast

Json = Any
"""Any JSON value (after ``encoding.to_jsonable``): what a client sent or a graph produced."""

JsonObject = dict[str, Json]
"""A JSON object whose keys the API leaves to the caller (metadata, config, context)."""

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]


class ThreadDict(TypedDict):
    """The API's ``Thread``."""

    thread_id: str
    created_at: str
    updated_at: str
    state_updated_at: str
    metadata: JsonObject
    status: ThreadStatus
    config: JsonObject
    values: Json
    interrupts: JsonObject
    error: Json


class AssistantDict(TypedDict):
    """The API's ``Assistant``; an ``AssistantVersion`` has no ``updated_at``."""

    assistant_id: str
    graph_id: str
    config: JsonObject
    context: JsonObject
    metadata: JsonObject
    name: str
    description: str | None
    version: int
    created_at: str
    updated_at: NotRequired[str]


class CronDict(TypedDict):
    """The API's ``Cron`` (``user_id`` is the owner)."""

    cron_id: str
    assistant_id: str
    thread_id: str | None
    user_id: str
    end_time: str | None
    schedule: str
    timezone: str | None
    payload: JsonObject
    next_run_date: str
    metadata: JsonObject
    on_run_completed: str | None
    enabled: bool
    created_at: str
    updated_at: str
    last_error: str | None


def as_json(value: Mapping[str, object]) -> JsonObject:
    """An API object as the JSON object a route returns (the same object, not a copy)."""
    return cast(JsonObject, value)


__all__ = [
    "AssistantDict",
    "CronDict",
    "Json",
    "JsonObject",
    "ThreadDict",
    "ThreadStatus",
    "as_json",
]
