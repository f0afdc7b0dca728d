"""Model routing by difficulty: a routine step starts on the cheap developer model, a refine
(attempt 2) or a risky step gets the strong one; the report shows calls, tokens and cost per
model. Scripted model through the whole graph, and the real OpenAI client against a local
fake endpoint for the model names on the wire."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from shipyard.contracts import RunInput
from shipyard.lifecycle.runner import Runner
from shipyard.settings import Settings
from shipyard.store import Journal, make_engine
from tests.integration.conftest import MakeRepo, WriteScript
from tests.integration.fake_openai import FakeOpenAI, completion, gateway_for
from tests.support import call, finish, plan_reply

pytestmark = pytest.mark.slow  # whole runs through the graph

REPO = {
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\ntestpaths = ["tests"]\n',
    "mod.py": "def f():\n    return 1\n",
    "tests/test_mod.py": "from mod import f\n\n\ndef test_f():\n    assert f() == 2\n",
}
ROUTING = {"enabled": True, "cheap_model": "cheap-m", "strong_model": "strong-m"}
USAGE = {"input_tokens": 100, "output_tokens": 10}


def _turn(reply: dict[str, Any]) -> dict[str, Any]:
    return {**reply, "usage": USAGE}


def _write(value: int) -> dict[str, Any]:
    return _turn(call("write_file", path="mod.py", content=f"def f():\n    return {value}\n"))


async def _run(settings: Settings, repo: Path, script: Path, routing: dict[str, Any]) -> Any:
    policy = {"approvals": {"plan": "never"}, "agent": {"routing": routing}}
    scripted = dataclasses.replace(settings, model_script=script)
    async with Runner.open(scripted) as runner:
        return await runner.start(RunInput(goal="make f return 2", repo=str(repo), policy=policy))


def _routes(settings: Settings, run_id: str) -> dict[str, set[str]]:
    """Step attempt (``s1/1``) -> the models its developer calls were routed to."""
    engine = make_engine(settings.database_url or "")
    try:
        entries = Journal(engine).entries(run_id)
    finally:
        engine.dispose()
    routes: dict[str, set[str]] = {}
    for e in entries:
        if "/execute/" in e.step_key and e.call_id.startswith("model."):
            attempt = e.step_key.split("/execute/")[1]
            routes.setdefault(attempt, set()).add(str(e.intent["route"]["model"]))
    return routes


async def test_a_refine_escalates_to_the_strong_model_and_the_report_has_the_economics(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(REPO)
    script = write_script(
        {
            "planner": [plan_reply(("s1", "fix f"))],
            "developer": {
                "s1/1": [_write(3), _turn(finish("returns 3"))],  # wrong: the test fails
                "s1/2": [_write(2), _turn(finish("returns 2"))],
            },
        }
    )
    stop = await _run(settings, repo, script, ROUTING)
    assert stop.status == "completed"
    assert stop.report.steps[0].attempts == 2
    assert _routes(settings, stop.run_id) == {"s1/1": {"cheap-m"}, "s1/2": {"strong-m"}}
    usage = stop.report.model_usage
    assert set(usage) == {"scripted:test", "scripted:test as cheap-m", "scripted:test as strong-m"}
    for label in ("scripted:test as cheap-m", "scripted:test as strong-m"):
        assert usage[label].model_calls == 2
        assert usage[label].input_tokens == 200 and usage[label].output_tokens == 20
    assert usage["scripted:test"].model_calls == 1  # the planner
    assert sum(u.model_calls for u in usage.values()) == stop.report.usage.model_calls
    markdown = (Path(stop.report.report_path).parent / "report.md").read_text()
    assert "- scripted:test as strong-m: 2 call(s), 220 tokens, $0.0000" in markdown


async def test_a_high_risk_step_starts_on_the_strong_model(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(REPO)
    plan = plan_reply(("s1", "fix f"))
    plan["json"]["steps"][0]["risk"] = "high"
    script = write_script({"planner": [plan], "developer": {"s1/1": [_write(2), finish()]}})
    stop = await _run(settings, repo, script, ROUTING)
    assert stop.status == "completed"
    assert _routes(settings, stop.run_id) == {"s1/1": {"strong-m"}}


async def test_without_routing_every_attempt_uses_the_role_model(
    settings: Settings, make_repo: MakeRepo, write_script: WriteScript
) -> None:
    repo = make_repo(REPO)
    script = write_script(
        {
            "planner": [plan_reply(("s1", "fix f"))],
            "developer": {"s1/1": [_write(3), finish()], "s1/2": [_write(2), finish()]},
        }
    )
    stop = await _run(settings, repo, script, {"enabled": False, "strong_model": "strong-m"})
    assert stop.status == "completed"
    assert set(stop.report.model_usage) == {"scripted:test"}


def test_a_routed_call_asks_the_endpoint_for_the_routed_model(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    server.replies += [
        completion({"content": "a"}, prompt=1_000_000, completion_=0),
        completion({"content": "b"}, prompt=1_000_000, completion_=0),
    ]
    gateway, _ = gateway_for(server.url, tmp_path, SHIPYARD_DEVELOPER_MODEL="gpt-4o-mini")
    ask = [HumanMessage("hi")]
    strong = gateway.chat("developer", ask, key="s1/2/0", model="gpt-4o")
    own = gateway.chat("developer", ask, key="s1/1/0")
    assert [r["json"]["model"] for r in server.received] == ["gpt-4o", "gpt-4o-mini"]
    assert strong.label == f"openai-compatible:gpt-4o@{server.url}"
    assert strong.usage.cost_usd == 2.5 and own.usage.cost_usd == 0.15  # each at its price
