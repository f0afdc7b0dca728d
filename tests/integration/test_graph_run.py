"""Whole runs through the graph: scripted model, real git, real Postgres, real sandbox."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from shipyard.cli.demo import GOAL, copy_example, example_dir
from shipyard.contracts import ApprovalDecision, RunInput
from shipyard.errors import NotWaitingError, StaleApprovalError, UnknownRunError
from shipyard.lifecycle.runner import Runner
from shipyard.llm import Script, ScriptedChatModel
from shipyard.settings import Settings
from shipyard.store import Journal, make_engine
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import PASSING_TEST, call, finish, git, plan_reply

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`


def _planner_only(settings: Settings, write_script: WriteScript) -> Settings:
    """Settings whose scripted model only plans (one step): for runs that stop at the plan."""
    return dataclasses.replace(
        settings, model_script=write_script({"planner": [plan_reply(("s1", "x"))]})
    )


async def test_demo_run_fails_once_refines_and_completes_through_both_gates(
    settings: Settings, tmp_path: Path
) -> None:
    repo = copy_example(tmp_path / "invoices")
    scripted = dataclasses.replace(settings, model_script=example_dir() / "invoices.script.json")
    nodes: list[str] = []

    def seen(node: str, _update: object) -> None:
        nodes.append(node)

    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal=GOAL, repo=str(repo)), on_event=seen)
        assert stop.status == "awaiting_approval"
        assert stop.request is not None and stop.request.kind == "plan"
        assert runner.context.runs.get_run(stop.run_id).status == "awaiting_approval"

        stop = await runner.decide(stop.run_id, "approve", by="tester", on_event=seen)
        assert stop.request is not None and stop.request.kind == "changes"
        assert "invoice.py" in stop.request.payload["files"]

        stop = await runner.decide(stop.run_id, "approve", by="tester", comment="looks right")
        run = runner.context.runs.get_run(stop.run_id)
        decided = [a.status for a in runner.context.runs.approvals(stop.run_id)]

    assert stop.status == "completed" and run.status == "completed"
    assert decided == ["decided", "decided"]
    assert nodes.count("execute") == 2 and nodes.count("refine") == 1
    report = stop.report
    assert report is not None and report.branch == f"shipyard/{stop.run_id}"
    assert [s.status for s in report.steps] == ["passed"]
    assert report.steps[0].attempts == 2
    assert all(e.passed for e in report.evidence)
    assert report.models["developer"].startswith("scripted:")
    # planner 1 + developer 3 + 3 + the reviewer once (it is not asked about failing checks)
    assert report.usage.model_calls == 8 and report.usage.tool_calls == 6
    assert [(f.source, f.severity) for f in report.findings] == [("reviewer", "info")] * 2
    assert report.findings[1].message.startswith("approved: ")
    # The branch holds the fix and its tests pass; the user's checkout is untouched.
    fixed = git(repo, "show", f"{report.branch}:invoice.py")
    assert 'raise ValueError("empty amount")' in fixed
    assert "raise ValueError" not in (repo / "invoice.py").read_text()
    assert git(repo, "status", "--porcelain") == ""
    assert Path(report.report_path or "").is_file()
    patch = Path(report.patch_path or "").read_text()
    assert "empty amount" in patch
    assert report.isolation is not None


async def test_revise_plan_asks_planner_again_with_feedback(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = {
        "planner": [plan_reply(("s1", "first idea")), plan_reply(("s1", "better idea"))],
        "developer": {"s1/1": [call("write_file", path="note.txt", content="hi\n"), finish()]},
    }
    path = write_script(script)
    planner = ScriptedChatModel(script=Script.load(path), role="planner")
    scripted = dataclasses.replace(settings, model_script=path)
    async with Runner.open(scripted, models={"planner": planner}) as runner:
        stop = await runner.start(RunInput(goal="add a note", repo=str(repo)))
        assert stop.request is not None
        stop = await runner.decide(stop.run_id, "revise", by="t", comment="use the better idea")
        assert stop.request is not None and stop.request.kind == "plan"
        assert stop.request.payload["plan"]["steps"][0]["title"] == "better idea"
        stop = await runner.decide(stop.run_id, "approve", by="t")
    assert stop.status == "completed"
    assert [key for key, _ in planner.calls] == ["plan/0", "plan/1"]
    assert "use the better idea" in str(planner.calls[1][1][-1].content)
    assert git(repo, "show", f"shipyard/{stop.run_id}:note.txt") == "hi"


async def test_reject_plan_ends_run_rejected_with_report(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    async with Runner.open(_planner_only(settings, write_script)) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo)))
        stop = await runner.decide(stop.run_id, "reject", by="t", comment="no")
        assert stop.status == "rejected"
        assert stop.report is not None and stop.report.status == "rejected"
        with pytest.raises(NotWaitingError, match="not waiting"):
            await runner.decide(stop.run_id, "approve", by="t")
        with pytest.raises(NotWaitingError, match="already ended"):
            await runner.resume(stop.run_id)


async def test_stale_approval_is_refused_and_recorded(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    async with Runner.open(_planner_only(settings, write_script)) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo)))
        stale = ApprovalDecision(decision="approve", by="t", content_hash="sha256:old")
        with pytest.raises(StaleApprovalError, match="sha256:old"):
            await runner.resume(stop.run_id, stale)
        statuses = [a.status for a in runner.context.runs.approvals(stop.run_id)]
        still = await runner.pending(stop.run_id)
    assert "refused" in statuses
    assert still is not None and still.kind == "plan"


async def test_failing_checks_escalate_when_attempts_are_spent(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_x.py": "def test_x():\n    assert 1 == 2\n"})
    policy = '[approvals]\nplan = "never"\n[budgets]\nattempts_per_step = 2\n'
    (repo / ".shipyard.toml").write_text(policy)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@t", "commit", "-qm", "policy")
    script = {
        "planner": [plan_reply(("s1", "fix"))],
        "developer": {"s1/1": [finish()], "s1/2": [finish()]},
    }
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo)))
    assert stop.status == "needs_human_review"
    assert stop.report is not None
    assert "test_x" in (stop.error or "")
    assert [s.status for s in stop.report.steps] == ["failed"]


async def test_guidance_continues_an_escalated_run_with_a_fresh_attempt(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    needs_x = "import pathlib\n\ndef test_x():\n    assert pathlib.Path('x').exists()\n"
    repo = make_repo({"tests/test_x.py": needs_x})
    script = {
        "planner": [plan_reply(("s1", "fix"))],
        "developer": {
            "s1/1": [finish()],
            "s1/2": [finish()],
        },
    }
    guided_script = {
        **script,
        "developer": {"s1/1": [call("write_file", path="x", content="x\n"), finish()]},
    }
    policy = {"approvals": {"plan": "never"}, "budgets": {"attempts_per_step": 2}}
    first = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(first) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo), policy=policy))
    assert stop.status == "needs_human_review"
    developer = ScriptedChatModel(script=Script.load(write_script(guided_script)), role="developer")
    async with Runner.open(first, models={"developer": developer}) as runner:
        with pytest.raises(UnknownRunError):
            await runner.guide("no-such-run-xx", "x")
        guided = await runner.guide(stop.run_id, "create the file x")
    assert guided.status == "completed"
    assert "create the file x" in str(developer.calls[0][1][-1].content)
    assert guided.report is not None and [s.status for s in guided.report.steps] == ["passed"]
    async with Runner.open(first) as runner:
        with pytest.raises(NotWaitingError, match="needs_human_review"):
            await runner.guide(stop.run_id, "again")


async def test_budget_exhausted_ends_run_for_human_review(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    looping = [call("list_files", path=".") for _ in range(10)]
    script = {"planner": [plan_reply(("s1", "x"))], "developer": {"s1/1": looping}}
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    overrides = {"approvals": {"plan": "never"}, "budgets": {"tool_calls": 3}}
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo), policy=overrides))
    assert stop.status == "needs_human_review"
    assert "tool-call budget spent" in (stop.error or "")
    assert stop.report is not None and stop.report.usage.tool_calls == 3


async def test_planner_replies_that_never_validate_escalate_with_replies_kept(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    bad = {"json": {"summary": "no steps"}, "repair": {"json": {"summary": "still none"}}}
    scripted = dataclasses.replace(settings, model_script=write_script({"planner": [bad]}))
    async with Runner.open(scripted) as runner:
        stop = await runner.start(RunInput(goal="g", repo=str(repo)))
    assert stop.status == "needs_human_review"
    assert "never validated" in (stop.error or "")
    kept = settings.artifacts / stop.run_id / "planner-replies-0.json"
    assert "still none" in kept.read_text()


async def test_model_endpoint_unreachable_pauses_and_resume_completes(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    down = {"planner": [{"fail": "connection refused (scripted outage)"}]}
    up = {"planner": [plan_reply(("s1", "x"))], "developer": {"s1/1": [finish()]}}
    overrides = {"approvals": {"plan": "never"}}
    async with Runner.open(dataclasses.replace(settings, model_script=write_script(down))) as r:
        stop = await r.start(RunInput(goal="g", repo=str(repo), policy=overrides))
        assert stop.status == "paused" and "outage" in (stop.error or "")
        assert r.context.runs.get_run(stop.run_id).status == "paused"
    async with Runner.open(dataclasses.replace(settings, model_script=write_script(up))) as r:
        resumed = await r.resume(stop.run_id)
    assert resumed.status == "completed"


async def test_model_calls_and_tool_calls_are_journaled_once(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    script = {
        "planner": [plan_reply(("s1", "x"))],
        "developer": {"s1/1": [call("write_file", path="a.txt", content="a\n"), finish()]},
    }
    scripted = dataclasses.replace(settings, model_script=write_script(script))
    async with Runner.open(scripted) as runner:
        stop = await runner.start(
            RunInput(goal="g", repo=str(repo), policy={"approvals": {"plan": "never"}})
        )
    assert stop.status == "completed"
    engine = make_engine(settings.database_url or "")
    try:
        entries = Journal(engine).entries(stop.run_id)
    finally:
        engine.dispose()
    keys = [(e.step_key, e.call_id) for e in entries]
    assert len(keys) == len(set(keys))
    assert {e.status for e in entries} == {"done"}
    epochs = {step.split("/", 1)[0] for step, _ in keys}
    assert len(epochs) == 1  # the timeline intake began
    (epoch,) = epochs
    assert (f"{epoch}/execute/s1/1", "tool.0.0") in keys
    assert (f"{epoch}/validate/s1/1", "commit") in keys
