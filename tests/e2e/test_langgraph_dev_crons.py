"""The cron scenario against Shipyard's server and the official ``langgraph dev``: payload
keys, values that do not depend on ids or clocks, and status codes of every cron route,
including a real firing. Opt-in like ``test_langgraph_dev_compat.py`` (``SHIPYARD_LANGGRAPH_DEV``
names a ``langgraph`` executable from a venv with ``langgraph-cli[inmem]``).

Every difference is either fixed or listed in ``DELIBERATE`` (and in
``docs/server-compatibility.md``); a new one, or a listed one that has gone away, fails the
test with the whole list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError

from shipyard.server import ServerOptions
from tests.e2e.langgraph_dev import langgraph_dev, langgraph_executable

pytestmark = [
    pytest.mark.langgraph_dev,
    pytest.mark.slow,
    pytest.mark.skipif(
        langgraph_executable() is None,
        reason="set SHIPYARD_LANGGRAPH_DEV to a langgraph executable with langgraph-cli[inmem]",
    ),
]

DELIBERATE: dict[str, str] = {
    "cron.keys": "crons also carry last_error: why the latest due firing made no run",
    "thread_cron.keys": "crons also carry last_error",
    "updated.keys": "crons also carry last_error",
    "search.keys": "crons also carry last_error",
    "errors.never_fires": "a schedule that never fires is a 422 naming schedule (dev: 400)",
}
"""Observation → why Shipyard differs (mirrors docs/server-compatibility.md)."""

MISSING = "2b5f6b8e-0000-4000-8000-000000000002"
Observations = dict[str, Any]


def keys(data: Any) -> Any:
    return sorted(data) if isinstance(data, dict) else type(data).__name__


async def status_of(call: Any) -> int:
    """The HTTP status of an SDK call (200 when it succeeded)."""
    try:
        await call
    except APIStatusError as err:
        return int(err.response.status_code)
    return 200


async def _fired(sdk: LangGraphClient, mine: set[str], timeout_s: float = 30.0) -> Any:
    """The first ended run on a thread not in ``mine`` (one a cron made)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for thread in await sdk.threads.search(limit=100):
            if thread["thread_id"] in mine:
                continue
            runs = await sdk.runs.list(thread["thread_id"])
            if runs and runs[0]["status"] == "success":
                return runs[0]
        await asyncio.sleep(0.2)
    return None


async def _errors(sdk: LangGraphClient, http: httpx.AsyncClient, cid: str) -> Observations:
    crons = sdk.crons
    return {
        "bad_schedule": await status_of(crons.create("probe_chain", schedule="bogus")),
        "never_fires": await status_of(crons.create("probe_chain", schedule="0 0 31 2 *")),
        "bad_timezone": await status_of(
            crons.create("probe_chain", schedule="* * * * *", timezone="Mars/X")
        ),
        "unknown_graph": await status_of(crons.create("nope", schedule="* * * * *")),
        "unknown_assistant": await status_of(crons.create(MISSING, schedule="* * * * *")),
        "unknown_thread": await status_of(
            crons.create_for_thread(MISSING, "probe_chain", schedule="* * * * *")
        ),
        "bad_stream_mode": await status_of(
            crons.create("probe_chain", schedule="* * * * *", stream_mode="nonsense")
        ),
        "get_not_uuid": (await http.get("/runs/crons/not-a-uuid")).status_code,
        "get_missing": (await http.get(f"/runs/crons/{MISSING}")).status_code,
        "patch_empty": (await http.patch(f"/runs/crons/{cid}", json={})).status_code,
        "patch_bad_schedule": await status_of(crons.update(cid, schedule="61 * * * *")),
        "patch_missing": await status_of(crons.update(MISSING, enabled=False)),
        "delete_missing": await status_of(crons.delete(MISSING)),
        "bad_sort": (
            await http.post("/runs/crons/search", json={"sort_by": "schedule"})
        ).status_code,
    }


