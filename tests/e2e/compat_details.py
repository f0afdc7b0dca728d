"""Scenarios of the ``langgraph dev`` comparison (``test_langgraph_dev_compat.py``) for the
details of responses: graph drawings, schemas, the order of assistants, thread interrupts,
copies and new states, checkpoint references and metadata, run metadata and kwargs,
pagination headers and CORS. Each server gets the same calls on fresh threads and
assistants (the servers hold other scenarios' data, so counts are observed as relations)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph_sdk.client import LangGraphClient

from shipyard.server.stores.graphs import default_assistant_id
from tests.e2e.compat_stream_modes import PLATFORM_METADATA

Observations = dict[str, Any]
STUDIO = "https://smith.langchain.com"


async def drawings_and_schemas(sdk: LangGraphClient) -> Observations:
    drawn = await sdk.assistants.get_graph(default_assistant_id("probe_interrupt"))
    marker = uuid.uuid4().hex
    for name in ("first", "second"):
        await sdk.assistants.create("probe_chain", name=name, metadata={"marker": marker})
    mine = await sdk.assistants.search(metadata={"marker": marker})
    system = await sdk.assistants.search(metadata={"created_by": "system"}, limit=100)
    by_graph = await sdk.http.client.get("/assistants/probe_chain")
    return {
        "assistants.get.graph_id": by_graph.status_code,
        "graph.node_data": [node.get("data") for node in drawn["nodes"]],
        "schemas.probe_chain": await sdk.assistants.get_schemas(
            default_assistant_id("probe_chain")
        ),
        "schemas.probe_interrupt": await sdk.assistants.get_schemas(
            default_assistant_id("probe_interrupt")
        ),
        "assistants.order.created": [a["name"] for a in mine],
        "assistants.order.system": [
            a["graph_id"] for a in system if a["graph_id"].startswith("probe_")
        ],
    }


async def thread_details(sdk: LangGraphClient) -> Observations:
    fresh = await sdk.threads.create()
    tid = (await sdk.threads.create(metadata={"owner_tag": "t"}))["thread_id"]
    await sdk.runs.wait(tid, "probe_interrupt", input={"topic": "d"})
    thread: Any = await sdk.threads.get(tid)
    copied: Any = await sdk.threads.copy(tid)  # type: ignore[func-returns-value]  # SDK: None
    again = await sdk.threads.get(copied["thread_id"])
    head: Any = await sdk.threads.get_state(tid)
    by_id: Any = await sdk.http.get(f"/threads/{tid}/state/{head['checkpoint']['checkpoint_id']}")
    return {
        "thread.interrupts.items": [
            sorted(item) for items in thread["interrupts"].values() for item in items
        ],
        "copy.copied": (sorted(copied), copied.get("values"), again["status"]),
        "state.new.metadata": (await sdk.threads.get_state(fresh["thread_id"]))["metadata"],
        "state.checkpoint.thread_metadata": "owner_tag" in head["metadata"],
        "state.by_id.refs": (sorted(by_id["checkpoint"]), sorted(by_id["parent_checkpoint"])),
    }


async def run_details(sdk: LangGraphClient) -> Observations:
    tid = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(tid, "probe_chain", input={"count": 0}, metadata={"mine": 1})
    await sdk.runs.join(tid, run["run_id"])
    done: Any = await sdk.runs.get(tid, run["run_id"])
    return {
        "run.metadata": sorted(set(done["metadata"]) - PLATFORM_METADATA),
        "run.kwargs.durability": done["kwargs"].get("durability"),
    }


async def http_details(sdk: LangGraphClient) -> Observations:
    http = sdk.http.client
    for _ in range(3):
        await sdk.threads.create()
    count = await sdk.threads.count()
    page = await http.post("/threads/search", json={"limit": 1}, headers={"Origin": STUDIO})
    asks = {"Origin": STUDIO, "Access-Control-Request-Method": "POST"}
    asks["Access-Control-Request-Headers"] = "content-type,x-api-key"
    plain = await http.options("/threads/search", headers=asks)
    private = {**asks, "Access-Control-Request-Private-Network": "true"}
    network = await http.options("/threads/search", headers=private)
    allowed = sorted(k for k in plain.headers if k.startswith("access-control-"))
    return {
        "pagination.next": page.headers.get("x-pagination-next"),
        "pagination.total_is_count": page.headers.get("x-pagination-total") == str(count),
        "cors.expose": page.headers.get("access-control-expose-headers"),
        "cors.preflight": (plain.status_code, allowed, network.status_code),
    }


DETAILS_DELIBERATE: dict[str, str] = {
    "thread_details.copy.copied": "a copy carries the source's values, interrupts and status "
    "(dev: a bare idle thread without values until its next run)",
    "thread_details.state.by_id.refs": "every checkpoint reference names its checkpoint_ns "
    "(dev drops it from GET /state/{checkpoint_id}'s own checkpoint)",
    "thread_details.state.checkpoint.thread_metadata": "checkpoint metadata records the run's "
    "(its metadata, run, graph, assistant); the thread's metadata stays on the thread",
    "run_details.run.kwargs.durability": "kwargs record the request as sent: null is the "
    "default durability (async)",
    "run_details.run.metadata": "a run's metadata is what its client sent; its graph and "
    "assistant are the run's assistant_id and kwargs.graph_id",
    "drawings_and_schemas.assistants.get.graph_id": "GET /assistants/{id} also takes a graph "
    "id, naming its default assistant (dev: 422, a UUID is required)",
    "http_details.cors.expose": "Location (sent by both) is exposed to browsers too",
    "http_details.cors.preflight": "Access-Control-Allow-Private-Network answers a preflight "
    "that asks for it (dev: sent on every preflight, and one that asks is refused with 400)",
    "http_details.pagination.total_is_count": "X-Pagination-Total is the number of matches "
    "(dev: offset + page + 1 while more follow)",
}
"""Observation path → why Shipyard differs (merged into the comparison's ``DELIBERATE``)."""


DETAIL_SCENARIOS: dict[str, Callable[[LangGraphClient], Awaitable[Observations]]] = {
    "drawings_and_schemas": drawings_and_schemas,
    "thread_details": thread_details,
    "run_details": run_details,
    "http_details": http_details,
}
