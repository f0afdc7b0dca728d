"""Notifications of a whole Shipyard run over the API (scripted model, real git): the plan
approval request reaches the configured endpoint with the console link and the summary,
and so does the run's completion — each once, signed."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import time
from pathlib import Path

from shipyard.settings import Settings
from tests.e2e.runs_support import make_repo, note_script
from tests.receiver import Receiver

SECRET = "run-events-secret"


async def test_a_run_announces_its_approval_request_and_its_completion(
    start_server, make_client, settings: Settings, tmp_path: Path, monkeypatch
) -> None:
    receiver = Receiver()
    monkeypatch.setenv("SHIPYARD_NOTIFY_URL", receiver.url)
    monkeypatch.setenv("SHIPYARD_NOTIFY_SECRET", SECRET)
    monkeypatch.setenv("SHIPYARD_PUBLIC_URL", "https://shipyard.example")
    repo = make_repo(tmp_path)
    running = start_server(None, dataclasses.replace(settings, model_script=note_script(tmp_path)))
    sdk = make_client(running.url)
    try:
        tid = (await sdk.threads.create())["thread_id"]
        goal = {"goal": "add a note", "repo": str(repo)}
        await sdk.runs.wait(tid, "shipyard", input=goal)
        request = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
        decision = {"decision": "approve", "by": "t", "content_hash": request["content_hash"]}
        final = await sdk.runs.wait(tid, "shipyard", command={"resume": decision})
        while (await sdk.threads.get_state(tid))["interrupts"]:  # the changes, if asked
            request = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
            decision = {**decision, "content_hash": request["content_hash"]}
            final = await sdk.runs.wait(tid, "shipyard", command={"resume": decision})
        assert final["status"] == "completed", final
        deadline = time.monotonic() + 60
        while not any(r.json()["event"] == "run.completed" for r in receiver.requests):
            assert time.monotonic() < deadline, [r.json() for r in receiver.requests]
            await asyncio.sleep(0.05)
    finally:
        receiver.close()

    events = [r.json() for r in receiver.requests]
    for request_ in receiver.requests:
        stamp = request_.headers["x-shipyard-timestamp"]
        mac = hmac.new(SECRET.encode(), stamp.encode() + b"." + request_.body, hashlib.sha256)
        assert request_.headers["x-shipyard-signature"] == "sha256=" + mac.hexdigest()
    assert len({e["id"] for e in events}) == len(events)  # nothing sent twice
    first = events[0]
    assert first["event"] == "approval.requested"
    assert first["data"]["kind"] == "plan" and first["data"]["summary"]
    assert first["run_id"] == tid
    assert first["url"] == f"https://shipyard.example/ui/runs/{tid}"
    assert all(e["event"] == "approval.requested" for e in events[:-1])
    done = events[-1]
    assert done["event"] == "run.completed"
    assert done["data"]["status"] == "completed" and done["data"]["goal"] == "add a note"
    assert done["data"]["branch"] == f"shipyard/{tid}"
