"""Over the API, both ways of continuing a Shipyard thread from an older checkpoint — an
``update_state`` fork and a run started at ``checkpoint_id`` (Studio's "re-run from here") —
rewind the run branch but keep the commits they drop reachable at
``refs/shipyard/<thread>/abandoned/<n>``, which the state and the run report list."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from shipyard.settings import Settings
from tests.e2e.runs_support import make_repo
from tests.support import call, finish, git, plan_reply


async def test_update_state_fork_and_rerun_keep_the_dropped_commits(
    start_server: Any, make_client: Any, settings: Settings, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    script = tmp_path / "script.json"
    developer = {
        "s1/1": [call("write_file", path="a.txt", content="a\n"), finish()],
        "s2/1": [call("write_file", path="b.txt", content="b\n"), finish()],
    }
    script.write_text(
        json.dumps({"planner": [plan_reply(("s1", "a"), ("s2", "b"))], "developer": developer})
    )
    running = start_server(None, dataclasses.replace(settings, model_script=script))
    sdk = make_client(running.url)
    tid = (await sdk.threads.create())["thread_id"]
    goal = {"goal": "two notes", "repo": str(repo), "policy": {"approvals": {"plan": "never"}}}
    first = await sdk.runs.wait(tid, "shipyard", input=goal)
    assert first["status"] == "completed", first
    branch = f"shipyard/{tid}"
    old_tip = git(repo, "rev-parse", branch)
    history = await sdk.threads.get_history(tid, limit=100)
    after_s1 = next(
        h for h in history if h["next"] == ["execute"] and h["values"].get("step_index") == 1
    )

    # update_state from the checkpoint after step 1: the branch is rewound, the line kept
    await sdk.threads.update_state(tid, {}, checkpoint_id=after_s1["checkpoint_id"])
    first_ref = f"refs/shipyard/{tid}/abandoned/1"
    assert git(repo, "rev-parse", first_ref) == old_tip
    assert git(repo, "rev-parse", branch) == after_s1["values"]["head_commit"]
    assert (await sdk.threads.get_state(tid))["values"]["abandoned"] == [first_ref]
    forked = await sdk.runs.wait(tid, "shipyard", input=None)
    assert forked["status"] == "completed", forked
    assert forked["report"]["abandoned"] == [first_ref]
    # (the redone step may make the very same commit again: same tree, parent and second)
    second_tip = git(repo, "rev-parse", branch)
    assert second_tip == forked["head_commit"]

    # a run started at the same checkpoint keeps the line the fork made, too
    again = await sdk.runs.wait(
        tid, "shipyard", input=None, checkpoint_id=after_s1["checkpoint_id"]
    )
    second_ref = f"refs/shipyard/{tid}/abandoned/2"
    assert again["status"] == "completed", again
    assert git(repo, "rev-parse", second_ref) == second_tip
    assert git(repo, "rev-parse", first_ref) == old_tip
    assert again["report"]["abandoned"] == [first_ref, second_ref]
    assert git(repo, "rev-parse", branch) == again["head_commit"]
