"""The workspace's disk budget holds against a model that fills it (category: disk-quota).

Whole runs through ``Runner`` with the scripted model under ``[budgets] workspace_mb = 2``.
The model writes big files with commands (a repository test it runs with ``pytest``, and
``fallocate``, allowed by the test's policy) and with ``write_file``; each case asserts the
whole outcome: the clear message the model got,
which files are left, the workspace under its budget, and the run ending normally.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.settings import Settings
from shipyard.tools.quota import MIB, measure
from tests.integration.conftest import MakeRepo, WriteScript, make_repo, write_script
from tests.support import PASSING_TEST, call, finish, plan_reply

__all__ = ["make_repo", "write_script"]  # fixtures used here

BUDGET_MB = 2
POLICY: dict[str, Any] = {
    "approvals": {"plan": "never"},
    "budgets": {"workspace_mb": BUDGET_MB, "attempts_per_step": 1},
    "commands": {"allow": ["fallocate *"]},
}
OVER = f"workspace over its {BUDGET_MB} MB budget"

FILL = """def test_fill():
    for i in range(3):
        with open(f"big{i}.bin", "wb") as f:
            f.write(b"x" * 900_000)
"""
"""Three files, each under the per-file limit, together over the budget. Not named
``test_*.py``: it runs only when the model names it, not at validation."""


async def _run(
    settings: Settings, write_script: WriteScript, repo: Path, turns: list[dict[str, Any]]
) -> tuple[Stop, dict[str, str], Path]:
    script = {"planner": [plan_reply(("s1", "fill"))], "developer": {"s1/1": turns}}
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal="fill", repo=str(repo), policy=POLICY))
        entries = runner.context.journal.entries(stop.run_id)
    tools = [e for e in entries if e.call_id.startswith("tool.")]
    results = {e.call_id: str((e.outcome or {}).get("content")) for e in tools}
    return stop, results, settings.workspaces / stop.run_id


async def test_disk_quota_three_big_files_by_command_then_write_file_and_rlimit(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST, "fill_disk.py": FILL})
    turns = [
        call("run_command", command="python -m pytest -q -p no:cacheprovider fill_disk.py"),
        call("write_file", path="more.txt", content="y" * 400_000),
        call("run_command", command="fallocate -l 5M huge.bin"),
        finish("filled the disk"),
    ]
    stop, results, ws = await _run(settings, write_script, repo, turns)
    assert stop.status == "completed"
    filled = results["tool.0.0"]
    assert f"error: {OVER} (2.6 MB used): delete files before continuing" in filled
    assert "removed the files this command created or changed, largest first: big" in filled
    assert "under its budget again" in filled
    left = sorted(p.name for p in ws.glob("big*.bin"))
    assert len(left) == 2, left
    refused = results["tool.1.0"]
    assert refused.startswith("error: writing 400000 bytes would take the workspace over its")
    assert not (ws / "more.txt").exists()
    huge = results["tool.2.0"]
    assert "(stopped: file_size limit)" in huge.splitlines()[0]
    assert "error: a file may only grow by what is left of the workspace's 2 MB budget" in huge
    assert not (ws / "huge.bin").exists() or (ws / "huge.bin").stat().st_size < MIB
    assert measure(ws).bytes <= BUDGET_MB * MIB


async def test_disk_quota_a_repository_over_budget_refuses_until_shrunk(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"data.txt": "z" * (3 * MIB), "tests/test_ok.py": PASSING_TEST})
    turns = [
        call("run_command", command="fallocate -l 8192 x.bin"),
        call("write_file", path="note.txt", content="hello\n"),
        call("write_file", path="data.txt", content="small now\n"),
        call("run_command", command="fallocate -l 8192 x.bin"),
        finish("shrunk the data"),
    ]
    stop, results, ws = await _run(settings, write_script, repo, turns)

    assert stop.status == "completed"
    assert results["tool.0.0"].startswith(f"not run: {OVER} (3.0 MB used): delete files")
    assert results["tool.1.0"].startswith(f"error: {OVER} (3.0 MB used)")
    assert results["tool.2.0"] == "wrote 10 bytes to data.txt"
    assert results["tool.3.0"].startswith("exit code 0")
    assert (ws / "x.bin").stat().st_size == 8192
    assert not (ws / "note.txt").exists()
