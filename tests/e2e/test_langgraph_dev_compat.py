"""The same SDK scenarios against Shipyard's server and the official ``langgraph dev``,
comparing event names, payload keys, values of the (deterministic) probe graphs and status
codes. Opt-in: marked ``langgraph_dev`` and skipped unless ``SHIPYARD_LANGGRAPH_DEV`` names a
``langgraph`` executable from a venv with ``langgraph-cli[inmem]`` (see ``langgraph_dev.py``).

Every difference found is either fixed or listed in ``docs/server-compatibility.md`` and in
``DELIBERATE`` below; a new difference fails the test with the whole list.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError

from tests.e2e.compat_details import DETAIL_SCENARIOS, DETAILS_DELIBERATE
from tests.e2e.compat_stream_modes import STREAM_MODE_SCENARIOS
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
    "threads_and_streams.thread.keys": "thread objects also carry error and interrupts",
    "wait_and_join.run.kwargs.keys": "kwargs hold what the worker needs (graph_id, "
    "checkpoint_id/ns, on_disconnect)",
    "interrupt_resume.resume.nothing_pending": "a resume with nothing pending is refused (409)",
    "history.before.checkpoint": "the SDK's checkpoint dict is accepted (dev: 500)",
    "history.before.checkpoint_id": "{checkpoint_id} is accepted (dev: fails after its 500)",
    "history.before.string": "a bare checkpoint id is accepted (dev: 422)",
    "history.metadata.keys": "no LangGraph Platform metadata (langgraph_*, created_by, user_id)",
    "stream_mode_joins.join.messages": "messages/* events of a resumable run are replayed "
    "after Last-Event-ID like every event (dev: sent with ids, never replayed)",
    **DETAILS_DELIBERATE,
}
"""Observation path → why Shipyard differs (mirrors docs/server-compatibility.md; "open"
marks a difference still to be fixed)."""

Observations = dict[str, Any]
Scenario = Callable[[LangGraphClient], Awaitable[Observations]]


def keys(data: Any) -> Any:
    return sorted(data) if isinstance(data, dict) else type(data).__name__


def failure(err: Exception) -> int | str:
    """The status code of a failed call, or the transport error (a server that crashed
    mid-request drops the connection)."""
    response = getattr(err, "response", None)
    return int(response.status_code) if response is not None else type(err).__name__


async def status_of(call: Awaitable[Any]) -> int | str:
    """The HTTP status of an SDK call (200 when it succeeded)."""
    try:
        await call
    except (APIStatusError, httpx.HTTPError) as err:
        return failure(err)
    return 200


async def events(stream: Any) -> list[tuple[str, Any]]:
    """``(event, keys or probe values)`` of each SSE part."""
    seen: list[tuple[str, Any]] = []
    async for part in stream:
        data = part.data
        if part.event == "values":
            seen.append((part.event, {k: v for k, v in data.items() if k != "__interrupt__"}))
            if "__interrupt__" in data:
                seen.append(("values.__interrupt__", [keys(i) for i in data["__interrupt__"]]))
        elif part.event == "updates":
            seen.append((part.event, keys(data)))
            if "__interrupt__" in data:
                seen.append(("updates.__interrupt__", [keys(i) for i in data["__interrupt__"]]))
        else:
            seen.append((part.event, keys(data)))
    return seen


async def threads_and_streams(sdk: LangGraphClient) -> Observations:
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    stream = sdk.runs.stream(
        tid, "probe_chain", input={"count": 0}, stream_mode=["values", "updates"]
    )
    return {
        "thread.keys": keys(thread),
        "thread.status": thread["status"],
        "stream.chain": await events(stream),
        "thread.after": (await sdk.threads.get(tid))["status"],
        "state.keys": keys(await sdk.threads.get_state(tid)),
    }


async def wait_and_join(sdk: LangGraphClient) -> Observations:
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    waited = await sdk.runs.wait(tid, "probe_chain", input={"count": 0})
    run = await sdk.runs.create(tid, "probe_chain", input={"count": 5})
    joined = await sdk.runs.join(tid, run["run_id"])
    done = await sdk.runs.get(tid, run["run_id"])
    listed = await sdk.runs.list(tid)
    return {
        "wait": waited,
        "run.keys": keys(run),
        "run.status_at_create": run["status"],
        "run.kwargs.keys": keys(run["kwargs"]),
        "join": joined,
        "run.final": done["status"],
        "runs.count": len(listed),
        "stateless.wait": await sdk.runs.wait(None, "probe_chain", input={"count": 1}),
    }


async def interrupt_resume(sdk: LangGraphClient) -> Observations:
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    modes = ["values", "updates", "custom"]
    first = await events(
        sdk.runs.stream(tid, "probe_interrupt", input={"topic": "t"}, stream_mode=modes)
    )
    state = await sdk.threads.get_state(tid)
    waiting = await sdk.threads.get(tid)
    resumed = await sdk.runs.wait(tid, "probe_interrupt", command={"resume": "yes"})
    return {
        "stream": first,
        "thread.status": waiting["status"],
        "thread.interrupts": {k: [keys(i) for i in v] for k, v in waiting["interrupts"].items()}
        and "present",
        "state.next": state["next"],
        "state.task.keys": keys(state["tasks"][0]),
        "state.interrupt.keys": [keys(i) for i in state["interrupts"]],
        "state.interrupt.value": state["interrupts"][0]["value"],
        "resume.wait": resumed,
        "thread.after": (await sdk.threads.get(tid))["status"],
        "resume.nothing_pending": await status_of(
            sdk.runs.wait(tid, "probe_interrupt", command={"resume": "again"})
        ),
    }


async def history(sdk: LangGraphClient) -> Observations:
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    await sdk.runs.wait(tid, "probe_chain", input={"count": 0})
    states = await sdk.threads.get_history(tid, limit=100)
    limited = await sdk.threads.get_history(tid, limit=3)
    mark = states[1]["checkpoint"]
    forms = {
        "checkpoint": mark,
        "checkpoint_id": {"checkpoint_id": mark["checkpoint_id"]},
        "configurable": {"configurable": {"checkpoint_id": mark["checkpoint_id"]}},
        "string": mark["checkpoint_id"],
    }
    before: dict[str, Any] = {}
    for form, value in forms.items():
        try:
            found = await sdk.threads.get_history(tid, limit=2, before=value)
            before[form] = [s["values"].get("count") for s in found]
        except (APIStatusError, httpx.HTTPError) as err:
            before[form] = failure(err)
    return {
        "len": len(states),
        "next": [s["next"] for s in states],
        "counts": [s["values"].get("count") for s in states],
        "state.keys": keys(states[0]),
        "metadata.keys": keys(states[0]["metadata"]),
        "checkpoint.keys": keys(states[0]["checkpoint"]),
        "limit": len(limited),
        **{f"before.{form}": found for form, found in before.items()},
    }


async def breakpoints(sdk: LangGraphClient) -> Observations:
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    stopped = await sdk.runs.wait(tid, "probe_chain", input={"count": 0}, interrupt_before=["n3"])
    state = await sdk.threads.get_state(tid)
    status = (await sdk.threads.get(tid))["status"]
    after = await sdk.runs.wait(tid, "probe_chain", input=None, interrupt_after=["n5"])
    finished = await sdk.runs.wait(tid, "probe_chain", input=None)
    return {
        "stopped": stopped,
        "state.next": state["next"],
        "thread.status": status,
        "after": after,
        "finished": finished,
    }


async def errors(sdk: LangGraphClient) -> Observations:
    missing = str(uuid.uuid4())
    thread = await sdk.threads.create()
    tid = thread["thread_id"]
    return {
        "thread.get.missing": await status_of(sdk.threads.get(missing)),
        "run.wait.missing_thread": await status_of(
            sdk.runs.wait(missing, "probe_chain", input={"count": 0})
        ),
        "run.get.missing": await status_of(sdk.runs.get(tid, missing)),
        "assistant.get.missing": await status_of(sdk.assistants.get(missing)),
        "run.unknown_assistant": await status_of(
            sdk.runs.wait(tid, "no_such_graph", input={"count": 0})
        ),
        "thread.create.conflict": await status_of(sdk.threads.create(thread_id=tid)),
        "thread.create.do_nothing": await status_of(
            sdk.threads.create(thread_id=tid, if_exists="do_nothing")
        ),
        "state.missing": await status_of(sdk.threads.get_state(missing)),
    }


def _refs(checkpoint: dict[str, Any]) -> tuple[Any, ...]:
    """Whether a debug checkpoint payload names its own checkpoint, and its parent's."""
    own = checkpoint["checkpoint"]
    same = own["checkpoint_id"] == checkpoint["config"]["configurable"]["checkpoint_id"]
    return same, keys(own), checkpoint["parent_checkpoint"] is None


