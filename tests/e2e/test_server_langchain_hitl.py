"""LangChain's human-in-the-loop shape over the API, through the Python SDK: Shipyard's
interrupts carry ``action_requests``/``review_configs`` next to every ``ApprovalRequest``
field, and a resume in that shape (``{"decisions": [...]}``, or the older Agent Inbox list)
is bound to the interrupt it answers — an answer to an interrupt that is no longer pending,
or an edit carrying an old content hash, is refused with 409 and nothing is applied."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.settings import Settings
from shipyard.store import RunStore, make_engine
from tests.e2e.runs_support import make_repo
from tests.support import call, finish, plan_reply

SIGN_OFF = {"approvals": {"plan": "always"}}


def _approvals(settings: Settings, tid: str) -> list[tuple[str, str | None, str | None]]:
    engine = make_engine(settings.database_url or "")
    try:
        return [
            (a.status, a.decision.decision if a.decision else None, a.decided_by)
            for a in RunStore(engine).approvals(tid)
        ]
    finally:
        engine.dispose()


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "script.json"
    note = [call("write_file", path="note.txt", content="hi\n"), finish()]
    script.write_text(
        json.dumps(
            {
                "planner": [plan_reply(("s1", "write a note")), plan_reply(("s1", "a note"))],
                "developer": {"s1/1": note},
            }
        )
    )
    return script


async def _pending(sdk: Any, tid: str) -> dict[str, Any]:
    interrupts = (await sdk.threads.get_state(tid))["interrupts"]
    assert len(interrupts) == 1, interrupts
    return dict(interrupts[0])


async def _refused(sdk: Any, tid: str, resume: Any) -> httpx.Response:
    with pytest.raises(httpx.HTTPStatusError) as err:
        await sdk.runs.wait(tid, "shipyard", command={"resume": resume})
    return err.value.response


async def test_langchain_shaped_resume_is_bound_to_its_interrupt(
    start_server: Any, make_client: Any, settings: Settings, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    running = start_server(None, dataclasses.replace(settings, model_script=_script(tmp_path)))
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]
    goal = {"goal": "add a note", "repo": str(repo), "policy": SIGN_OFF}
    await sdk.runs.wait(tid, "shipyard", input=goal)

    first = await _pending(sdk, tid)
    value = first["value"]
    assert value["kind"] == "plan" and value["content_hash"].startswith("sha256:")
    assert set(value) >= {"run_id", "summary", "risk", "payload"}
    (action,) = value["action_requests"]
    assert action["name"] == "approve_plan"
    assert action["args"]["content_hash"] == value["content_hash"]
    assert "write a note" in action["description"]
    assert value["review_configs"] == [
        {"action_name": "approve_plan", "allowed_decisions": ["approve", "edit", "reject"]}
    ]

    # Bad shapes: nothing applied, the same interrupt still pending.
    assert (await _refused(sdk, tid, {"decisions": []})).status_code == 400
    assert (await _refused(sdk, tid, {"decisions": [{"type": "maybe"}]})).status_code == 400
    assert (await _pending(sdk, tid))["id"] == first["id"]

    # Revise through an edit (agent-chat-ui): a new plan is asked for under a new interrupt.
    edited = {**action["args"], "comment": "call it a note"}
    edit = {"type": "edit", "edited_action": {"name": "approve_plan", "args": edited}}
    await sdk.runs.wait(tid, "shipyard", command={"resume": {"decisions": [edit]}})
    second = await _pending(sdk, tid)
    assert second["id"] != first["id"]
    assert second["value"]["payload"]["round"] == 2

    # Answers to the interrupt that was revised away are refused, nothing is applied.
    stale = await _refused(sdk, tid, {first["id"]: {"decisions": [{"type": "approve"}]}})
    assert stale.status_code == 409 and second["id"] in stale.json()["detail"]
    stale_edit = await _refused(sdk, tid, {"decisions": [edit]})
    assert stale_edit.status_code == 409
    assert second["value"]["content_hash"] in stale_edit.json()["detail"]
    assert (await _pending(sdk, tid))["id"] == second["id"]

    # The older Agent Inbox shape, naming the pending interrupt, approves it.
    accept = {second["id"]: [{"type": "accept", "args": None}]}
    final = await sdk.runs.wait(tid, "shipyard", command={"resume": accept})
    assert final["status"] == "completed", final
    decided = [a for a in _approvals(settings, tid) if a[0] == "decided"]
    assert decided == [("decided", "revise", "local"), ("decided", "approve", "local")]
