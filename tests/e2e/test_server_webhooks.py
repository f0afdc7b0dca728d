"""Run webhooks over the real server: the run's end is POSTed once with its id and status
(success, error, interrupted), retried after a 500, and addresses the server must not probe
are refused — with a 422 naming the field at creation, or at send time when a name
resolves to one — unless ``SHIPYARD_WEBHOOK_ALLOW`` allows them."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from shipyard.server import ServerOptions
from shipyard.settings import Settings
from shipyard.store import psycopg_conninfo
from tests.e2e.runs_support import GRAPHS, ROOT, effects
from tests.receiver import Receiver

OPTIONS = ServerOptions(graphs=GRAPHS, graphs_base=ROOT)
RUN_FIELDS = (
    "run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status", "metadata",
    "kwargs", "multitask_strategy",
)  # fmt: skip
"""The API's ``Run`` fields, which the official server's webhook body starts from."""
ENDS = ("run_started_at", "run_ended_at", "webhook_sent_at")
"""What it adds to them (ISO-8601), with ``values`` and, for a failed run, ``error``."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def delivery(settings: Settings, run_id: str) -> dict | None:
    assert settings.database_url is not None
    with psycopg.connect(psycopg_conninfo(settings.database_url), row_factory=dict_row) as conn:
        return conn.execute(
            "SELECT status, attempts, last_error FROM outbox WHERE kind = 'webhook' AND key = %s",
            [run_id],
        ).fetchone()


async def settled(settings: Settings, run_id: str) -> dict:
    """The webhook row of ``run_id`` once it is no longer pending."""
    deadline = time.monotonic() + 60
    while True:
        row = delivery(settings, run_id)
        if row is not None and row["status"] != "pending":
            return row
        assert time.monotonic() < deadline, row
        await asyncio.sleep(0.05)


async def test_each_run_end_is_posted_once_with_the_runs_id_and_status(
    start_server, make_client, settings: Settings, receiver: Receiver, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SHIPYARD_WEBHOOK_ALLOW", "127.0.0.0/8")
    running = start_server(OPTIONS)
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]
    hook = receiver.url + "/hooks/run?token=t"
    work = tmp_path / "work"
    work.mkdir()

    ok = await sdk.runs.create(tid, "slow", input={"dir": str(work)}, webhook=hook)
    await sdk.runs.join(tid, ok["run_id"])
    bad = await sdk.runs.create(tid, "slow", input={"dir": str(tmp_path / "no")}, webhook=hook)
    await sdk.runs.join(tid, bad["run_id"])
    held = await sdk.runs.create(tid, "slow", input={"dir": str(work), "hold_s": 60}, webhook=hook)
    deadline = time.monotonic() + 60
    while effects(work).count("hold-start") < 2:  # the first run's, then this one's
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await sdk.runs.cancel(tid, held["run_id"], action="interrupt")
    quiet = await sdk.runs.create(tid, "slow", input={"dir": str(work), "hold_s": 0})  # no hook
    await sdk.runs.join(tid, quiet["run_id"])

    for run in (ok, bad, held):
        assert (await settled(settings, run["run_id"]))["status"] == "sent"
    posted = {r.json()["run_id"]: r for r in receiver.requests}
    assert len(receiver.requests) == 3 == len(posted)  # exactly once per run end
    assert {run_id: r.json()["status"] for run_id, r in posted.items()} == {
        ok["run_id"]: "success",
        bad["run_id"]: "error",
        held["run_id"]: "interrupted",
    }
    body = posted[ok["run_id"]].json()
    assert posted[ok["run_id"]].path == "/hooks/run?token=t"
    assert body["thread_id"] == tid and body["assistant_id"] == ok["assistant_id"]
    assert body["kwargs"]["webhook"] == hook
    assert body["values"]["log"] == ["first", "hold", "last"]
    assert set(RUN_FIELDS) <= set(body) and body["status"] == "success"
    for run_id, posted_run in posted.items():  # each started, then ended, then was sent
        times = [posted_run.json()[name] for name in ("created_at", *ENDS)]
        started, ended, sent = (datetime.fromisoformat(t) for t in times[1:])
        assert datetime.fromisoformat(times[0]) <= started <= ended <= sent, (run_id, times)
    error = posted[bad["run_id"]].json()["error"]
    assert error["error"] == "FileNotFoundError" and str(tmp_path / "no") in error["message"]


