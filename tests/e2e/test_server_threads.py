"""Threads and thread state through the official SDK against the real server."""

from __future__ import annotations

import uuid

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError


async def test_thread_crud_with_client_chosen_id(server, client) -> None:
    sdk = client()
    tid = str(uuid.uuid4())
    made = await sdk.threads.create(thread_id=tid, metadata={"team": "a", "n": 1})
    assert made["thread_id"] == tid
    assert made["status"] == "idle"
    assert made["metadata"] == {"team": "a", "n": 1}

    with pytest.raises(ConflictError) as err:
        await sdk.threads.create(thread_id=tid)
    assert err.value.response.json() == {"detail": f"thread {tid} already exists"}
    again = await sdk.threads.create(thread_id=tid, if_exists="do_nothing")
    assert again == made

    patched = await sdk.threads.update(tid, metadata={"n": 2, "extra": True})
    assert patched["metadata"] == {"team": "a", "n": 2, "extra": True}
    assert (await sdk.threads.get(tid))["metadata"] == patched["metadata"]

    await sdk.threads.delete(tid)
    with pytest.raises(NotFoundError) as missing:
        await sdk.threads.get(tid)
    assert missing.value.response.json() == {"detail": f"thread {tid} not found"}
    with pytest.raises(NotFoundError):
        await sdk.threads.delete(tid)


async def test_search_pages_with_headers_and_count(server, client) -> None:
    sdk = client()
    for i in range(5):
        await sdk.threads.create(metadata={"batch": "s", "i": i})
    await sdk.threads.create(metadata={"batch": "other"})

    first = await sdk.threads.search(metadata={"batch": "s"}, limit=2, sort_order="asc")
    second = await sdk.threads.search(metadata={"batch": "s"}, limit=2, offset=2, sort_order="asc")
    assert [t["metadata"]["i"] for t in first + second] == [0, 1, 2, 3]
    assert await sdk.threads.count(metadata={"batch": "s"}) == 5
    assert await sdk.threads.count(status="busy") == 0

    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.post("/threads/search", json={"metadata": {"batch": "s"}, "limit": 2})
        last = await http.post(
            "/threads/search", json={"metadata": {"batch": "s"}, "limit": 2, "offset": 4}
        )
    assert page.headers["x-pagination-total"] == "5"
    assert page.headers["x-pagination-next"] == "2"
    assert last.headers["x-pagination-total"] == "5"
    assert "x-pagination-next" not in last.headers
    assert len(last.json()) == 1


async def test_state_history_update_and_fork(server, client) -> None:
    sdk = client()
    thread = await sdk.threads.create(graph_id="probe_chain")
    tid = thread["thread_id"]
    empty = await sdk.threads.get_state(tid)
    assert empty["values"] == {} and empty["next"] == [] and empty["checkpoint"] is None

    first = await sdk.threads.update_state(tid, {"count": 5, "visited": ["x"]}, as_node="n4")
    assert first["checkpoint"]["thread_id"] == tid
    assert first["checkpoint_id"] == first["checkpoint"]["checkpoint_id"]
    state = await sdk.threads.get_state(tid)
    assert state["values"] == {"count": 5, "visited": ["x"]}
    assert state["next"] == ["n5"]
    assert state["checkpoint"]["checkpoint_id"] == first["checkpoint_id"]

    second = await sdk.threads.update_state(tid, {"count": 6, "visited": ["y"]}, as_node="n5")
    history = await sdk.threads.get_history(tid)
    ids = [h["checkpoint"]["checkpoint_id"] for h in history]
    assert ids[0] == second["checkpoint_id"]  # newest first
    assert first["checkpoint_id"] in ids
    assert history[0]["parent_checkpoint"]["checkpoint_id"] == first["checkpoint_id"]
    older = await sdk.threads.get_history(tid, before=history[0]["checkpoint"])
    assert [h["checkpoint"]["checkpoint_id"] for h in older] == ids[1:]
    assert len(await sdk.threads.get_history(tid, limit=1)) == 1

    # Time travel: fork from the first checkpoint.
    forked = await sdk.threads.update_state(
        tid, {"count": 100}, as_node="n4", checkpoint=first["checkpoint"]
    )
    now = await sdk.threads.get_state(tid)
    assert now["checkpoint"]["checkpoint_id"] == forked["checkpoint_id"]
    assert now["parent_checkpoint"]["checkpoint_id"] == first["checkpoint_id"]
    assert now["values"]["count"] == 100
    assert now["next"] == ["n5"]
    past = await sdk.threads.get_state(tid, checkpoint=second["checkpoint"])
    assert past["values"] == {"count": 6, "visited": ["x", "y"]}
    by_id = await sdk.threads.get_state(tid, checkpoint_id=first["checkpoint_id"])
    assert by_id["values"] == {"count": 5, "visited": ["x"]}
    assert (await sdk.threads.get(tid))["values"]["count"] == 100

    with pytest.raises(NotFoundError):
        await sdk.threads.get_state(tid, checkpoint_id="1f000000-0000-6000-8000-000000000000")