async def debug_and_joins(sdk: LangGraphClient) -> Observations:
    tid = (await sdk.threads.create())["thread_id"]
    chain = {"count": 0}
    debug = [p async for p in sdk.runs.stream(tid, "probe_chain", input=chain, stream_mode="debug")]
    checkpoints = [
        p.data["payload"]
        for p in debug
        if p.event == "debug" and p.data.get("type") == "checkpoint"
    ]
    stream = sdk.runs.stream(
        tid, "probe_chain", input=chain, stream_mode="updates", stream_resumable=True
    )
    resumable = [p async for p in stream]
    run_id = resumable[0].data["run_id"]
    later = sdk.runs.join_stream(tid, run_id, last_event_id=resumable[2].id)
    after_third = [p async for p in later]
    return {
        "debug.checkpoint.keys": keys(checkpoints[0]),
        "debug.checkpoint.refs": [_refs(c) for c in checkpoints[:2]],
        "resumable.metadata.has_id": resumable[0].id is not None,
        "join.after_id": [(p.event, keys(p.data)) for p in after_third],
        "join.after_id.same_data": [p.data for p in after_third] == [p.data for p in resumable[3:]],
        "join.ended.no_id": [p.event async for p in sdk.runs.join_stream(tid, run_id)],
    }


SCENARIOS: dict[str, Scenario] = {
    "threads_and_streams": threads_and_streams,
    "wait_and_join": wait_and_join,
    "interrupt_resume": interrupt_resume,
    "history": history,
    "breakpoints": breakpoints,
    "errors": errors,
    "debug_and_joins": debug_and_joins,
    **STREAM_MODE_SCENARIOS,
    **DETAIL_SCENARIOS,
}


def differences(ours: Observations, theirs: Observations, prefix: str) -> Iterator[str]:
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            yield f"{prefix}.{key}: shipyard={ours.get(key)!r} dev={theirs.get(key)!r}"


@pytest.fixture(scope="module")
def dev_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    executable = langgraph_executable()
    assert executable is not None
    with langgraph_dev(executable, Path(tmp_path_factory.mktemp("langgraph-dev"))) as url:
        yield url


async def test_same_scenarios_same_answers(server, client, dev_url, make_client) -> None:
    ours_sdk, dev_sdk = client(), make_client(dev_url)
    found: list[str] = []
    for name, scenario in SCENARIOS.items():
        ours = await scenario(ours_sdk)
        theirs = await scenario(dev_sdk)
        found += differences(ours, theirs, name)
    paths = {d.split(":")[0] for d in found}
    new = [d for d in found if d.split(":")[0] not in DELIBERATE]
    stale = sorted(set(DELIBERATE) - paths)
    assert new == [], "undocumented differences:\n" + "\n".join(new)
    assert stale == [], f"listed differences that are gone (update the docs): {stale}"