async def crons_scenario(sdk: LangGraphClient, url: str) -> Observations:
    """Every cron route once, and one real firing of a stateless cron kept on its thread."""
    tid = (await sdk.threads.create())["thread_id"]
    seen: Observations = {}
    cron = await sdk.crons.create(
        "probe_chain",
        schedule="* * * * * *",
        input={"count": 0},
        metadata={"job": "t"},
        on_run_completed="keep",
    )
    seen["cron.keys"] = keys(cron)
    seen["cron.payload.keys"] = keys(cron["payload"])
    seen["cron.values"] = [cron[k] for k in ("thread_id", "schedule", "on_run_completed")]
    seen["cron.configurable_cron_id"] = (
        cron["payload"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    )
    run = await _fired(sdk, {tid})
    seen["fired.run.keys"] = keys(run)
    # (the rest of a run's metadata is compared, for every run, by test_langgraph_dev_compat)
    seen["fired.values"] = run and [run["status"], run["metadata"].get("job")]
    seen["fired.state"] = run and (await sdk.threads.get_state(run["thread_id"]))["values"]
    await sdk.crons.delete(cron["cron_id"])

    thread_cron = await sdk.crons.create_for_thread(tid, "probe_chain", schedule="0 0 1 1 *")
    seen["thread_cron.keys"] = keys(thread_cron)
    seen["thread_cron.payload.keys"] = keys(thread_cron["payload"])
    seen["thread_cron.on_run_completed"] = thread_cron["on_run_completed"]
    cid = thread_cron["cron_id"]
    updated = await sdk.crons.update(cid, enabled=False, metadata={"b": 2}, end_time=None)
    seen["updated.keys"] = keys(updated)
    seen["updated.payload.keys"] = keys(updated["payload"])
    seen["updated.values"] = [updated["enabled"], updated["metadata"], updated["end_time"]]
    found = await sdk.crons.search(thread_id=tid)
    seen["search.keys"] = [keys(c) for c in found]
    seen["search.select"] = await sdk.crons.search(select=["schedule", "enabled"])
    seen["count"] = await sdk.crons.count(thread_id=tid)
    async with httpx.AsyncClient(base_url=url) as http:
        page = await http.post("/runs/crons/search", json={"limit": 1})
        seen["search.headers"] = sorted(h for h in page.headers if h.startswith("x-pagination"))
        seen["get"] = (await http.get(f"/runs/crons/{cid}")).status_code
        seen["errors"] = await _errors(sdk, http, cid)
    seen["delete"] = await status_of(sdk.crons.delete(cid))
    seen["after_delete"] = await sdk.crons.count()
    return seen


@pytest.fixture(scope="module")
def dev_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    executable = langgraph_executable()
    assert executable is not None
    workdir: Path = tmp_path_factory.mktemp("langgraph-dev-crons")
    with langgraph_dev(executable, workdir, environ={"CRON_SCHEDULER_SLEEP_TIME": "1"}) as url:
        yield url


async def test_crons_same_answers(start_server, make_client, dev_url) -> None:
    ours_server = start_server(ServerOptions(cron_poll_s=0.2))
    ours = await crons_scenario(make_client(ours_server.url), ours_server.url)
    theirs = await crons_scenario(make_client(dev_url), dev_url)
    found = {}
    for name in sorted(set(ours) | set(theirs)):
        if name == "errors":
            for what in sorted(set(ours[name]) | set(theirs[name])):
                if ours[name].get(what) != theirs[name].get(what):
                    found[f"errors.{what}"] = (ours[name].get(what), theirs[name].get(what))
        elif ours.get(name) != theirs.get(name):
            found[name] = (ours.get(name), theirs.get(name))
    unexpected = {k: v for k, v in found.items() if k not in DELIBERATE}
    gone = sorted(set(DELIBERATE) - set(found))
    assert unexpected == {} and gone == [], (unexpected, gone)
