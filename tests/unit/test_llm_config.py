"""Model configuration: prices, the price override, a missing endpoint, Retry-After parsing,
and reading structured output from replies of every shape a server sends."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from shipyard.contracts import Review
from shipyard.errors import ModelUnavailableError, UserInputError
from shipyard.llm import UNPRICED, ModelGateway, cost_usd, price_for
from shipyard.llm.retry import retry_after_s
from shipyard.llm.structured import Invalid, parse_reply, repair_messages
from shipyard.settings import Settings


def test_price_table_lookup_and_override() -> None:
    assert price_for("gpt-4o-mini") == (0.15, 0.60)
    assert price_for("openai/gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert price_for("gpt-4o") == (2.50, 10.00)
    assert price_for("o3-pro") is None  # a different product, not o3 at o3's price
    assert price_for("llama3.1:8b") is None
    assert price_for("llama3.1:8b", (0.1, 0.2)) == (0.1, 0.2)
    assert cost_usd((0.15, 0.60), 1_000_000, 1_000_000) == 0.75
    assert cost_usd(None, 10**9, 10**9) == 0.0


def test_price_from_the_environment(tmp_path: Path) -> None:
    env = {"SHIPYARD_HOME": str(tmp_path), "SHIPYARD_PLANNER_PRICE": "3, 15"}
    settings = Settings.from_env(env)
    assert settings.models["planner"].price == (3.0, 15.0)
    assert settings.models["developer"].price is None


@pytest.mark.parametrize("value", ["3", "a,b", "1,2,3", "-1,2"])
def test_malformed_price_names_the_variable(tmp_path: Path, value: str) -> None:
    env = {"SHIPYARD_HOME": str(tmp_path), "SHIPYARD_DEVELOPER_PRICE": value}
    with pytest.raises(UserInputError, match=r"SHIPYARD_DEVELOPER_PRICE="):
        Settings.from_env(env)


def test_labels_say_when_the_cost_is_unknown(tmp_path: Path) -> None:
    env = {
        "SHIPYARD_HOME": str(tmp_path),
        "OPENAI_BASE_URL": "http://gpu-box:8000/v1/",
        "SHIPYARD_MODEL": "qwen2.5-coder",
        "SHIPYARD_PLANNER_MODEL": "gpt-4.1",
        "SHIPYARD_REVIEWER_PRICE": "0,0",
    }
    gateway = ModelGateway(Settings.from_env(env))
    assert not gateway.scripted
    assert gateway.label("planner") == "openai-compatible:gpt-4.1@http://gpu-box:8000/v1"
    assert gateway.label("developer") == (
        "openai-compatible:qwen2.5-coder@http://gpu-box:8000/v1" + UNPRICED
    )
    assert gateway.label("reviewer") == "openai-compatible:qwen2.5-coder@http://gpu-box:8000/v1"


def test_no_endpoint_fails_at_first_use_not_at_construction(tmp_path: Path) -> None:
    gateway = ModelGateway(Settings.from_env({"SHIPYARD_HOME": str(tmp_path)}))
    assert gateway.label("planner").startswith("openai-compatible:gpt-4o-mini@https://api.openai")
    with pytest.raises(ModelUnavailableError) as caught:
        gateway.chat("planner", [HumanMessage(content="hi")], key="plan/0")
    message = str(caught.value)
    assert "planner role" in message
    for fix in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SHIPYARD_MODEL_SCRIPT"):
        assert fix in message


def test_settings_without_models_is_a_clear_error(tmp_path: Path) -> None:
    gateway = ModelGateway(Settings(home=tmp_path, database_url=None))
    with pytest.raises(ModelUnavailableError, match=r"no model settings for the reviewer role"):
        gateway.chat("reviewer", [HumanMessage(content="hi")], key="s1/1")


def test_retry_after_forms() -> None:
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after": "0.5"}) == 0.5
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8 <= (retry_after_s({"retry-after": in_ten}) or 0) <= 10


def test_parse_reply_shapes() -> None:
    review = {"summary": "ok", "request_changes": True}
    by_call = AIMessage(content="", tool_calls=[{"name": "Review", "args": review, "id": "c1"}])
    assert parse_reply(by_call, Review)[1] == Review(summary="ok", request_changes=True)
    bare = AIMessage(content='Sure! {"summary": "ok"}')
    assert parse_reply(bare, Review) == ('Sure! {"summary": "ok"}', Review(summary="ok"))

    broken = AIMessage(
        content="",
        invalid_tool_calls=[
            {"name": "Review", "args": '{"summary": ', "id": "c2", "error": None, "type": "x"}
        ],
    )
    with pytest.raises(Invalid) as caught:
        parse_reply(broken, Review)
    assert caught.value.raw == '{"summary": '
    assert caught.value.error == "the arguments of the Review call are not valid JSON"

    extra = AIMessage(content='{"summary": "ok", "verdict": "pass"}')
    with pytest.raises(Invalid, match=r"^Review.verdict: Extra inputs are not permitted$"):
        parse_reply(extra, Review)


def test_repair_messages_answer_every_call() -> None:
    two = AIMessage(
        content="",
        tool_calls=[
            {"name": "Review", "args": {}, "id": "a"},
            {"name": "Other", "args": {}, "id": "b"},
        ],
    )
    turn = repair_messages(two, "Review.summary: Field required", "Review")
    assert turn[0] is two
    assert [m.tool_call_id for m in turn[1:] if isinstance(m, ToolMessage)] == ["a", "b"]
    text_only = repair_messages(AIMessage(content="no"), "bad", "Review")
    assert isinstance(text_only[1], HumanMessage)
    assert "Call Review again" in text_only[1].text
