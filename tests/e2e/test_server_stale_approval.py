"""Over the API, deciding a changes approval always makes progress when the workspace changed
while the run waited: the current request's hash gets a new request back (its ``refused``
says why in words), a decision for an older hash is a 409, and a rejection rejects whatever
hash it carries. The approvals table records only decisions that took effect."""

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

SIGN_OFF = {"approvals": {"plan": "never", "changes": "always"}}


def _statuses(settings: Settings, tid: str) -> list[str]:
    engine = make_engine(settings.database_url or "")
    try:
        return [a.status for a in RunStore(engine).approvals(tid)]
    finally:
        engine.dispose()


async def test_api_decisions_after_a_workspace_edit_progress_and_reject_rejects(
    start_server: Any, make_client: Any, settings: Settings, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {
                "label": "e2e",
                "planner": [plan_reply(("s1", "write a note"))],
                "developer": {
                    "s1/1": [call("write_file", path="note.txt", content="hi\n"), finish()]
                },
            }
        )
    )
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]
    goal = {"goal": "add a note", "repo": str(repo), "policy": SIGN_OFF}
    await sdk.runs.wait(tid, "shipyard", input=goal)
    first = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
    assert first["kind"] == "changes"
    (settings.workspaces / tid / "note.txt").write_text("edited by hand\n")

    approve = {"decision": "approve", "by": "t", "content_hash": first["content_hash"]}
    await sdk.runs.wait(tid, "shipyard", command={"resume": approve})
    again = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
    assert again["content_hash"] != first["content_hash"]
    assert "+edited by hand" in again["payload"]["diff"]
    assert "the workspace changed since the request was shown: note.txt" in again["refused"]
    assert (await sdk.threads.get(tid))["status"] == "interrupted"
    assert _statuses(settings, tid) == ["superseded", "refused", "pending"]

    with pytest.raises(httpx.HTTPStatusError) as stale:
        await sdk.runs.wait(tid, "shipyard", command={"resume": approve})
    assert stale.value.response.status_code == 409
    assert again["content_hash"] in stale.value.response.json()["detail"]

    reject = {**approve, "decision": "reject", "comment": "no"}
    final = await sdk.runs.wait(tid, "shipyard", command={"resume": reject})
    assert final["status"] == "rejected", final
    assert final["report"]["status"] == "rejected"
    # the stale decision refused with 409 is kept as a refused row, as the CLI keeps it
    assert _statuses(settings, tid) == ["superseded", "refused", "decided", "refused"]
