"""A model call is checked against what the run's budgets leave before it is made: the
prompt's tokens (estimated) and the longest reply the rest affords. A call that cannot afford
a useful reply is not made; otherwise its reply is bounded by ``max_tokens``. The real
``langchain-openai`` client against a local OpenAI-compatible server (the far side of the
wire is the only fake), through the gateway and through whole runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from shipyard.contracts import Plan, RunInput, Usage
from shipyard.lifecycle.runner import Runner
from shipyard.llm.gateway import CallOverBudgetError
from shipyard.llm.pricing import MIN_REPLY_TOKENS, Allowance
from shipyard.policy.config import Budgets
from shipyard.settings import Settings
from tests.integration.conftest import MakeRepo
from tests.integration.fake_openai import FakeOpenAI, completion, gateway_for, tool_call
from tests.support import PASSING_TEST

ASK = [SystemMessage(content="You are the developer."), HumanMessage(content="Fix the bug.")]
PLAN = {
    "summary": "Add a note",
    "risk": "low",
    "steps": [{"id": "s1", "title": "Write it", "instructions": "Write note.txt."}],
}
CENT = Budgets(cost_usd=0.01)
TEN_PER_MILLION = "10,10"  # $0.00001 a token: a cent buys 1000 tokens


def _sent_cap(server: FakeOpenAI) -> int | None:
    (request,) = server.received
    sent = request["json"]
    cap = sent.get("max_completion_tokens", sent.get("max_tokens"))
    return None if cap is None else int(cap)


def test_a_call_that_would_overshoot_the_cost_budget_is_not_made(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.replies.append(completion({"content": "a"}, prompt=20_000, completion_=5_000))
    # $1 per 1k tokens: the prompt alone costs more than the cent the budget leaves.
    gateway, _ = gateway_for(server.url, tmp_path, SHIPYARD_DEVELOPER_PRICE="1000,1000")
    with pytest.raises(CallOverBudgetError) as refused:
        gateway.chat("developer", ASK, key="s1/1/0", allowance=Allowance.of(Usage(), CENT))
    assert server.received == []
    message = str(refused.value)
    assert message.startswith("cost budget spent: the next developer call")
    assert "of $0.01 is left; the call was not made" in message


def test_the_reply_is_bounded_to_what_the_budget_affords(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.replies.append(completion({"content": "a"}, prompt=20, completion_=30))
    gateway, _ = gateway_for(server.url, tmp_path, SHIPYARD_DEVELOPER_PRICE=TEN_PER_MILLION)
    reply = gateway.chat("developer", ASK, key="s1/1/0", allowance=Allowance.of(Usage(), CENT))
    cap = _sent_cap(server)
    # a cent buys 1000 tokens, the prompt takes some of them: the reply gets the rest
    assert cap is not None and MIN_REPLY_TOKENS <= cap < 1000
    assert reply.usage.cost_usd <= 0.01


def test_a_roomy_budget_sends_no_max_tokens(server: FakeOpenAI, tmp_path: Path) -> None:
    server.replies.append(completion({"content": "a"}))
    gateway, _ = gateway_for(server.url, tmp_path, SHIPYARD_DEVELOPER_PRICE=TEN_PER_MILLION)
    gateway.chat("developer", ASK, key="s1/1/0", allowance=Allowance.of(Usage(), Budgets()))
    assert _sent_cap(server) is None


def test_the_repair_round_gets_only_what_the_first_reply_left(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    no_risk = {k: v for k, v in PLAN.items() if k != "risk"}
    # the invalid first reply spends most of the cent; its repair cannot afford a reply
    server.replies.append(completion(tool_call("Plan", no_risk), prompt=600, completion_=300))
    gateway, _ = gateway_for(server.url, tmp_path, SHIPYARD_PLANNER_PRICE=TEN_PER_MILLION)
    with pytest.raises(CallOverBudgetError, match="the next planner call"):
        gateway.structured(
            "planner", ASK, Plan, key="plan/0", allowance=Allowance.of(Usage(), CENT)
        )
    assert len(server.received) == 1


async def test_a_run_ends_for_review_before_the_call_that_would_overshoot(
    server: FakeOpenAI, settings: Settings, make_repo: MakeRepo
) -> None:
    repo = make_repo({"tests/test_ok.py": PASSING_TEST})
    # The planner's call is affordable and leaves $0.001; a developer call (its prompt is
    # the whole tool list) costs more than that before it writes a word — were it made,
    # the server's usage would put the run at $0.26 against its cent.
    server.replies += [
        completion(tool_call("Plan", PLAN), prompt=600, completion_=300),
        completion(tool_call("finish", {"summary": "x"}), prompt=20_000, completion_=5_000),
    ]
    env = {
        "SHIPYARD_HOME": str(settings.home),
        "DATABASE_URL": settings.database_url or "",
        "OPENAI_BASE_URL": server.url,
        "OPENAI_API_KEY": "sk-test",
        "SHIPYARD_MODEL_RETRIES": "0",
        "SHIPYARD_PLANNER_PRICE": TEN_PER_MILLION,
        "SHIPYARD_DEVELOPER_PRICE": TEN_PER_MILLION,
    }
    real = dataclasses.replace(Settings.from_env(env), database_url=settings.database_url)
    policy = {"approvals": {"plan": "never"}, "budgets": {"cost_usd": 0.01}}
    async with Runner.open(real) as runner:
        stop = await runner.start(RunInput(goal="add a note", repo=str(repo), policy=policy))
        run = runner.context.runs.get_run(stop.run_id)
    assert stop.status == "needs_human_review" and run.status == "needs_human_review"
    assert stop.error is not None
    assert stop.error.startswith("cost budget spent: the next developer call")
    assert "the call was not made" in stop.error
    assert len(server.received) == 1  # the planner's call only
    planner_cap = _sent_cap(server)
    assert planner_cap is not None and planner_cap < 1000
    assert stop.report is not None
    assert stop.report.usage.model_calls == 1
    assert stop.report.usage.cost_usd == pytest.approx(0.009)
    assert stop.report.usage.cost_usd <= 0.01
