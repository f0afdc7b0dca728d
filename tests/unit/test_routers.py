"""Every branch of every router: pure functions of state returning node names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shipyard import graph
from shipyard.contracts import ApprovalRecord, Evidence, Plan, PlanStep, Verdict

PLAN = Plan(
    summary="two steps",
    risk="low",
    steps=[
        PlanStep(id="s1", title="one", instructions="do one"),
        PlanStep(id="s2", title="two", instructions="do two"),
    ],
)


def _approval(kind: str, decision: str) -> ApprovalRecord:
    return ApprovalRecord(kind=kind, decision=decision, by="t", comment="", content_hash="h")  # type: ignore[arg-type]


def _verdict(passed: bool) -> Verdict:
    ev = Evidence(
        check="pytest", command=["pytest"], exit_code=0 if passed else 1, passed=passed,
        duration_s=0.1, summary="",
    )  # fmt: skip
    return Verdict(passed=passed, evidence=[ev])


@pytest.mark.parametrize(
    ("state", "expected"),
    [({"status": "running"}, "plan"), ({"status": "failed"}, "finalize"),
     ({"status": "blocked_by_policy"}, "finalize")],
)  # fmt: skip
def test_after_intake(state: dict[str, Any], expected: str) -> None:
    assert graph.after_intake(state) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "expected"),
    [({"status": "running", "plan": PLAN}, "approve_plan"),
     ({"status": "running", "plan": None}, "escalate"),
     ({"status": "needs_human_review", "plan": None}, "escalate")],
)  # fmt: skip
def test_after_plan(state: dict[str, Any], expected: str) -> None:
    assert graph.after_plan(state) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "expected"),
    [({"status": "running", "approvals": [_approval("plan", "approve")]}, "execute"),
     ({"status": "running", "approvals": [_approval("plan", "revise")]}, "plan"),
     ({"status": "rejected", "approvals": [_approval("plan", "reject")]}, "finalize"),
     # an older plan revision does not count once the latest plan is approved
     ({"status": "running",
       "approvals": [_approval("plan", "revise"), _approval("plan", "approve")]}, "execute")],
)  # fmt: skip
def test_after_plan_approval(state: dict[str, Any], expected: str) -> None:
    assert graph.after_plan_approval(state) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "expected"),
    [({"status": "running"}, "validate"), ({"status": "needs_human_review"}, "escalate")],
)
def test_after_execute(state: dict[str, Any], expected: str) -> None:
    assert graph.after_execute(state) == expected  # type: ignore[arg-type]


BUDGET = {"budgets": {"attempts_per_step": 3}}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # passed, one step left
        ({"status": "running", "verdict": _verdict(True), "plan": PLAN, "step_index": 1,
          "attempt": 1, "effective_policy": BUDGET}, "execute"),
        # passed, all steps done
        ({"status": "running", "verdict": _verdict(True), "plan": PLAN, "step_index": 2,
          "attempt": 1, "effective_policy": BUDGET}, "approve_changes"),
        # failed with attempts left
        ({"status": "running", "verdict": _verdict(False), "plan": PLAN, "step_index": 0,
          "attempt": 2, "effective_policy": BUDGET}, "refine"),
        # failed, attempts spent
        ({"status": "running", "verdict": _verdict(False), "plan": PLAN, "step_index": 0,
          "attempt": 3, "effective_policy": BUDGET}, "escalate"),
        # a budget ran out while validating
        ({"status": "needs_human_review", "verdict": _verdict(True), "plan": PLAN,
          "step_index": 2, "attempt": 1, "effective_policy": BUDGET}, "escalate"),
    ],
)  # fmt: skip
def test_after_validate(state: dict[str, Any], expected: str) -> None:
    assert graph.after_validate(state) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "expected"),
    [({"status": "running", "approvals": [_approval("changes", "approve")]}, "finalize"),
     ({"status": "running", "approvals": [_approval("changes", "revise")]}, "execute"),
     ({"status": "rejected", "approvals": [_approval("changes", "reject")]}, "finalize"),
     # a plan revision earlier in the run is not a changes revision
     ({"status": "running",
       "approvals": [_approval("plan", "revise"), _approval("changes", "approve")]}, "finalize"),
     # approved edits made after the checks ran are checked before the run can finish
     ({"status": "running", "recheck": True,
       "approvals": [_approval("changes", "approve")]}, "validate"),
     ({"status": "rejected", "recheck": True,
       "approvals": [_approval("changes", "reject")]}, "finalize")],
)  # fmt: skip
def test_after_changes_approval(state: dict[str, Any], expected: str) -> None:
    assert graph.after_changes_approval(state) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "expected"),
    [({"status": "completed", "effective_policy": {"deliver": {"push": True}}}, "deliver"),
     ({"status": "completed", "effective_policy": {}}, "__end__"),
     ({"status": "completed", "effective_policy": {"deliver": {"push": False}}}, "__end__"),
     ({"status": "rejected", "effective_policy": {"deliver": {"push": True}}}, "__end__"),
     ({"status": "needs_human_review", "effective_policy": {"deliver": {"push": True}}},
      "__end__")],
)  # fmt: skip
def test_after_finalize_delivers_only_completed_runs_that_push(
    state: dict[str, Any], expected: str
) -> None:
    assert graph.after_finalize(state) == expected  # type: ignore[arg-type]


def test_drawn_graph_shows_every_conditional_edge() -> None:
    drawn = graph.graph.get_graph().draw_mermaid()
    conditional = {
        ("intake", "plan"), ("intake", "finalize"), ("plan", "approve_plan"),
        ("plan", "escalate"), ("approve_plan", "execute"), ("approve_plan", "plan"),
        ("approve_plan", "finalize"), ("execute", "validate"), ("execute", "escalate"),
        ("validate", "execute"), ("validate", "approve_changes"), ("validate", "refine"),
        ("validate", "escalate"), ("approve_changes", "execute"),
        ("approve_changes", "validate"), ("approve_changes", "finalize"),
        ("finalize", "deliver"), ("finalize", "__end__"),
    }  # fmt: skip
    for source, target in conditional:
        assert f"{source} -.-> {target};" in drawn
    for source, target in [("refine", "execute"), ("escalate", "finalize")]:
        assert f"{source} --> {target};" in drawn
    assert "deliver --> __end__;" in drawn
    assert drawn.count("-.->") == len(conditional)


def test_graph_schemas_render_for_studio_and_langgraph_dev() -> None:
    # Studio form-fills a run's input from these; live dependencies stay out of them.
    input_schema = graph.graph.get_input_jsonschema()
    assert {"goal", "repo", "base_ref", "plan"} <= set(input_schema["properties"])
    context_schema = graph.graph.get_context_jsonschema()
    assert set(context_schema["properties"]) == {"review"}
    assert not context_schema.get("required")
    assert "status" in graph.graph.get_output_jsonschema()["properties"]


def test_readme_shows_the_generated_drawing() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block.strip() == graph.graph.get_graph().draw_mermaid().strip()
