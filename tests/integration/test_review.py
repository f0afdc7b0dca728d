"""The reviewer role through whole runs: scripted model, real git, real Postgres, real sandbox.

The reviewer is asked only when the policy's ``[review] enabled`` or ``SHIPYARD_REVIEW``
turns it on, and only about a step whose checks passed: it can send a step back to refine,
never pass failing evidence. Each run's reviewer is its own ``ScriptedChatModel``, whose
``calls`` record every question it was asked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from shipyard.contracts import RunInput
from shipyard.errors import PolicyError, UserInputError
from shipyard.lifecycle.runner import Runner, Stop
from shipyard.llm import Script, ScriptedChatModel
from shipyard.policy.config import load_policy
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo, WriteScript
from tests.support import call, finish, git, plan_reply

pytestmark = pytest.mark.slow  # seconds a test: left out of `./dev quick`

FLAG_TEST = (
    "from pathlib import Path\n\n\n"
    "def test_flag():\n"
    '    assert Path(__file__).parent.parent.joinpath("flag.txt").read_text() == "yes\\n"\n'
)
"""A repository test that passes while ``flag.txt`` says yes."""

REVIEW_ON = "[review]\nenabled = true\n"


def _review(summary: str, *, changes: bool = False, severity: str = "info") -> dict[str, Any]:
    finding = {"source": "reviewer", "severity": severity, "message": summary, "path": "a.py"}
    return {"json": {"summary": summary, "request_changes": changes, "findings": [finding]}}


def _script(developer: dict[str, Any], reviewer: dict[str, Any]) -> dict[str, Any]:
    return {"planner": [plan_reply(("s1", "add a"))], "developer": developer, "reviewer": reviewer}


def _attempt(flag: str, a: str) -> list[dict[str, Any]]:
    """A developer attempt writing ``flag.txt`` and ``a.py``, then finishing."""
    return [
        call("write_file", path="flag.txt", content=flag),
        call("write_file", path="a.py", content=a),
        finish(),
    ]


async def _run(
    settings: Settings, path: Path, repo: Path, policy: dict[str, Any] | None = None
) -> tuple[Stop, ScriptedChatModel, list[Any]]:
    """Drive a run through its approvals; the reviewer model, and the run's events."""
    reviewer = ScriptedChatModel(script=Script.load(path), role="reviewer")
    scripted = dataclasses.replace(settings, model_script=path)
    async with Runner.open(scripted, models={"reviewer": reviewer}) as runner:
        stop = await runner.start(RunInput(goal="add a", repo=str(repo), policy=policy))
        while stop.request is not None:
            stop = await runner.decide(stop.run_id, "approve", by="tester")
        events = runner.context.runs.events(stop.run_id)
    return stop, reviewer, events


