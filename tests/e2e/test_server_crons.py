"""Crons through the official async SDK against the real server: stateless and thread crons
fire real runs, search / count / update / delete, owners, bad input, ``end_time``, a deleted
assistant, a firing repeated after a lost advance, and two server processes sharing one
database. Schedules use croniter's sixth (seconds) field and a short scheduler poll, so a
test waits seconds, not minutes.

Hostile cases (category ``access``): another owner's cron is a 404 on every route and
invisible to search and count.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError
from sqlalchemy import text

from shipyard.server import ServerOptions
from shipyard.server.stores.graphs import default_assistant_id
from tests.support import schema_diff

EVERY_SECOND = "* * * * * *"
NEVER_SOON = "0 0 1 1 *"  # once a year: never fires during a test
FAST = ServerOptions(cron_poll_s=0.05)
CRON_KEYS = {
    "cron_id", "assistant_id", "thread_id", "user_id", "end_time", "schedule", "timezone",
    "payload", "next_run_date", "metadata", "on_run_completed", "enabled", "created_at",
    "updated_at", "last_error",
}  # fmt: skip


async def until(check: Callable[[], Awaitable[Any]], timeout_s: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")


def when(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


async def finished_runs(sdk: Any) -> list[dict[str, Any]]:
    """Every ended run of every thread of the caller, oldest first."""
    runs = []
    for thread in await sdk.threads.search(limit=1000):
        runs += await sdk.runs.list(thread["thread_id"], limit=1000)
    return sorted(
        (r for r in runs if r["status"] not in ("pending", "running")),
        key=lambda r: r["created_at"],
    )


def test_migrated_schema_matches_the_cron_declaration(db_url: str) -> None:
    diff, tables = schema_diff(db_url, {"api_crons"})
    assert diff == []
    assert "api_crons" in tables


async def test_info_says_crons(server, client) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        info = (await http.get("/info")).json()
    assert info["flags"]["crons"] is True
    assert await client().crons.search() == []


async def test_stateless_cron_fires_each_time_on_a_new_thread(start_server, make_client) -> None:
    server = start_server(FAST)
    sdk = make_client(server.url)
    before = datetime.now(UTC)
    cron = await sdk.crons.create(
        "probe_chain",
        schedule=EVERY_SECOND,
        input={"count": 0},
        metadata={"job": "tick"},
        on_run_completed="keep",
    )
    cid = cron["cron_id"]
    assert set(cron) == CRON_KEYS
    assert cron["assistant_id"] == default_assistant_id("probe_chain")
    assert cron["thread_id"] is None and cron["on_run_completed"] == "keep"
    assert cron["enabled"] is True and cron["user_id"] == "local" and cron["last_error"] is None
    assert cron["payload"]["input"] == {"count": 0}
    assert cron["payload"]["config"]["configurable"]["cron_id"] == cid
    assert before < when(cron["next_run_date"]) <= before + timedelta(seconds=2)

    runs = await until(lambda: _at_least(sdk, 3))
    assert len({r["thread_id"] for r in runs}) == len(runs)  # a new thread each time
    for run in runs:
        assert run["status"] == "success"
        assert run["metadata"] == {"job": "tick"}
        assert run["kwargs"]["config"]["configurable"]["cron_id"] == cid
        state = await sdk.threads.get_state(run["thread_id"])
        assert state["values"]["count"] == 10
    later = await sdk.crons.search()
    assert when(later[0]["next_run_date"]) > when(cron["next_run_date"])

    await sdk.crons.delete(cid)
    fired = {t["thread_id"] for t in await sdk.threads.search(limit=1000)}
    await asyncio.sleep(2.0)
    assert {t["thread_id"] for t in await sdk.threads.search(limit=1000)} == fired
    assert await sdk.crons.search() == []
    with pytest.raises(NotFoundError):
        await sdk.crons.delete(cid)


async def _at_least(sdk: Any, n: int) -> list[dict[str, Any]] | None:
    runs = await finished_runs(sdk)
    return runs if len(runs) >= n else None


async def test_thread_cron_fires_on_its_thread(start_server, make_client) -> None:
    server = start_server(FAST)
    sdk = make_client(server.url)
    tid = (await sdk.threads.create())["thread_id"]
    cron = await sdk.crons.create_for_thread(
        tid, "probe_chain", schedule=EVERY_SECOND, input={"count": 0}
    )
    assert cron["thread_id"] == tid and cron["on_run_completed"] is None

    async def two_runs() -> list[dict[str, Any]] | None:
        runs = await sdk.runs.list(tid)
        return runs if sum(r["status"] == "success" for r in runs) >= 2 else None

    await until(two_runs)
    assert [t["thread_id"] for t in await sdk.threads.search()] == [tid]
    state = await sdk.threads.get_state(tid)
    assert state["values"]["count"] == 10 and len(state["values"]["visited"]) >= 20
    assert [c["cron_id"] for c in await sdk.crons.search(thread_id=tid)] == [cron["cron_id"]]

    await sdk.threads.delete(tid)  # its crons go with it
    with pytest.raises(NotFoundError):
        await sdk.crons.delete(cron["cron_id"])
    assert await sdk.crons.count() == 0


async def test_search_count_sort_paginate_select(server, client) -> None:
    sdk = client()
    tid = (await sdk.threads.create())["thread_id"]
    chain = await sdk.crons.create("probe_chain", schedule=NEVER_SOON, metadata={"team": "a"})
    asked = await sdk.crons.create(
        "probe_interrupt", schedule="30 12 * * *", metadata={"team": "b"}, enabled=False
    )
    on_thread = await sdk.crons.create_for_thread(
        tid, "probe_chain", schedule="5 * * * *", metadata={"team": "a", "x": 1}
    )
    ids = {
        c["cron_id"]: n for n, c in {"chain": chain, "asked": asked, "thread": on_thread}.items()
    }

    def names(found: list[dict[str, Any]]) -> list[str]:
        return [ids[c["cron_id"]] for c in found]

    assert names(await sdk.crons.search()) == ["thread", "asked", "chain"]  # newest first
    assert names(await sdk.crons.search(sort_by="created_at", sort_order="asc")) == [
        "chain",
        "asked",
        "thread",
    ]
    every = await sdk.crons.search()
    assert len({c["next_run_date"] for c in every}) == 3
    by_next = sorted(every, key=lambda c: when(c["next_run_date"]))
    assert names(await sdk.crons.search(sort_by="next_run_date", sort_order="asc")) == names(
        by_next
    )
    assert names(await sdk.crons.search(sort_by="next_run_date")) == names(by_next)[::-1]
    chain_aid = default_assistant_id("probe_chain")
    assert set(names(await sdk.crons.search(assistant_id=chain_aid))) == {"chain", "thread"}
    assert names(await sdk.crons.search(thread_id=tid)) == ["thread"]
    assert names(await sdk.crons.search(enabled=False)) == ["asked"]
    assert set(names(await sdk.crons.search(metadata={"team": "a"}))) == {"chain", "thread"}
    assert names(await sdk.crons.search(limit=1, offset=1)) == ["asked"]
    assert names(await sdk.crons.search(limit=2, offset=2)) == ["chain"]
    picked = await sdk.crons.search(select=["cron_id", "schedule"], limit=1)
    assert picked == [{"cron_id": on_thread["cron_id"], "schedule": "5 * * * *"}]
    assert await sdk.crons.count() == 3
    assert await sdk.crons.count(assistant_id=chain_aid) == 2
    assert await sdk.crons.count(thread_id=tid) == 1
    assert await sdk.crons.count(metadata={"team": "b"}) == 1
    async with httpx.AsyncClient(base_url=server.url) as http:
        page = await http.post("/runs/crons/search", json={"limit": 2})
        assert page.headers["x-pagination-total"] == "3"
        assert page.headers["x-pagination-next"] == "2"
        got = await http.get(f"/runs/crons/{chain['cron_id']}")
        assert got.status_code == 200 and got.json()["cron_id"] == chain["cron_id"]


async def test_update_changes_schedule_state_and_payload(server, client) -> None:
    sdk = client()
    cron = await sdk.crons.create(
        "probe_chain", schedule=NEVER_SOON, input={"count": 1}, metadata={"a": 1}
    )
    cid = cron["cron_id"]
    end = datetime.now(UTC) + timedelta(days=3)
    updated = await sdk.crons.update(
        cid,
        schedule="0 9 * * *",
        timezone="America/New_York",
        enabled=False,
        metadata={"b": 2},
        input={"count": 5},
        end_time=end,
    )
    assert set(updated) == CRON_KEYS
    assert updated["schedule"] == "0 9 * * *" and updated["timezone"] == "America/New_York"
    local = when(updated["next_run_date"]).astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0)
    assert datetime.now(UTC) < local <= datetime.now(UTC) + timedelta(hours=25)
    assert updated["enabled"] is False and updated["metadata"] == {"a": 1, "b": 2}
    assert updated["payload"]["input"] == {"count": 5}
    assert updated["payload"]["config"]["configurable"]["cron_id"] == cid
    assert updated["payload"]["assistant_id"] == cron["assistant_id"]
    assert when(updated["end_time"]) == end
    cleared = await sdk.crons.update(cid, end_time=None)
    assert cleared["end_time"] is None and cleared["enabled"] is False
    assert (await sdk.crons.search(enabled=False))[0]["cron_id"] == cid


async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(server, client) -> None:
    sdk = client()
    with pytest.raises(UnprocessableEntityError) as bad:
        await sdk.crons.create("probe_chain", schedule="every day at nine")
    assert bad.value.response.json()["detail"].startswith("schedule:")
    with pytest.raises(UnprocessableEntityError) as never:
        await sdk.crons.create("probe_chain", schedule="0 0 31 2 *")
    assert never.value.response.json()["detail"].startswith("schedule:")
    with pytest.raises(UnprocessableEntityError) as zone:
        await sdk.crons.create("probe_chain", schedule=NEVER_SOON, timezone="Mars/Olympus")
    assert zone.value.response.json()["detail"].startswith("timezone:")
    with pytest.raises(UnprocessableEntityError) as mode:
        await sdk.crons.create("probe_chain", schedule=NEVER_SOON, stream_mode="nonsense")
    assert mode.value.response.json()["detail"].startswith("stream_mode:")
    with pytest.raises(NotFoundError):
        await sdk.crons.create("no_such_graph", schedule=NEVER_SOON)
    with pytest.raises(NotFoundError):
        await sdk.crons.create("2b5f6b8e-0000-4000-8000-000000000000", schedule=NEVER_SOON)
    with pytest.raises(NotFoundError):
        await sdk.crons.create_for_thread(
            "2b5f6b8e-0000-4000-8000-000000000001", "probe_chain", schedule=NEVER_SOON
        )
    assert await sdk.crons.count() == 0

    cron = await sdk.crons.create("probe_chain", schedule=NEVER_SOON)
    with pytest.raises(UnprocessableEntityError) as patch:
        await sdk.crons.update(cron["cron_id"], schedule="61 * * * *", enabled=False)
    assert patch.value.response.json()["detail"].startswith("schedule:")
    assert (await sdk.crons.search())[0] == cron  # nothing changed
    async with httpx.AsyncClient(base_url=server.url) as http:
        empty = await http.patch(f"/runs/crons/{cron['cron_id']}", json={})
        assert empty.status_code == 400
        not_uuid = await http.get("/runs/crons/not-a-uuid")
        assert not_uuid.status_code == 422 and "cron_id" in not_uuid.json()["detail"]
        sort = await http.post("/runs/crons/search", json={"sort_by": "schedule"})
        assert sort.status_code == 422 and "sort_by" in sort.json()["detail"]


async def test_access_other_owners_get_404_on_every_cron_route(server, client) -> None:
    _, alice_key = server.state.auth.create("a", "alice")
    _, bob_key = server.state.auth.create("b", "bob")
    alice, bob = client(alice_key), client(bob_key)
    tid = (await alice.threads.create())["thread_id"]
    private = await alice.assistants.create("probe_chain", name="alice's")
    cron = await alice.crons.create_for_thread(tid, "probe_chain", schedule=NEVER_SOON)
    cid = cron["cron_id"]
    assert cron["user_id"] == "alice"
    statuses = {}
    for name, call in {
        "create on alice's assistant": bob.crons.create(
            private["assistant_id"], schedule=NEVER_SOON
        ),
        "update": bob.crons.update(cid, enabled=False),
        "delete": bob.crons.delete(cid),
        "create on alice's thread": bob.crons.create_for_thread(
            tid, "probe_chain", schedule=NEVER_SOON
        ),
    }.items():
        try:
            await call
            statuses[name] = 200
        except NotFoundError as err:
            statuses[name] = err.response.status_code
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": bob_key}) as http:
        statuses["get"] = (await http.get(f"/runs/crons/{cid}")).status_code
    assert statuses == dict.fromkeys(statuses, 404)
    assert await bob.crons.search() == []
    assert await bob.crons.search(thread_id=tid) == []
    assert await bob.crons.count() == 0
    assert await alice.crons.search() == [cron]  # nothing of alice's changed


async def test_end_time_stops_the_firings(start_server, make_client) -> None:
    server = start_server(FAST)
    sdk = make_client(server.url)
    past = await sdk.crons.create(
        "probe_chain", schedule=EVERY_SECOND, end_time=datetime.now(UTC) - timedelta(seconds=1)
    )
    end = datetime.now(UTC) + timedelta(seconds=2)
    await sdk.crons.create("probe_chain", schedule=EVERY_SECOND, input={"count": 0}, end_time=end)
    await asyncio.sleep(4.0)
    runs = await finished_runs(sdk)
    assert 1 <= len(runs) <= 3
    assert all(when(r["created_at"]) <= end for r in runs)
    assert {r["kwargs"]["config"]["configurable"]["cron_id"] for r in runs} != {past["cron_id"]}
    assert await sdk.crons.count() == 2  # ended crons stay listed


async def test_a_deleted_assistant_is_reported_on_the_cron(start_server, make_client) -> None:
    server = start_server(FAST)
    sdk = make_client(server.url)
    assistant = await sdk.assistants.create("probe_chain", name="nightly")
    aid = assistant["assistant_id"]
    cron = await sdk.crons.create(aid, schedule=EVERY_SECOND, input={"count": 0})
    await until(lambda: _at_least(sdk, 1))
    await sdk.assistants.delete(aid)
    threads = await sdk.threads.count()

    async def reported() -> dict[str, Any] | None:
        [found] = await sdk.crons.search()
        return found if found["last_error"] else None

    found = await until(reported)
    assert found["last_error"] == f"404: assistant {aid} not found"
    assert found["enabled"] is True and found["next_run_date"] > cron["next_run_date"]
    await asyncio.sleep(1.5)
    assert await sdk.threads.count() <= threads + 1  # at most one in flight at the deletion
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/ok")).status_code == 200


async def test_a_firing_repeated_after_a_lost_advance_makes_no_second_run(
    start_server, make_client
) -> None:
    server = start_server(FAST)
    sdk = make_client(server.url)
    cron = await sdk.crons.create("probe_chain", schedule=NEVER_SOON, input={"count": 0})
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)

    def set_due() -> None:  # as if the advance of a committed firing had been lost
        with server.state.engine.begin() as conn:
            conn.execute(
                text("UPDATE api_crons SET next_run_date = :due WHERE cron_id = :id"),
                {"due": due, "id": cron["cron_id"]},
            )

    async def advanced() -> bool:
        [found] = await sdk.crons.search()
        return when(found["next_run_date"]) > due

    set_due()
    await until(advanced)
    [run] = await until(lambda: _at_least(sdk, 1))
    set_due()
    await until(advanced)
    await asyncio.sleep(0.5)
    assert await finished_runs(sdk) == [run]
    assert await sdk.threads.count() == 1
    assert (await sdk.crons.search())[0]["last_error"] is None


@pytest.mark.slow
async def test_two_servers_fire_each_firing_once(start_server, make_client) -> None:
    first = start_server(FAST)
    start_server(FAST)  # a second process's scheduler on the same database
    sdk = make_client(first.url)
    cron = await sdk.crons.create("probe_chain", schedule=EVERY_SECOND, input={"count": 0})
    await asyncio.sleep(5.0)
    await sdk.crons.delete(cron["cron_id"])
    await until(lambda: _settled(sdk))
    runs = await finished_runs(sdk)
    assert 3 <= len(runs) <= 7
    created = [when(r["created_at"]) for r in runs]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(created)]
    assert all(gap > 0.5 for gap in gaps), gaps  # one run per firing, never two


async def _settled(sdk: Any) -> bool:
    threads = await sdk.threads.search(limit=1000)
    return all(t["status"] == "idle" for t in threads)
