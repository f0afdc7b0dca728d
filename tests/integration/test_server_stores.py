"""The server's stores against real Postgres: threads, assistants and API keys."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from shipyard.errors import AuthenticationError, UserInputError
from shipyard.server.stores.assistants import AssistantStore
from shipyard.server.stores.graphs import default_assistant_id
from shipyard.server.stores.keys import LOCAL_OWNER, Auth, check_bind, hash_secret, is_loopback
from shipyard.server.stores.tables import ApiKeyRow, AssistantRow
from shipyard.server.stores.threads import ThreadStore
from shipyard.store import make_engine


@pytest.fixture
def engine(db_url: str):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_threads_are_scoped_by_owner_and_status_is_recorded(engine) -> None:
    threads = ThreadStore(engine)
    mine = threads.create("alice", metadata={"k": 1})
    tid = mine["thread_id"]
    with pytest.raises(HTTPException) as hidden:
        threads.get("bob", tid)
    assert (hidden.value.status_code, hidden.value.detail) == (404, f"thread {tid} not found")
    with pytest.raises(HTTPException) as taken:
        threads.create("bob", tid, if_exists="do_nothing")
    assert taken.value.status_code == 409
    threads.set_status(tid, "interrupted", values={"a": 1}, interrupts={"t": [{"id": "i"}]})
    got = threads.get("alice", tid)
    assert (got["status"], got["values"], got["interrupts"]) == (
        "interrupted",
        {"a": 1},
        {"t": [{"id": "i"}]},
    )
    assert threads.search("alice", status="interrupted")[1] == 1
    assert threads.count("bob") == 0
    assert threads.owner_of(tid) == "alice"
    with pytest.raises(ValueError, match="unknown thread status"):
        threads.set_status(tid, "sleeping")  # type: ignore[arg-type]
    threads.delete("alice", tid)
    assert threads.owner_of(tid) is None


def test_default_assistants_are_idempotent_and_shared(engine) -> None:
    store = AssistantStore(engine, ["g2", "g1", "g3"])  # registration order, not sorted
    store.ensure_defaults()
    store.ensure_defaults()  # a second server start changes nothing
    # As the official server: newest first, so the last registered graph's default leads.
    assert [a["graph_id"] for a in store.search("anyone")[0]] == ["g3", "g1", "g2"]
    with Session(engine) as session:
        ids = sorted(session.scalars(select(AssistantRow.assistant_id)))
    assert ids == sorted(default_assistant_id(g) for g in ("g1", "g2", "g3"))
    assert store.get("anyone", "g1")["assistant_id"] == default_assistant_id("g1")
    assert store.resolve("anyone", default_assistant_id("g2"))["graph_id"] == "g2"
    with pytest.raises(HTTPException) as bad:
        store.resolve("anyone", "g4")
    assert bad.value.status_code == 422 and "g1, g2, g3" in str(bad.value.detail)
    own = store.create("alice", "g1", name="a")
    assert store.count("bob") == 3 and store.count("alice") == 4
    with pytest.raises(HTTPException) as hidden:
        store.patch("bob", own["assistant_id"], name="b")
    assert hidden.value.status_code == 404


def test_api_keys_store_only_hashes_and_resolve_owners(engine) -> None:
    auth = Auth(engine)
    assert auth.owner_for(None) == LOCAL_OWNER  # no keys: single-owner mode
    key, secret = auth.create("ci", "team-a")
    with Session(engine) as session:
        stored = session.scalars(select(ApiKeyRow.hash)).all()
    assert stored == [hash_secret(secret)] and secret not in stored
    assert auth.owner_for(secret) == "team-a"
    with pytest.raises(AuthenticationError, match="missing API key"):
        auth.owner_for(None)
    auth.revoke(key.id)
    with pytest.raises(AuthenticationError, match="invalid or revoked"):
        auth.owner_for(secret)
    assert Auth(engine).owner_for(None) == LOCAL_OWNER  # every key revoked
    with pytest.raises(AuthenticationError):
        Auth(engine, require_keys=True).owner_for(None)
    with pytest.raises(UserInputError, match="reserved"):
        auth.create("x", LOCAL_OWNER)


def test_loopback_rule() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.1", "example.com", "::"]))
    check_bind("127.0.0.1", keys_exist=False)
    check_bind("0.0.0.0", keys_exist=True)
    with pytest.raises(UserInputError, match=r"refusing to listen on 0\.0\.0\.0"):
        check_bind("0.0.0.0", keys_exist=False)