async def test_reviewer_requesting_changes_sends_the_step_back_then_approves(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(
        {"tests/test_flag.py": FLAG_TEST, "flag.txt": "yes\n", ".shipyard.toml": REVIEW_ON}
    )
    script = _script(
        {"s1/1": _attempt("yes\n", "def a(x):\n    return x / 0\n"),
         "s1/2": _attempt("yes\n", "def a(x):\n    return x\n")},
        {"s1/1": _review("a() divides by zero", changes=True, severity="warning"),
         "s1/2": _review("a() is the identity now")},
    )  # fmt: skip
    stop, reviewer, events = await _run(settings, write_script(script), repo)

    assert stop.status == "completed"
    assert [key for key, _ in reviewer.calls] == ["s1/1", "s1/2"]
    assert "return x / 0" in str(reviewer.calls[0][1][-1].content)  # it saw the diff
    report = stop.report
    assert report is not None and report.steps[0].attempts == 2
    assert [(f.severity, f.message) for f in report.findings] == [
        ("info", "a() is the identity now"),
        ("info", "approved: a() is the identity now"),
    ]
    assert "a() is the identity now" in Path(report.report_path or "").read_text()
    reviews = [e.payload for e in events if e.kind == "review"]
    assert [(r["attempt"], r["request_changes"]) for r in reviews] == [(1, True), (2, False)]
    assert [e.kind for e in events].count("refine") == 1
    # The branch holds only the reviewed fix, and its test passes there.
    assert git(repo, "show", f"{report.branch}:a.py") == "def a(x):\n    return x"
    # 1 plan + 3 + 3 developer turns + 2 reviews
    assert report.usage.model_calls == 9


async def test_request_changes_reaches_the_developer_as_an_error(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_flag.py": FLAG_TEST, "flag.txt": "yes\n"})
    script = _script(
        {"s1/1": _attempt("yes\n", "x = 1\n"), "s1/2": _attempt("yes\n", "x = 2\n")},
        {"s1/1": {"json": {"summary": "x must be 2", "request_changes": True}},
         "s1/2": {"json": {"summary": "fine"}}},
    )  # fmt: skip
    developer = ScriptedChatModel(
        script=Script.load(path := write_script(script)), role="developer"
    )
    scripted = dataclasses.replace(settings, model_script=path)
    policy = {"review": {"enabled": True}}
    async with Runner.open(scripted, models={"developer": developer}) as runner:
        stop = await runner.start(RunInput(goal="x", repo=str(repo), policy=policy))
        stop = await runner.decide(stop.run_id, "approve", by="tester")
    assert stop.status == "completed" and stop.report is not None
    second = next(messages for key, messages in developer.calls if key == "s1/2/0")
    assert "reviewer (error): x must be 2" in str(second[-1].content)
    assert [f.message for f in stop.report.findings] == ["approved: fine"]


async def test_a_reply_that_never_validates_is_a_warning_not_an_approval(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_flag.py": FLAG_TEST, "flag.txt": "yes\n"})
    bogus = {"json": {"verdict": "lgtm"}, "repair": {"json": {"verdict": "lgtm"}}}
    script = _script({"s1/1": _attempt("yes\n", "x = 1\n")}, {"s1/1": bogus})
    stop, reviewer, _ = await _run(
        settings, write_script(script), repo, {"review": {"enabled": True}}
    )
    assert stop.status == "completed" and stop.report is not None
    assert [key for key, _ in reviewer.calls] == ["s1/1", "s1/1/repair"]
    assert [(f.severity, f.message) for f in stop.report.findings] == [
        ("warning", "the reviewer's reply never validated: the step was not reviewed")
    ]


async def test_reviewer_is_never_asked_about_failing_checks_and_cannot_pass_them(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(
        {"tests/test_flag.py": FLAG_TEST, "flag.txt": "yes\n", ".shipyard.toml": REVIEW_ON}
    )
    script = _script(
        {"s1/1": _attempt("no\n", "x = 1\n"), "s1/2": _attempt("no\n", "x = 1\n")},
        {"s1/1": _review("all good"), "s1/2": _review("all good")},
    )
    policy = {"budgets": {"attempts_per_step": 2}}
    stop, reviewer, events = await _run(settings, write_script(script), repo, policy)

    assert stop.status == "needs_human_review"
    assert reviewer.calls == []
    assert not [e for e in events if e.kind == "review"]
    assert stop.report is not None and stop.report.findings == []
    assert not all(e.passed for e in stop.report.evidence)
    assert git(repo, "log", "--oneline", f"main..{stop.report.branch}") == ""
    assert stop.report.usage.model_calls == 1 + 3 + 3


async def test_reviewer_is_off_by_default(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo({"tests/test_flag.py": FLAG_TEST, "flag.txt": "yes\n"})
    script = _script(
        {"s1/1": _attempt("yes\n", "x = 1\n")},
        {"s1/1": _review("never asked", changes=True, severity="error")},
    )
    stop, reviewer, events = await _run(settings, write_script(script), repo)
    assert stop.status == "completed" and reviewer.calls == []
    assert not [e for e in events if e.kind == "review"]


async def test_shipyard_review_env_turns_it_on_whatever_the_policy_says(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    off = "[review]\nenabled = false\n"
    repo = make_repo({"tests/test_flag.py": FLAG_TEST, "flag.txt": "yes\n", ".shipyard.toml": off})
    script = _script(
        {"s1/1": _attempt("yes\n", "x = 1\n"), "s1/2": _attempt("yes\n", "x = 2\n")},
        {"s1/1": _review("x is wrong", changes=True), "s1/2": _review("ok")},
    )
    env = {"SHIPYARD_HOME": str(settings.home), "DATABASE_URL": settings.database_url or ""}
    from_env = Settings.from_env({**env, "SHIPYARD_REVIEW": "1"})
    assert from_env.review and not Settings.from_env(env).review
    stop, reviewer, _ = await _run(from_env, write_script(script), repo)
    assert stop.status == "completed"
    assert [key for key, _ in reviewer.calls] == ["s1/1", "s1/2"]


@pytest.mark.parametrize(
    ("text", "on"), [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("", False)]
)
def test_shipyard_review_values(text: str, on: bool) -> None:
    assert Settings.from_env({"SHIPYARD_HOME": "/tmp/x", "SHIPYARD_REVIEW": text}).review is on


def test_shipyard_review_rejects_other_values() -> None:
    with pytest.raises(UserInputError, match="SHIPYARD_REVIEW='maybe'"):
        Settings.from_env({"SHIPYARD_HOME": "/tmp/x", "SHIPYARD_REVIEW": "maybe"})


def test_review_table_loads_and_rejects_unknown_keys(tmp_path: Path) -> None:
    assert load_policy(tmp_path).review.enabled is False
    (tmp_path / ".shipyard.toml").write_text(REVIEW_ON)
    assert load_policy(tmp_path).review.enabled is True
    assert load_policy(tmp_path, {"review": {"enabled": False}}).review.enabled is False
    (tmp_path / ".shipyard.toml").write_text("[review]\nenable = true\n")
    with pytest.raises(PolicyError, match="enable"):
        load_policy(tmp_path)
