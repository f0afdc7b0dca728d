"""The agent's working aids as pure functions: their policy tables, the choice of the
nearest instruction file, the condensation of a long conversation and model routing."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage

from shipyard.agent import conversation
from shipyard.agent.instructions import nearest
from shipyard.agent.routing import route
from shipyard.contracts import Plan, PlanStep
from shipyard.errors import PolicyError
from shipyard.policy.agent import ContextPolicy, RoutingPolicy
from shipyard.policy.config import load_policy


def test_agent_tables_default_on_except_routing(tmp_path: Path) -> None:
    agent = load_policy(tmp_path).agent
    assert agent.instructions.enabled and agent.context.enabled and agent.repo_map.enabled
    assert not agent.routing.enabled


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"instructions": {"max_bytes": 5}}, "agent.instructions.max_bytes", "greater than"),
        ({"context": {"keep_turns": 0}}, "agent.context.keep_turns", "greater than"),
        ({"repo_map": {"budget": 10}}, "agent.repo_map.budget", "Extra inputs"),
        ({"routing": {"enabled": True}}, "agent.routing", "strong_model names no model"),
        ({"routing": {"strong_risk": ["huge"]}}, "agent.routing.strong_risk[0]", "Input should"),
        ({"best_of": {"n": 9}}, "agent.best_of.n", "less than or equal to 8"),
        ({"best_of": {"concurrency": 0}}, "agent.best_of.concurrency", "greater than"),
    ],
)
def test_bad_agent_settings_name_the_field(
    tmp_path: Path, override: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(PolicyError, match="per-run override") as caught:
        load_policy(tmp_path, {"agent": override})
    assert caught.value.field == field
    assert message in str(caught.value)


def test_a_bad_agent_table_in_the_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / ".shipyard.toml").write_text('[agent.context]\nmax_tokens = "lots"\n')
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path)
    assert caught.value.line == 2 and caught.value.field == "agent.context.max_tokens"


TRACKED = {
    "AGENTS.md",
    "pkg/AGENTS.md",
    "pkg/sub/mod.py",
    "docs/CLAUDE.md",
    "docs/guide.md",
    "lib/AGENTS.md",
    "lib/CLAUDE.md",
    ".github/copilot-instructions.md",
}


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([], ["AGENTS.md"]),
        (["pkg/sub/mod.py"], ["pkg/AGENTS.md"]),  # the nearest wins over the root's
        (["pkg/sub/new_file.py"], ["pkg/AGENTS.md"]),  # a path the step will create
        (["docs/guide.md"], ["docs/CLAUDE.md"]),  # the fallback name in its directory
        (["lib/x.py"], ["lib/AGENTS.md"]),  # AGENTS.md before CLAUDE.md
        (["top.py", "pkg/sub/mod.py", "pkg/a.py"], ["AGENTS.md", "pkg/AGENTS.md"]),
    ],
)
def test_the_nearest_instruction_file_wins(paths: list[str], expected: list[str]) -> None:
    assert nearest(paths, TRACKED) == expected


def test_copilot_instructions_are_the_last_fallback_at_the_root() -> None:
    assert nearest(["src/a.py"], {".github/copilot-instructions.md", "src/a.py"}) == [
        ".github/copilot-instructions.md"
    ]
    assert nearest(["src/a.py"], {"src/a.py"}) == []


def _long_conversation(turns: int, size: int) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("system"), HumanMessage("step request")]
    for n in range(turns):
        name = "run_command" if n == 1 else "read_file"
        messages.append(
            AIMessage("", tool_calls=[{"name": name, "args": {"path": f"f{n}"}, "id": f"c{n}"}])
        )
        messages.append(ToolMessage(f"result {n}\n" + "x" * size, tool_call_id=f"c{n}"))
    return messages


def test_a_long_conversation_is_condensed_oldest_first_keeping_what_matters() -> None:
    rules = ContextPolicy(max_tokens=2_000, keep_turns=2)
    messages = _long_conversation(turns=8, size=2_000)
    edits = conversation.condensation(messages, rules)
    assert edits is not None
    conversation.apply(messages, edits)
    assert conversation.estimate(messages) <= rules.max_tokens
    texts = [str(m.content) for m in messages]
    assert texts[:2] == ["system", "step request"]
    assert texts[5].startswith("result 1")  # the latest run_command result: the evidence
    assert all(t.startswith("result") for t in texts[-4:][1::2])  # the last two turns
    assert texts[3].startswith("[condensed: an older tool result of 2009 characters")
    assert conversation.condensation(messages, rules) is None  # within the budget now


def test_within_the_budget_or_switched_off_nothing_is_condensed() -> None:
    messages = _long_conversation(turns=8, size=2_000)
    assert conversation.condensation(messages, ContextPolicy(max_tokens=100_000)) is None
    off = ContextPolicy(enabled=False, max_tokens=1_000)
    assert conversation.condensation(messages, off) is None


def test_long_arguments_of_older_writes_are_condensed() -> None:
    write = AIMessage(
        "",
        tool_calls=[
            {"name": "write_file", "args": {"path": "a", "content": "y" * 9_000}, "id": "w"}
        ],
    )
    messages = [
        SystemMessage("s"),
        HumanMessage("r"),
        write,
        ToolMessage("wrote", tool_call_id="w"),
    ]
    messages += _long_conversation(turns=3, size=100)[2:]
    edits = conversation.condensation(messages, ContextPolicy(max_tokens=1_000, keep_turns=2))
    assert edits == [
        {
            "index": 2,
            "call": 0,
            "arg": "content",
            "text": "[condensed: 9000 characters written by this call]",
        }
    ]
    conversation.apply(messages, edits)
    assert isinstance(messages[2], AIMessage)
    assert messages[2].tool_calls[0]["args"] == {"path": "a", "content": edits[0]["text"]}


PLAN = Plan(
    summary="p",
    risk="low",
    steps=[
        PlanStep(id="s1", title="t", instructions="i"),
        PlanStep(id="s2", title="t", instructions="i", risk="high"),
    ],
)


def test_routing_escalates_on_later_attempts_and_risky_steps() -> None:
    rules = RoutingPolicy(enabled=True, cheap_model="small", strong_model="big")
    routine, risky = PLAN.steps
    assert route(PLAN, routine, 1, rules).model == "small"
    assert route(PLAN, routine, 2, rules).model == "big"
    assert route(PLAN, risky, 1, rules).model == "big"
    assert route(PLAN, routine, 1, rules.model_copy(update={"cheap_model": ""})).model is None
    assert route(PLAN, routine, 3, RoutingPolicy()).tier == "role"
