"""Fallback models (docs/architecture.md §7): when a role's model stays unavailable after its
retries, or refuses the request, the next model on the same endpoint answers — over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from shipyard.contracts import Plan
from shipyard.errors import ModelUnavailableError
from shipyard.llm import cost_usd, price_for
from shipyard.settings import Settings
from tests.integration.fake_openai import FakeOpenAI, completion, error, gateway_for, tool_call

ASK = [SystemMessage(content="You are the developer."), HumanMessage(content="Fix the bug.")]


def _models(server: FakeOpenAI) -> list[str]:
    return [request["json"]["model"] for request in server.received]


def test_settings_read_fallbacks_per_role_or_for_all(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "SHIPYARD_HOME": str(tmp_path),
            "SHIPYARD_MODEL_FALLBACKS": " gpt-4o-mini, ,llama-3 ",
            "SHIPYARD_REVIEWER_FALLBACKS": "qwen",
        }
    )
    assert settings.models["planner"].fallbacks == ("gpt-4o-mini", "llama-3")
    assert settings.models["reviewer"].fallbacks == ("qwen",)


def test_an_exhausted_model_falls_back_and_is_priced_as_the_fallback(
    server: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.replies += [error(503, "overloaded")] * 3
    server.replies.append(completion({"content": "from the fallback"}, prompt=1000))
    gateway, sleeps = gateway_for(
        server.url,
        tmp_path,
        SHIPYARD_DEVELOPER_MODEL="big-model",
        SHIPYARD_DEVELOPER_PRICE="100,100",
        SHIPYARD_DEVELOPER_FALLBACKS="gpt-4o-mini",
    )
    assert gateway.label("developer") == (
        f"openai-compatible:big-model@{server.url} (fallbacks: gpt-4o-mini)"
    )
    reply = gateway.chat("developer", ASK, key="s1/1/0")
    assert reply.message.content == "from the fallback"
    assert _models(server) == ["big-model"] * 3 + ["gpt-4o-mini"]
    assert len(sleeps) == 2  # the big model's retries; the fallback answered first time
    # Priced by the table's gpt-4o-mini (0.15 per 1M input), not the big model's price.
    assert reply.usage.cost_usd == cost_usd(price_for("gpt-4o-mini", None), 1000, 7) > 0
    assert "answered by openai-compatible:gpt-4o-mini" in caplog.text


def test_a_refused_request_falls_back_at_once_and_structured_output_works(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    plan = {
        "summary": "s",
        "risk": "low",
        "steps": [{"id": "s1", "title": "t", "instructions": "i"}],
    }
    server.replies += [error(404, "model not found"), completion(tool_call("Plan", plan))]
    gateway, sleeps = gateway_for(
        server.url, tmp_path, SHIPYARD_MODEL="missing-model", SHIPYARD_MODEL_FALLBACKS="gpt-4o"
    )
    reply = gateway.structured("planner", ASK, Plan, key="plan/0")
    assert reply.value is not None and reply.value.summary == "s"
    assert _models(server) == ["missing-model", "gpt-4o"]
    assert sleeps == []


def test_when_every_model_fails_the_error_names_each(server: FakeOpenAI, tmp_path: Path) -> None:
    server.replies += [error(404, "no such model"), error(401, "bad key for this one")]
    gateway, _ = gateway_for(
        server.url, tmp_path, SHIPYARD_MODEL="a-model", SHIPYARD_MODEL_FALLBACKS="b-model"
    )
    with pytest.raises(ModelUnavailableError) as caught:
        gateway.chat("developer", ASK, key="s1/1/0")
    message = str(caught.value)
    assert "the developer model and its fallbacks are unavailable" in message
    assert "a-model" in message and "b-model" in message
    assert "HTTP 404" in message and "HTTP 401" in message
    assert _models(server) == ["a-model", "b-model"]
