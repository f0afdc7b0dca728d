"""API keys, owners, CORS, body limit and the loopback rule — against the real server."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from langgraph_sdk.errors import AuthenticationError, NotFoundError

from shipyard.server import ServerOptions


async def test_keys_required_once_a_key_exists(server, client) -> None:
    anonymous = client()
    assert await anonymous.threads.count() == 0  # no keys yet: single owner "local"
    _, secret = server.state.auth.create("laptop", "alice")
    with pytest.raises(AuthenticationError) as missing:
        await anonymous.threads.count()
    assert missing.value.response.json()["detail"].startswith("missing API key")
    with pytest.raises(AuthenticationError) as wrong:
        await client("sy_not-a-key").threads.count()
    assert wrong.value.response.json() == {"detail": "invalid or revoked API key"}
    alice = client(secret)
    assert await alice.threads.count() == 0
    [key] = server.state.auth.list()
    server.state.auth.revoke(key.id)
    with pytest.raises(AuthenticationError):
        await alice.threads.count()
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/ok")).status_code == 200  # health needs no key


async def test_other_owners_get_404_on_every_route(server, client) -> None:
    _, alice_key = server.state.auth.create("a", "alice")
    _, bob_key = server.state.auth.create("b", "bob")
    alice, bob = client(alice_key), client(bob_key)
    thread = await alice.threads.create(graph_id="probe_chain", metadata={"who": "alice"})
    tid = thread["thread_id"]
    written = await alice.threads.update_state(tid, {"count": 3}, as_node="n2")
    assistant = await alice.assistants.create("probe_chain", name="alice's")
    aid = assistant["assistant_id"]

    attempts = {
        "get thread": bob.threads.get(tid),
        "patch thread": bob.threads.update(tid, metadata={"x": 1}),
        "delete thread": bob.threads.delete(tid),
        "copy thread": bob.threads.copy(tid),
        "state": bob.threads.get_state(tid),
        "state at checkpoint": bob.threads.get_state(tid, checkpoint=written["checkpoint"]),
        "history": bob.threads.get_history(tid),
        "update state": bob.threads.update_state(tid, {"count": 9}, as_node="n2"),
        "get assistant": bob.assistants.get(aid),
        "patch assistant": bob.assistants.update(aid, name="bob's"),
        "delete assistant": bob.assistants.delete(aid),
        "versions": bob.assistants.get_versions(aid),
        "set latest": bob.assistants.set_latest(aid, 1),
        "graph": bob.assistants.get_graph(aid),
        "schemas": bob.assistants.get_schemas(aid),
        "subgraphs": bob.assistants.get_subgraphs(aid),
    }
    statuses = {}
    for name, call in attempts.items():
        try:
            await call
            statuses[name] = 200
        except (NotFoundError, httpx.HTTPStatusError) as err:
            statuses[name] = err.response.status_code
    assert statuses == dict.fromkeys(attempts, 404)
    assert await bob.threads.search() == []
    assert await bob.threads.count() == 0
    assert [a["assistant_id"] for a in await bob.assistants.search(graph_id="probe_chain")] == [
        server.state.graphs.get("probe_chain").assistant_id
    ]
    # Nothing of alice's changed.
    assert (await alice.threads.get(tid))["metadata"] == {"who": "alice", "graph_id": "probe_chain"}
    assert (await alice.threads.get_state(tid))["values"]["count"] == 3
    assert (await alice.assistants.get(aid))["name"] == "alice's"


async def test_cors_and_private_network_preflight(server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        preflight = await http.options(
            "/threads/search",
            headers={
                "Origin": "https://smith.langchain.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key,content-type",
                "Access-Control-Request-Private-Network": "true",
            },
        )
        simple = await http.post(
            "/threads/search", json={}, headers={"Origin": "https://smith.langchain.com"}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-private-network"] == "true"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-origin"] == "*"
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert {"x-pagination-total", "x-pagination-next", "content-location"} <= set(
        h.strip() for h in exposed.split(",")
    )


async def test_oversized_bodies_get_413_and_change_nothing(start_server) -> None:
    server = start_server(ServerOptions(max_body_bytes=2048))
    big = {"metadata": {"blob": "x" * 4096}}
    async with httpx.AsyncClient(base_url=server.url) as http:
        declared = await http.post("/threads", json=big)

        async def chunks():
            yield b'{"metadata": {"blob": "'
            for _ in range(8):
                yield b"y" * 512
            yield b'"}}'

        chunked = await http.post(
            "/threads", content=chunks(), headers={"content-type": "application/json"}
        )
        small = await http.post("/threads", json={"metadata": {"ok": True}})
        count = await http.post("/threads/count", json={})
    assert declared.status_code == 413
    assert declared.json() == {"detail": "request body larger than the limit of 2048 bytes"}
    assert chunked.status_code == 413
    assert chunked.json() == declared.json()
    assert small.status_code == 200
    assert count.json() == 1


def _cli(args: list[str], settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SHIPYARD_HOME": str(settings.home),
    }
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "shipyard.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_serve_refuses_non_loopback_without_keys_and_keys_cli(settings) -> None:
    refused = _cli(["serve", "--host", "0.0.0.0", "--port", "0"], settings)
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in refused.stderr
    assert "shipyard keys create" in refused.stderr

    created = _cli(["keys", "create", "ci", "--owner", "team-a"], settings)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("sy_")
    listed = _cli(["keys", "list"], settings)
    assert "team-a" in listed.stdout and secret not in listed.stdout
    reserved = _cli(["keys", "create", "x", "--owner", "system"], settings)
    assert reserved.returncode == 2 and "reserved" in reserved.stderr
    key_id = created.stdout.split()[2]
    revoked = _cli(["keys", "revoke", key_id], settings)
    assert revoked.returncode == 0 and key_id in revoked.stdout
    unknown = _cli(["keys", "revoke", "nope"], settings)
    assert unknown.returncode == 2 and "no API key with id 'nope'" in unknown.stderr
