"""The outbox sender against real HTTP receivers: signed JSON events a receiver verifies on
its own, Slack messages, retries after 5xx, failures recorded, redirects not followed, and
two senders sharing one outbox without sending anything twice."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from shipyard.notify import emit, load
from shipyard.notify.config import NotifyConfig
from shipyard.notify.outgoing import Outgoing, render_notification
from shipyard.notify.sender import Pool, Sender
from shipyard.notify.signing import verify
from shipyard.store import make_engine, psycopg_conninfo
from tests.receiver import Receiver

pytestmark = pytest.mark.slow  # real senders retrying with real delays

SECRET = "a-test-secret"


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[Pool]:
    conninfo = psycopg_conninfo(db_url)
    kwargs = {"autocommit": True, "row_factory": dict_row}
    async with AsyncConnectionPool(conninfo, kwargs=kwargs, min_size=1, open=False) as opened:
        yield opened


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def config_for(url: str, **env: str) -> NotifyConfig:
    base = {
        "SHIPYARD_NOTIFY_URL": url,
        "SHIPYARD_NOTIFY_SECRET": SECRET,
        "SHIPYARD_PUBLIC_URL": "https://shipyard.example/",
        "SHIPYARD_HOME": "/nonexistent-shipyard-home",
    }
    return load({**base, **env})


def emit_events(db_url: str, config: NotifyConfig, keys: list[str]) -> None:
    engine = make_engine(db_url)
    try:
        for key in keys:
            data = {"run_id": "run-1", "kind": "plan", "summary": "Add a note <now> & then"}
            emit(engine, "approval.requested", data, key=key, owner="alice", config=config)
    finally:
        engine.dispose()


def outbox(db_url: str) -> list[dict]:
    with psycopg.connect(psycopg_conninfo(db_url), row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT key, status, attempts, last_error FROM outbox ORDER BY id"
        ).fetchall()


async def drain_until_settled(sender: Sender, db_url: str) -> list[dict]:
    """Drain until no row is pending (retries wait for their backoff)."""
    deadline = time.monotonic() + 60
    while any(row["status"] == "pending" for row in outbox(db_url)):
        assert time.monotonic() < deadline, outbox(db_url)
        await sender.drain()
        await asyncio.sleep(0.1)
    return outbox(db_url)


async def test_json_events_are_signed_and_verified_by_the_receiver(
    db_url: str, pool: Pool, receiver: Receiver
) -> None:
    config = config_for(receiver.url + "/hook")
    emit_events(db_url, config, ["approval.requested:run-1:i1"])
    sender = Sender(pool, config, {"notify": render_notification})
    try:
        assert await sender.drain() == 1
    finally:
        await sender.aclose()

    [got] = receiver.requests
    stamp, given = got.headers["x-shipyard-timestamp"], got.headers["x-shipyard-signature"]
    # The receiver checks on its own: HMAC-SHA256 over "<timestamp>." + body.
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + got.body, hashlib.sha256)
    assert given == "sha256=" + expected.hexdigest()
    assert verify(SECRET, got.body, stamp, given, now=time.time())
    assert not verify(SECRET, got.body + b" ", stamp, given, now=time.time())  # tampered
    assert not verify("other", got.body, stamp, given, now=time.time())
    assert not verify(SECRET, got.body, stamp, given, now=time.time() + 3600)  # replayed late
    body = got.json()
    assert body["id"] == "approval.requested:run-1:i1" == got.headers["x-shipyard-delivery"]
    assert body["event"] == "approval.requested" == got.headers["x-shipyard-event"]
    assert body["url"] == "https://shipyard.example/ui/runs/run-1"
    assert body["owner"] == "alice" and body["run_id"] == "run-1"
    assert body["data"]["summary"] == "Add a note <now> & then"
    assert got.path == "/hook"
    assert outbox(db_url) == [
        {"key": "approval.requested:run-1:i1", "status": "sent", "attempts": 1, "last_error": None}
    ]


async def test_slack_format_posts_text_with_the_console_link(
    db_url: str, pool: Pool, receiver: Receiver
) -> None:
    config = config_for(receiver.url, SHIPYARD_NOTIFY_FORMAT="slack", SHIPYARD_NOTIFY_SECRET="")
    emit_events(db_url, config, ["k-slack"])
    sender = Sender(pool, config, {"notify": render_notification})
    try:
        await sender.drain()
    finally:
        await sender.aclose()
    [got] = receiver.requests
    assert got.json() == {
        "text": "Run run-1 waits for plan approval: Add a note &lt;now&gt; &amp; then"
        " <https://shipyard.example/ui/runs/run-1|Open in Shipyard>",
        "shipyard_event_id": "k-slack",
    }
    assert "x-shipyard-signature" not in got.headers


async def test_a_500_is_retried_and_the_event_arrives(db_url: str, pool: Pool) -> None:
    receiver = Receiver(answers=[500, 503, 200])
    config = config_for(receiver.url)
    emit_events(db_url, config, ["k-retry"])
    sender = Sender(pool, config, {"notify": render_notification})
    try:
        rows = await drain_until_settled(sender, db_url)
    finally:
        await sender.aclose()
        receiver.close()
    assert rows == [{"key": "k-retry", "status": "sent", "attempts": 3, "last_error": None}]
    assert [r.json()["id"] for r in receiver.requests] == ["k-retry"] * 3


async def test_failures_are_recorded_bounded_and_redirects_not_followed(
    db_url: str, pool: Pool
) -> None:
    always_500 = Receiver(answers=[500])
    not_found = Receiver(answers=[404])
    redirect = Receiver(answers=[302])
    engine = make_engine(db_url)
    try:
        for key, target in (("k500", always_500), ("k404", not_found), ("k302", redirect)):
            config = config_for(target.url, SHIPYARD_NOTIFY_ATTEMPTS="2")
            emit(engine, "run.failed", {"run_id": "r"}, key=key, config=config)
    finally:
        engine.dispose()

    def render(delivery, _config):  # each row to the receiver it was written for
        return render_notification(delivery, config_for(delivery.url))

    sender = Sender(
        pool, config_for(always_500.url, SHIPYARD_NOTIFY_ATTEMPTS="2"), {"notify": render}
    )
    try:
        rows = {row["key"]: row for row in await drain_until_settled(sender, db_url)}
    finally:
        await sender.aclose()
        for receiver in (always_500, not_found, redirect):
            receiver.close()
    assert rows["k500"]["status"] == "failed" and rows["k500"]["attempts"] == 2
    assert rows["k500"]["last_error"] == "gave up after 2 attempts: HTTP 500"
    assert (rows["k404"]["status"], rows["k404"]["attempts"]) == ("failed", 1)
    assert rows["k404"]["last_error"] == "HTTP 404"
    assert rows["k302"]["last_error"] == "HTTP 302 (redirects are not followed)"
    assert len(always_500.requests) == 2
    assert len(not_found.requests) == 1 and len(redirect.requests) == 1


async def test_an_endpoint_this_process_does_not_know_fails_with_the_reason(
    db_url: str, pool: Pool, receiver: Receiver
) -> None:
    emit_events(db_url, config_for(receiver.url), ["k-unknown"])
    elsewhere = load({"SHIPYARD_HOME": "/nonexistent-shipyard-home"})  # no endpoint here
    sender = Sender(pool, elsewhere, {"notify": render_notification})
    try:
        await sender.drain()
    finally:
        await sender.aclose()
    [row] = outbox(db_url)
    assert row["status"] == "failed"
    assert row["last_error"] == "notification endpoint 'env' is not configured in this process"
    assert receiver.requests == []


async def test_two_senders_share_the_outbox_and_send_each_event_once(
    db_url: str, receiver: Receiver
) -> None:
    config = config_for(receiver.url)
    keys = [f"k{i}" for i in range(30)]
    emit_events(db_url, config, keys)
    conninfo = psycopg_conninfo(db_url)
    kwargs = {"autocommit": True, "row_factory": dict_row}
    async with (
        AsyncConnectionPool(conninfo, kwargs=kwargs, min_size=1, open=False) as one,
        AsyncConnectionPool(conninfo, kwargs=kwargs, min_size=1, open=False) as two,
    ):
        senders = [Sender(p, config, {"notify": render_notification}, batch=4) for p in (one, two)]
        try:
            counts = await asyncio.gather(*(s.drain() for s in senders))
        finally:
            for sender in senders:
                await sender.aclose()
    assert sum(counts) == len(keys)
    ids = [json.loads(r.body)["id"] for r in receiver.requests]
    assert sorted(ids) == sorted(keys)  # each exactly once
    assert {row["status"] for row in outbox(db_url)} == {"sent"}


async def test_guarded_requests_go_to_a_checked_address_with_the_hosts_name(
    db_url: str, pool: Pool, receiver: Receiver
) -> None:
    config = config_for(receiver.url, SHIPYARD_WEBHOOK_ALLOW="localhost")
    emit_events(db_url, config, ["k-guarded", "k-refused"])

    def render(delivery, _config):  # as a webhook: a client's URL, by name
        plain = render_notification(delivery, config)
        host = "localhost" if delivery.key == "k-guarded" else "127.0.0.1"
        url = f"http://{host}:{receiver.port}/w"
        return Outgoing(url, plain.body, plain.headers, guarded=True)

    sender = Sender(pool, config, {"notify": render})
    try:
        await sender.drain()
    finally:
        await sender.aclose()
    [got] = receiver.requests
    assert got.headers["host"] == f"localhost:{receiver.port}" and got.path == "/w"
    rows = {row["key"]: row for row in outbox(db_url)}
    assert rows["k-guarded"]["status"] == "sent"
    assert rows["k-refused"]["status"] == "failed"
    assert "127.0.0.1 is a loopback address" in rows["k-refused"]["last_error"]


async def test_settled_rows_are_pruned_after_their_keeping_time(
    db_url: str, pool: Pool, receiver: Receiver
) -> None:
    config = config_for(receiver.url)
    emit_events(db_url, config, ["old-sent", "new-sent", "old-pending"])
    with psycopg.connect(psycopg_conninfo(db_url)) as conn:
        conn.execute("UPDATE outbox SET status = 'sent' WHERE key LIKE '%-sent'")
        conn.execute(
            "UPDATE outbox SET created_at = now() - interval '31 days' WHERE key LIKE 'old-%'"
        )
    sender = Sender(pool, config, {"notify": render_notification})
    try:
        assert await sender.prune() == 1
    finally:
        await sender.aclose()
    assert [row["key"] for row in outbox(db_url)] == ["new-sent", "old-pending"]
