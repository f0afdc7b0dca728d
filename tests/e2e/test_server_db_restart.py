"""Postgres restarted under load: requests fail fast with 503 while it is down, the server
recovers by itself when it is back, and no run is lost."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from shipyard.server import ServerOptions
from shipyard.settings import Settings
from shipyard.store import ensure_embedded, stop_embedded
from tests.e2e.conftest import RunningServer


@pytest.fixture
def own_postgres() -> Iterator[Path]:
    """An embedded Postgres of this test's own, so it can be stopped without harming others."""
    base = Path(tempfile.mkdtemp(prefix="shipyard-restart-pg-"))
    pgdata = base / "pgdata"
    ensure_embedded(pgdata)
    try:
        yield pgdata
    finally:
        stop_embedded(pgdata)
        shutil.rmtree(base, ignore_errors=True)


async def _wait_until_ok(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        for _ in range(300):
            response = await http.post("/threads/search", json={"limit": 1})
            if response.status_code == 200:
                return
            await asyncio.sleep(0.1)
    pytest.fail("the server did not recover after Postgres came back")


async def test_postgres_restart_gives_503_then_recovers_and_loses_no_run(
    own_postgres: Path,
    tmp_path: Path,
    start_server: Callable[..., RunningServer],
    make_client: Callable[..., LangGraphClient],
) -> None:
    url = ensure_embedded(own_postgres)
    settings = Settings(home=tmp_path / "home", database_url=url)
    server = start_server(ServerOptions(workers=2), settings)
    client = make_client(server.url)
    threads = [await client.threads.create() for _ in range(6)]
    runs = [
        await client.runs.create(t["thread_id"], "probe_chain", input={"count": 0}) for t in threads
    ]

    stop_embedded(own_postgres)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        down = await http.post("/threads", json={})
        listed = await http.post("/threads/search", json={})
    assert down.status_code == 503 and listed.status_code == 503
    assert "database is unavailable" in down.json()["detail"]
    assert down.headers.get("retry-after")

    ensure_embedded(own_postgres)
    await _wait_until_ok(server.url)
    for thread, run in zip(threads, runs, strict=True):
        await asyncio.wait_for(client.runs.join(thread["thread_id"], run["run_id"]), 120)
        done = await client.runs.get(thread["thread_id"], run["run_id"])
        assert done["status"] == "success", done
        state = await client.threads.get_state(thread["thread_id"])
        assert state["values"]["count"] == 10
    created_after = await client.threads.create()
    assert created_after["thread_id"]
