"""The scripted model through the gateway: selection by (role, key), structured output,
the repair round, and every way a script can be wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

from shipyard.contracts import Plan, Review, Usage
from shipyard.errors import ModelUnavailableError
from shipyard.llm import ModelGateway, Script, ScriptedChatModel, ScriptError
from shipyard.settings import Settings

PLAN = {
    "summary": "Fix parse_date",
    "risk": "low",
    "steps": [{"id": "s1", "title": "Fix it", "instructions": "Handle empty strings."}],
}
PLAN_NO_RISK = {k: v for k, v in PLAN.items() if k != "risk"}

SCRIPT: dict[str, object] = {
    "label": "unit",
    "planner": [
        {"json": PLAN, "usage": {"input_tokens": 100, "output_tokens": 40}},
        {
            "json": PLAN_NO_RISK,
            "usage": {"input_tokens": 10, "output_tokens": 5},
            "repair": {"json": PLAN, "usage": {"input_tokens": 20, "output_tokens": 7}},
        },
        {"json": PLAN_NO_RISK, "repair": {"content": "I cannot comply."}},
    ],
    "developer": {
        "s1/1": [
            {
                "content": "writing",
                "tool_calls": [{"name": "write_file", "args": {"path": "a.py", "content": "x"}}],
            },
            "done, compact string form",
        ],
        "s1/2/0": {"tool_calls": [{"name": "finish", "args": {"summary": "ok"}}]},
        "s2/1/0": {"fail": "connection reset by peer"},
        "s3/1/0": {"content": "slow", "delay_s": 0.2},
        "s4/1/0": {"tool_calls": [{"name": "rm_rf", "args": {}}]},
    },
    "reviewer": {"s1/1": {"json": {"summary": "looks fine", "request_changes": False}}},
}


@tool
def write_file(path: str, content: str) -> str:
    """Write ``content`` to ``path``."""
    return f"wrote {path} {len(content)}"


@tool
def finish(summary: str) -> str:
    """End the step with a summary."""
    return summary


def _gateway(tmp_path: Path, script: Mapping[str, object] = SCRIPT) -> tuple[ModelGateway, Path]:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))
    settings = Settings.from_env(
        {"SHIPYARD_HOME": str(tmp_path), "SHIPYARD_MODEL_SCRIPT": str(path)}
    )
    return ModelGateway(settings, sleep=_no_sleep), path


def _settings(tmp_path: Path, script: Path) -> Settings:
    return Settings.from_env({"SHIPYARD_HOME": str(tmp_path), "SHIPYARD_MODEL_SCRIPT": str(script)})


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"a scripted model never retries (asked to sleep {seconds})")


ASK = [HumanMessage(content="go")]


def test_reply_is_a_pure_function_of_role_and_key(tmp_path: Path) -> None:
    gateway, _ = _gateway(tmp_path)
    first = gateway.chat("developer", ASK, tools=[write_file, finish], key="s1/1/0")
    assert first.message.content == "writing"
    [call] = first.message.tool_calls
    assert (call["name"], call["args"]) == ("write_file", {"path": "a.py", "content": "x"})
    assert call["id"] and call["id"].startswith("call_")

    turn1 = gateway.chat("developer", ASK, tools=[write_file, finish], key="s1/1/1")
    assert turn1.message.content == "done, compact string form"
    assert turn1.message.tool_calls == []
    exact = gateway.chat("developer", ASK, tools=[write_file, finish], key="s1/2/0")
    assert exact.message.tool_calls[0]["name"] == "finish"
    assert exact.message.tool_calls[0]["id"] != call["id"]

    # A new gateway (as in a resumed process) asked again gets the same reply and ids.
    again, _ = _gateway(tmp_path)
    replay = again.chat("developer", ASK, tools=[write_file, finish], key="s1/1/0")
    assert replay.message.tool_calls == first.message.tool_calls
    assert replay.usage.model_calls == 1
    assert replay.usage.tool_calls == 0


CHILD = """
import json
from langchain_core.messages import HumanMessage
from shipyard.llm import ModelGateway
from shipyard.settings import Settings
reply = ModelGateway(Settings.from_env()).chat("developer", [HumanMessage("go")], key="s1/1/0")
print(json.dumps(reply.message.tool_calls))
"""


def test_a_new_process_gets_the_same_reply_and_ids(tmp_path: Path) -> None:
    gateway, path = _gateway(tmp_path)
    here = gateway.chat("developer", ASK, tools=[write_file, finish], key="s1/1/0")
    env = {**os.environ, "SHIPYARD_HOME": str(tmp_path), "SHIPYARD_MODEL_SCRIPT": str(path)}
    child = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(child.stdout) == here.message.tool_calls


def test_structured_plan_from_script(tmp_path: Path) -> None:
    gateway, _ = _gateway(tmp_path)
    reply = gateway.structured("planner", ASK, Plan, key="plan/0")
    assert reply.value == Plan.model_validate(PLAN)
    assert reply.error is None
    assert len(reply.raw) == 1
    assert json.loads(reply.raw[0]) == PLAN
    assert reply.usage.model_copy(update={"wall_s": 0.0}) == Usage(
        model_calls=1, input_tokens=100, output_tokens=40
    )
    review = gateway.structured("reviewer", ASK, Review, key="s1/1")
    assert review.value == Review(summary="looks fine")


def test_repair_round_sends_the_error_back_and_counts_both_calls(tmp_path: Path) -> None:
    gateway, _ = _gateway(tmp_path)
    reply = gateway.structured("planner", ASK, Plan, key="plan/1")
    assert reply.value == Plan.model_validate(PLAN)
    assert reply.error is None
    assert [json.loads(raw) for raw in reply.raw] == [PLAN_NO_RISK, PLAN]
    assert (reply.usage.model_calls, reply.usage.input_tokens, reply.usage.output_tokens) == (
        2,
        30,
        12,
    )
    model = gateway._models["planner"]
    assert isinstance(model, ScriptedChatModel)
    keys = [key for key, _ in model.calls]
    assert keys == ["plan/1", "plan/1/repair"]
    repair_turn = model.calls[1][1]
    assert repair_turn[0] == ASK[0]
    [error_msg] = [m for m in repair_turn if isinstance(m, ToolMessage)]
    assert "Plan.risk: Field required" in error_msg.text
    assert error_msg.tool_call_id == repair_turn[1].tool_calls[0]["id"]  # type: ignore[attr-defined]


def test_never_valid_returns_none_with_the_raw_replies_and_the_field(tmp_path: Path) -> None:
    gateway, _ = _gateway(tmp_path)
    reply = gateway.structured("planner", ASK, Plan, key="plan/2")
    assert reply.value is None
    assert json.loads(reply.raw[0]) == PLAN_NO_RISK
    assert reply.raw[1] == "I cannot comply."
    assert reply.usage.model_calls == 2
    # The last error is about the second reply, which had no Plan at all.
    assert reply.error == "the reply has no Plan tool call and no JSON object in its text"


def test_never_valid_error_names_the_field(tmp_path: Path) -> None:
    script = {"planner": [{"json": PLAN_NO_RISK, "repair": {"json": {**PLAN, "risk": "huge"}}}]}
    gateway, _ = _gateway(tmp_path, script)
    reply = gateway.structured("planner", ASK, Plan, key="plan/0")
    assert reply.value is None
    assert len(reply.raw) == 2
    assert reply.error is not None
    assert reply.error.startswith("Plan.risk: Input should be 'low', 'medium' or 'high'")


def test_missing_key_names_the_key_and_the_script(tmp_path: Path) -> None:
    gateway, path = _gateway(tmp_path)
    with pytest.raises(ScriptError) as caught:
        gateway.chat("developer", ASK, key="s9/1/0")
    assert "'s9/1/0'" in str(caught.value)
    assert str(path) in str(caught.value)
    assert "developer" in str(caught.value)
    with pytest.raises(ScriptError, match=r"no planner reply for key 'plan/7'"):
        gateway.structured("planner", ASK, Plan, key="plan/7")
    with pytest.raises(ScriptError, match=r"no developer reply for key 's1/1/2'"):
        gateway.chat("developer", ASK, key="s1/1/2")


def test_label_and_flag_say_scripted(tmp_path: Path) -> None:
    gateway, _ = _gateway(tmp_path)
    assert gateway.scripted
    assert {gateway.label(role) for role in ("planner", "developer", "reviewer")} == {
        "scripted:unit"
    }
    reply = gateway.chat("reviewer", ASK, key="s1/1")
    assert reply.usage.cost_usd == 0.0
    unlabelled = Script({"planner": []}, name="/x/demo-script.json")
    assert ScriptedChatModel(script=unlabelled, role="planner").label == "scripted:demo-script"


def test_scripted_outage_and_delay(tmp_path: Path) -> None:
    gateway, _ = _gateway(tmp_path)
    with pytest.raises(ModelUnavailableError, match="scripted outage: connection reset"):
        gateway.chat("developer", ASK, key="s2/1/0")
    started = time.monotonic()
    slow = gateway.chat("developer", ASK, key="s3/1/0")
    assert time.monotonic() - started >= 0.2
    assert slow.usage.wall_s >= 0.2


def test_tool_not_offered_is_a_script_error(tmp_path: Path) -> None:
    gateway, _ = _gateway(tmp_path)
    with pytest.raises(ScriptError, match=r"calls 'rm_rf', which is not among the tools"):
        gateway.chat("developer", ASK, tools=[write_file, finish], key="s4/1/0")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"is not valid JSON: .* at line 1"),
        ('["a list"]', r"must hold a JSON object"),
        ('{"planer": []}', r"unknown top-level key\(s\) \['planer'\]"),
        ('{"developer": {"s1/1/0": {"contnet": "x", "usage": {}}}}', r"field 'contnet'"),
        ('{"developer": {"s1/1/0": {"usage": {"input_tokens": -1}}}}', r"usage.input_tokens"),
        ('{"developer": {"s1/1": [3]}}', r"developer/s1/1/0: expected a reply"),
    ],
)
def test_bad_script_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    settings = Settings.from_env(
        {"SHIPYARD_HOME": str(tmp_path), "SHIPYARD_MODEL_SCRIPT": str(path)}
    )
    gateway = ModelGateway(settings)  # construction reads nothing
    with pytest.raises(ScriptError, match=message) as caught:
        gateway.chat("developer", ASK, key="s1/1/0")
    assert str(path) in str(caught.value)
    assert caught.value.exit_code == 2


def test_missing_script_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    settings = Settings.from_env(
        {"SHIPYARD_HOME": str(tmp_path), "SHIPYARD_MODEL_SCRIPT": str(path)}
    )
    with pytest.raises(ScriptError, match=r"cannot read model script .*nope.json"):
        ModelGateway(settings).label("planner")


def test_injected_scripted_model_for_one_role(tmp_path: Path) -> None:
    settings = Settings.from_env({"SHIPYARD_HOME": str(tmp_path), "OPENAI_API_KEY": "sk-test"})
    scripted = ScriptedChatModel(script=Script(SCRIPT, name="inline"), role="planner")
    gateway = ModelGateway(settings, models={"planner": scripted})
    assert gateway.scripted
    assert gateway.label("planner") == "scripted:unit"
    assert gateway.label("developer") == "openai-compatible:gpt-4o-mini@https://api.openai.com/v1"
    assert gateway.structured("planner", ASK, Plan, key="plan/0").value is not None
