"""Text Postgres cannot store (NUL, unpaired surrogates) sent to the real server: every route
answers 422 naming the field, and nothing is stored — no thread, assistant, run, checkpoint
or event, and an existing thread keeps its metadata.

Hostile-input category: unstorable text in client JSON (values, keys, search filters, run
input, state updates) and in the URL.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from langgraph_sdk.errors import UnprocessableEntityError

from shipyard.store import psycopg_conninfo

NUL = "a\u0000b"
_TABLES = (
    "assistants",
    "assistant_versions",
    "threads",
    "api_runs",
    "run_stream_events",
    "checkpoints",
)


def _counts(db_url: str) -> dict[str, int]:
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in _TABLES
        }


async def _post(http: httpx.AsyncClient, method: str, path: str, body: Any) -> httpx.Response:
    # json.dumps writes NUL as \u0000 and a lone surrogate as \ud800, as a client would.
    content = json.dumps(body)
    return await http.request(
        method, path, content=content, headers={"content-type": "application/json"}
    )


def _cases(tid: str) -> list[tuple[str, str, Any, str]]:
    """(method, path, body, field the 422 names)."""
    run = {"assistant_id": "probe_chain"}
    return [
        ("POST", "/threads", {"metadata": {"team": NUL}}, "body.metadata.team"),
        ("POST", "/threads", {"metadata": {NUL: 1}}, "body.metadata.a\\u0000b"),
        ("POST", "/threads", {"metadata": {"deep": [1, {"x": NUL}]}}, "body.metadata.deep.1.x"),
        ("POST", "/threads", {"metadata": {"s": "\ud800"}}, "body.metadata.s"),
        ("POST", "/threads/search", {"metadata": {"team": NUL}}, "body.metadata.team"),
        ("POST", "/threads/search", {"values": {"goal": NUL}}, "body.values.goal"),
        ("POST", "/threads/count", {"metadata": {"team": NUL}}, "body.metadata.team"),
        ("POST", "/assistants/search", {"metadata": {"k": NUL}}, "body.metadata.k"),
        ("POST", "/assistants/search", {"graph_id": NUL}, "body.graph_id"),
        ("POST", "/assistants", {"graph_id": "probe_chain", "name": NUL}, "body.name"),
        ("POST", "/runs/wait", {**run, "input": {"count": 0, "x": NUL}}, "body.input.x"),
        ("POST", "/runs", {**run, "input": {"count": 0}, "metadata": {NUL: 1}}, "body.metadata"),
        ("POST", f"/threads/{tid}/runs/wait", {**run, "input": {"s": NUL}}, "body.input.s"),
        ("POST", f"/threads/{tid}/runs/stream", {**run, "input": {"s": NUL}}, "body.input.s"),
        ("POST", f"/threads/{tid}/state", {"values": {"count": NUL}}, "body.values.count"),
        ("PATCH", f"/threads/{tid}", {"metadata": {"team": NUL}}, "body.metadata.team"),
    ]


async def test_unstorable_text_is_422_naming_the_field_and_nothing_is_stored(
    server, settings
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        made = await http.post("/threads", json={"metadata": {"team": "kept"}})
        tid = made.json()["thread_id"]
        before = _counts(settings.database_url)
        for method, path, body, field in _cases(tid):
            answer = await _post(http, method, path, body)
            assert answer.status_code == 422, (path, body, answer.text)
            detail = answer.json()["detail"]
            assert detail.startswith(f"{field}"), (path, detail)
            assert "cannot contain" in detail and "nothing was stored" in detail
        url = await http.get("/assistants/a%00b")
        query = await http.get(f"/threads/{tid}/history", params={"limit": "1", "x": NUL})
        thread = (await http.get(f"/threads/{tid}")).json()
    assert url.status_code == 422 and url.json()["detail"].startswith("path: ")
    assert query.status_code == 422 and query.json()["detail"].startswith("query.x: ")
    assert _counts(settings.database_url) == before
    assert thread["metadata"] == {"team": "kept"}


async def test_official_client_gets_a_clear_422(server, client) -> None:
    sdk = client()
    with pytest.raises(UnprocessableEntityError) as err:
        await sdk.threads.create(metadata={"team": NUL})
    assert err.value.response.json()["detail"] == (
        "body.metadata.team: text cannot contain NUL (\\u0000) characters; nothing was stored"
    )
    with pytest.raises(httpx.HTTPStatusError) as run_err:  # runs.wait raises httpx's own
        await sdk.runs.wait(None, "probe_chain", input={"count": 0, "note": NUL})
    assert run_err.value.response.status_code == 422
    assert run_err.value.response.json()["detail"].startswith("body.input.note: ")
    assert await sdk.threads.search() == []


async def test_text_that_only_looks_like_nul_is_stored_as_sent(server) -> None:
    # An escaped backslash: the text is the six characters \u0000, which Postgres can store.
    literal = "\\u0000 and \\ud800"
    async with httpx.AsyncClient(base_url=server.url) as http:
        made = await _post(http, "POST", "/threads", {"metadata": {"k": literal}})
        assert made.status_code == 200, made.text
        got = await http.get(f"/threads/{made.json()['thread_id']}")
    assert got.json()["metadata"] == {"k": literal}
    assert uuid.UUID(got.json()["thread_id"])
