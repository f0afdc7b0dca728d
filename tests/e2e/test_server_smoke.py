"""Smoke: the server starts, answers /ok and /info, and serves default assistants."""

from __future__ import annotations

import gc

import httpx

from shipyard.server.processes.gc_tuning import DEFAULT_THRESHOLD
from shipyard.server.stores.graphs import default_assistant_id


async def test_ok_info_and_default_assistants(server, client) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        ok = await http.get("/ok")
        info = await http.get("/info")
    assert ok.status_code == 200 and ok.json() == {"ok": True, "services": {}}
    assert info.json()["flags"]["assistants"] is True
    sdk = client()
    found = await sdk.assistants.search(limit=10)
    graph_ids = {a["graph_id"] for a in found}
    assert graph_ids == {"shipyard", "probe_chain", "probe_interrupt", "probe_chat"}
    chain = await sdk.assistants.get("probe_chain")
    assert chain["assistant_id"] == default_assistant_id("probe_chain")
    assert chain["metadata"] == {"created_by": "system"}


def test_the_collector_is_tuned_while_the_server_runs(start_server) -> None:
    before = gc.get_threshold()
    assert before != DEFAULT_THRESHOLD  # so the restore below is seen
    running = start_server()
    assert gc.get_threshold() == DEFAULT_THRESHOLD
    assert gc.get_freeze_count() > 0  # what startup made is out of the collector's way
    running.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
