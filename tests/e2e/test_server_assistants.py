"""Assistants, graph drawing and schemas through the official SDK."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from shipyard.server.stores.graphs import default_assistant_id


async def test_assistant_lifecycle_and_versions(server, client) -> None:
    sdk = client()
    made = await sdk.assistants.create(
        "probe_chain", config={"tags": ["a"]}, metadata={"team": "x"}, name="mine"
    )
    aid = made["assistant_id"]
    assert (made["version"], made["graph_id"], made["name"]) == (1, "probe_chain", "mine")
    with pytest.raises(ConflictError):
        await sdk.assistants.create("probe_chain", assistant_id=aid)
    same = await sdk.assistants.create("probe_chain", assistant_id=aid, if_exists="do_nothing")
    assert same["assistant_id"] == aid and same["version"] == 1

    updated = await sdk.assistants.update(aid, metadata={"stage": "b"}, name="renamed")
    assert updated["version"] == 2
    assert updated["metadata"] == {"team": "x", "stage": "b"}
    assert updated["config"] == {"tags": ["a"]}
    versions = await sdk.assistants.get_versions(aid)
    assert [v["version"] for v in versions] == [2, 1]
    assert [v["name"] for v in versions] == ["renamed", "mine"]
    back = await sdk.assistants.set_latest(aid, 1)
    assert (back["version"], back["name"], back["metadata"]) == (1, "mine", {"team": "x"})
    assert (await sdk.assistants.get(aid))["name"] == "mine"

    found = await sdk.assistants.search(metadata={"team": "x"})
    assert [a["assistant_id"] for a in found] == [aid]
    assert await sdk.assistants.count(graph_id="probe_chain") == 2  # default + mine
    page = await sdk.assistants.search(limit=1, response_format="object")
    assert len(page["assistants"]) == 1 and page["next"] == "1"

    await sdk.assistants.delete(aid)
    with pytest.raises(NotFoundError) as gone:
        await sdk.assistants.get(aid)
    assert gone.value.response.json() == {"detail": f"assistant {aid} not found"}


async def test_default_assistants_are_read_only_and_unknown_graphs_refused(server, client) -> None:
    sdk = client()
    default = default_assistant_id("probe_interrupt")
    by_graph = await sdk.assistants.get("probe_interrupt")
    assert by_graph["assistant_id"] == default
    with pytest.raises(ConflictError) as frozen:
        await sdk.assistants.update(default, name="mine now")
    assert "default assistant" in frozen.value.response.json()["detail"]
    with pytest.raises(ConflictError):
        await sdk.assistants.delete("probe_interrupt")
    with pytest.raises(UnprocessableEntityError) as unknown:
        await sdk.assistants.create("no_such_graph")
    detail = unknown.value.response.json()["detail"]
    assert "no_such_graph" in detail
    assert "probe_chain, probe_chat, probe_interrupt, shipyard" in detail
    assert await sdk.assistants.count() == 4


async def test_graph_drawing_schemas_and_subgraphs(server, client) -> None:
    sdk = client()
    drawn = await sdk.assistants.get_graph("probe_interrupt")
    assert [n["id"] for n in drawn["nodes"]] == ["__start__", "prepare", "ask", "finish", "__end__"]
    assert drawn["nodes"][1]["data"] == {"name": "prepare"}  # no class path, as the official
    assert {(e["source"], e["target"]) for e in drawn["edges"]} == {
        ("__start__", "prepare"),
        ("prepare", "ask"),
        ("ask", "finish"),
        ("finish", "__end__"),
    }
    shipyard = await sdk.assistants.get_graph("shipyard", xray=True)
    assert {"intake", "plan", "approve_plan", "validate", "finalize"} <= {
        n["id"] for n in shipyard["nodes"]
    }
    assert any(e.get("conditional") for e in shipyard["edges"])

    schemas = await sdk.assistants.get_schemas(default_assistant_id("probe_chain"))
    assert schemas["graph_id"] == "probe_chain"
    assert set(schemas["input_schema"]["properties"]) == {"count", "visited"}
    assert schemas["state_schema"]["title"] == "probe_chain_state"
    count = {"default": None, "title": "Count", "type": "integer"}
    assert schemas["state_schema"]["properties"]["count"] == count
    assert schemas["config_schema"] == {}  # no configurable declared
    run_schemas = await sdk.assistants.get_schemas("shipyard")
    assert {"goal", "repo"} <= set(run_schemas["input_schema"]["properties"])
    assert await sdk.assistants.get_subgraphs("probe_chain") == {}

    async with httpx.AsyncClient(base_url=server.url) as http:
        bad = await http.get(f"/assistants/{default_assistant_id('probe_chain')}/graph?xray=maybe")
    assert bad.status_code == 422 and bad.json()["detail"].startswith("xray:")
