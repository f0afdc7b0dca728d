"""A whole Shipyard run over the API (scripted model, real git, real sandbox): the plan
approval shows up in the stream, the thread state and status; a stale decision is refused
with 409; the right one completes the run with its branch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from shipyard.settings import Settings
from tests.e2e.runs_support import make_repo, note_script
from tests.support import call, finish, git, plan_reply


async def test_shipyard_run_interrupts_refuses_stale_hash_and_completes(
    start_server, make_client, settings: Settings, tmp_path: Path
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

    parts = [
        p
        async for p in sdk.runs.stream(
            tid, "shipyard", input={"goal": "add a note", "repo": str(repo)}, stream_mode="updates"
        )
    ]
    pauses = [p.data["__interrupt__"] for p in parts if "__interrupt__" in (p.data or {})]
    assert pauses, [p.event for p in parts]
    request = pauses[0][0]["value"]
    assert request["kind"] == "plan" and request["content_hash"]
    assert (await sdk.threads.get(tid))["status"] == "interrupted"
    state = await sdk.threads.get_state(tid)
    assert state["interrupts"][0]["value"]["content_hash"] == request["content_hash"]
    assert (await sdk.runs.list(tid))[0]["status"] == "success"

    stale = {"decision": "approve", "by": "t", "content_hash": "sha256:old"}
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await sdk.runs.wait(tid, "shipyard", command={"resume": stale})
    assert refused.value.response.status_code == 409
    assert "sha256:old" in refused.value.response.json()["detail"]
    assert len(await sdk.runs.list(tid)) == 1  # no run was created

    decision = {**stale, "content_hash": request["content_hash"]}
    final = await sdk.runs.wait(tid, "shipyard", command={"resume": decision})
    assert final["status"] == "completed", final
    assert final["branch"] == f"shipyard/{tid}"
    assert git(repo, "show", f"shipyard/{tid}:note.txt") == "hi"
    assert git(repo, "status", "--porcelain") == ""
    assert (await sdk.threads.get(tid))["status"] == "idle"

    # New input on the same thread is refused: the run errors, the first run's state stays.
    with pytest.raises(Exception, match=r"ThreadTakenError: thread .* already holds"):
        await sdk.runs.wait(tid, "shipyard", input={"goal": "another note", "repo": str(repo)})
    assert (await sdk.threads.get_state(tid))["values"]["status"] == "completed"
    assert (await sdk.runs.list(tid))[0]["status"] == "error"


async def test_input_that_failed_intake_can_be_corrected_on_the_same_thread(
    start_server, make_client, settings: Settings, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"label": "e2e", "planner": [plan_reply(("s1", "note"))]}))
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]

    missing = str(tmp_path / "no-such-repo")
    with pytest.raises(Exception, match="no-such-repo: no such directory"):
        await sdk.runs.wait(tid, "shipyard", input={"goal": "g", "repo": missing})
    # Refused before the graph wrote anything. A policy that does not validate fails intake
    # itself: the run ends ``failed`` having created nothing — both take corrected input.
    bad_policy = {"goal": "g", "repo": str(repo), "policy": {"approvals": {"plan": "sometimes"}}}
    failed = await sdk.runs.wait(tid, "shipyard", input=bad_policy)
    assert failed["status"] == "failed" and "approvals" in failed["reason"], failed
    assert not failed.get("branch")
    retried = await sdk.runs.wait(tid, "shipyard", input={"goal": "g", "repo": str(repo)})
    assert "__interrupt__" in retried, retried
    assert retried["__interrupt__"][0]["value"]["kind"] == "plan"
    assert retried["branch"] == f"shipyard/{tid}"


async def test_rerun_from_an_earlier_checkpoint_commits_again_on_the_branch(
    start_server, make_client, settings: Settings, tmp_path: Path
) -> None:
    # Studio's "re-run from here": a run started at a checkpoint on a finished thread.
    repo = make_repo(tmp_path)
    script = note_script(tmp_path)
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]
    goal = {"goal": "add a note", "repo": str(repo)}
    await sdk.runs.wait(tid, "shipyard", input=goal)
    request = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
    decision = {"decision": "approve", "by": "t", "content_hash": request["content_hash"]}
    first = await sdk.runs.wait(tid, "shipyard", command={"resume": decision})
    assert first["status"] == "completed"
    history = await sdk.threads.get_history(tid, limit=100)
    before_validate = next(h for h in history if h["next"] == ["validate"])

    again = await sdk.runs.wait(
        tid, "shipyard", input=None, checkpoint_id=before_validate["checkpoint_id"]
    )
    assert again["status"] == "completed", again
    branch = f"shipyard/{tid}"
    assert git(repo, "rev-parse", branch) == again["head_commit"]
    assert again["head_commit"] != again["base_commit"]
    assert git(repo, "show", f"{branch}:note.txt") == "hi"
    workspace = Path(again["workspace"])
    assert git(workspace, "status", "--porcelain") == ""
    assert all(e["passed"] for e in again["report"]["evidence"])


async def test_studio_stepping_ends_with_the_branch_at_the_states_head_commit(
    start_server, make_client, settings: Settings, tmp_path: Path
) -> None:
    # Studio's stepping: a breakpoint before validate, then continue with no input.
    repo = make_repo(tmp_path)
    script = note_script(tmp_path)
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(tid, "shipyard", input={"goal": "add a note", "repo": str(repo)})
    request = (await sdk.threads.get_state(tid))["interrupts"][0]["value"]
    decision = {"decision": "approve", "by": "t", "content_hash": request["content_hash"]}
    await sdk.runs.wait(
        tid, "shipyard", command={"resume": decision}, interrupt_before=["validate"]
    )
    assert (await sdk.threads.get_state(tid))["next"] == ["validate"]
    final = await sdk.runs.wait(tid, "shipyard", input=None)
    assert final["status"] == "completed", final
    assert git(repo, "rev-parse", f"shipyard/{tid}") == final["head_commit"]
    assert git(repo, "show", f"shipyard/{tid}:note.txt") == "hi"
    assert git(Path(final["workspace"]), "status", "--porcelain") == ""