async def test_a_stateless_run_is_posted_too(
    start_server, make_client, settings: Settings, receiver: Receiver, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SHIPYARD_WEBHOOK_ALLOW", "127.0.0.1")
    running = start_server(OPTIONS)
    sdk = make_client(running.url)
    values = await sdk.runs.wait(None, "slow", input={"dir": str(tmp_path)}, webhook=receiver.url)
    assert values["log"] == ["first", "hold", "last"]
    deadline = time.monotonic() + 60
    while not receiver.requests:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    [posted] = receiver.requests
    body = posted.json()
    assert (await settled(settings, body["run_id"]))["status"] == "sent"
    assert body["status"] == "success" and body["kwargs"]["temporary"] is True
    assert body["values"]["log"] == ["first", "hold", "last"]


async def test_a_webhook_answered_500_is_sent_again(
    start_server, make_client, settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    receiver = Receiver(answers=[500, 200])
    monkeypatch.setenv("SHIPYARD_WEBHOOK_ALLOW", "127.0.0.1")
    running = start_server(OPTIONS)
    sdk = make_client(running.url)
    try:
        tid = (await sdk.threads.create())["thread_id"]
        run = await sdk.runs.create(tid, "slow", input={"dir": str(tmp_path)}, webhook=receiver.url)
        await sdk.runs.join(tid, run["run_id"])
        row = await settled(settings, run["run_id"])
    finally:
        receiver.close()
    assert row == {"status": "sent", "attempts": 2, "last_error": None}
    assert [r.json()["run_id"] for r in receiver.requests] == [run["run_id"]] * 2
    assert {r.json()["status"] for r in receiver.requests} == {"success"}


REFUSED = (
    "http://127.0.0.1:9/hook",
    "http://localhost:9/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:9/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "ftp://hooks.example.com/hook",
    "/threads",
)


async def test_a_webhook_the_server_must_not_call_is_refused_at_creation(
    start_server, settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("SHIPYARD_WEBHOOK_ALLOW", raising=False)
    running = start_server(OPTIONS)
    async with httpx.AsyncClient(base_url=running.url) as http:
        tid = (await http.post("/threads", json={})).json()["thread_id"]
        for url in REFUSED:
            body = {"assistant_id": "slow", "input": {"dir": str(tmp_path)}, "webhook": url}
            refused = await http.post(f"/threads/{tid}/runs", json=body)
            assert refused.status_code == 422, (url, refused.text)
            assert refused.json()["detail"].startswith("webhook: "), url
            cron = await http.post("/runs/crons", json={**body, "schedule": "* * * * *"})
            assert cron.status_code == 422, (url, cron.text)
            assert cron.json()["detail"].startswith("webhook: "), url
        assert (await http.get(f"/threads/{tid}/runs")).json() == []  # nothing was created
        # Allowed once the operator says so.
        monkeypatch.setenv("SHIPYARD_WEBHOOK_ALLOW", "127.0.0.0/8, ::1")
        for url in ("http://127.0.0.1:9/hook", "http://[::1]:9/hook"):
            body = {"assistant_id": "slow", "input": {"dir": str(tmp_path)}, "webhook": url}
            accepted = await http.post(f"/threads/{tid}/runs", json=body)
            assert accepted.status_code == 200, accepted.text


def loopback_name() -> str | None:
    """A host name (not ``localhost``) that resolves only to non-public addresses here."""
    name = socket.gethostname()
    try:
        infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except OSError:
        return None
    import ipaddress  # noqa: PLC0415

    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return name if addresses and not any(a.is_global for a in addresses) else None


async def test_a_name_resolving_to_a_private_address_is_refused_when_sent(
    start_server, make_client, settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    name = loopback_name()
    if name is None:
        pytest.skip("this machine's host name does not resolve to a non-public address")
    receiver = Receiver(host=socket.getaddrinfo(name, 80)[0][4][0])
    monkeypatch.delenv("SHIPYARD_WEBHOOK_ALLOW", raising=False)
    running = start_server(OPTIONS)
    sdk = make_client(running.url)
    try:
        tid = (await sdk.threads.create())["thread_id"]
        hook = f"http://{name}:{receiver.port}/hook"
        run = await sdk.runs.create(tid, "slow", input={"dir": str(tmp_path)}, webhook=hook)
        await sdk.runs.join(tid, run["run_id"])
        row = await settled(settings, run["run_id"])
    finally:
        receiver.close()
    assert row["status"] == "failed" and row["attempts"] == 1
    assert f"the webhook host {name} (" in row["last_error"]
    assert "SHIPYARD_WEBHOOK_ALLOW" in row["last_error"]
    assert receiver.requests == []