async def test_create_with_supersteps_prepopulates_history(server, client) -> None:
    sdk = client()
    thread = await sdk.threads.create(
        graph_id="probe_chain",
        supersteps=[
            {"updates": [{"values": {"count": 1}, "as_node": "n0"}]},
            {"updates": [{"values": {"count": 2}, "as_node": "n1"}]},
        ],
    )
    assert thread["values"]["count"] == 2
    history = await sdk.threads.get_history(thread["thread_id"])
    assert [h["values"].get("count") for h in history][:2] == [2, 1]
    assert history[0]["next"] == ["n2"]


async def test_copy_carries_checkpoints(server, client) -> None:
    sdk = client()
    tid = (await sdk.threads.create(graph_id="probe_chain", metadata={"k": "v"}))["thread_id"]
    await sdk.threads.update_state(tid, {"count": 1}, as_node="n0")
    await sdk.threads.update_state(tid, {"count": 2}, as_node="n1")
    copied = await sdk.threads.copy(tid)
    assert copied is not None
    cid = copied["thread_id"]
    assert cid != tid and copied["metadata"] == {"k": "v", "graph_id": "probe_chain"}
    original = await sdk.threads.get_history(tid)
    duplicate = await sdk.threads.get_history(cid)
    assert [h["values"] for h in duplicate] == [h["values"] for h in original]
    assert [h["checkpoint"]["checkpoint_id"] for h in duplicate] == [
        h["checkpoint"]["checkpoint_id"] for h in original
    ]
    # The copy is independent: writing to it leaves the original alone.
    await sdk.threads.update_state(cid, {"count": 50}, as_node="n2")
    assert (await sdk.threads.get_state(tid))["values"]["count"] == 2


async def test_bad_thread_input_is_refused_with_the_field_named(server, client) -> None:
    sdk = client()
    with pytest.raises(UnprocessableEntityError) as bad_id:
        await sdk.threads.create(thread_id="not-a-uuid")
    assert "thread_id" in bad_id.value.response.json()["detail"]
    async with httpx.AsyncClient(base_url=server.url) as http:
        bad_graph = await http.post("/threads", json={"graph_id": "nope"})
        malformed = await http.post(
            "/threads", content=b'{"metadata": ', headers={"content-type": "application/json"}
        )
    assert bad_graph.status_code == 422
    assert "nope" in bad_graph.json()["detail"] and "probe_chain" in bad_graph.json()["detail"]
    assert malformed.status_code == 422
    assert malformed.json()["detail"].startswith("malformed JSON body")
    with pytest.raises(UnprocessableEntityError) as bad_status:
        await sdk.threads.search(status="sleeping")  # type: ignore[arg-type]
    assert bad_status.value.response.json()["detail"].startswith("body.status")
    assert await sdk.threads.count() == 0  # nothing was created by the refused calls
    no_graph = (await sdk.threads.create())["thread_id"]
    with pytest.raises(httpx.HTTPStatusError) as no_graph_err:
        await sdk.threads.update_state(no_graph, {"count": 1})
    assert no_graph_err.value.response.status_code == 400
    assert "no graph" in no_graph_err.value.response.json()["detail"]


async def test_state_and_interrupts_are_shaped_as_the_official_server(client) -> None:
    sdk = client()
    fresh = (await sdk.threads.create())["thread_id"]
    assert (await sdk.threads.get_state(fresh))["metadata"] is None  # no checkpoint yet
    tid = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(tid, "probe_interrupt", input={"topic": "s"})
    pending = (await sdk.threads.get(tid))["interrupts"]
    items = [item for per_task in pending.values() for item in per_task]
    assert [sorted(item) for item in items] == [["id", "value"]]  # no null response_schema
    assert items[0]["value"] == {"question": "proceed?", "topic": "s"}
    assert (await sdk.threads.copy(tid))["interrupts"] == pending  # type: ignore[index]
