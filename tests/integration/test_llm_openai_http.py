"""The real ``langchain-openai`` client, through the gateway, against a local HTTP server
that speaks OpenAI's chat-completions protocol (the only fake: the far side of the wire)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool

from shipyard.contracts import Plan, Usage
from shipyard.errors import ModelUnavailableError
from tests.integration.fake_openai import (
    FakeOpenAI,
    Reply,
    completion,
    error,
    gateway_for,
    tool_call,
)

PLAN = {
    "summary": "Fix parse_date",
    "risk": "low",
    "steps": [{"id": "s1", "title": "Fix it", "instructions": "Handle empty strings."}],
}
ASK = [SystemMessage(content="You are the developer."), HumanMessage(content="Fix the bug.")]


@tool
def write_file(path: str, content: str) -> str:
    """Write ``content`` to the file at ``path`` (relative to the workspace)."""
    return path + content


def test_tool_call_over_http(server: FakeOpenAI, tmp_path: Path) -> None:
    server.replies.append(completion(tool_call("write_file", {"path": "a.py", "content": "x=1"})))
    gateway, sleeps = gateway_for(server.url, tmp_path, SHIPYARD_DEVELOPER_MODEL="qwen-coder")

    reply = gateway.chat("developer", ASK, tools=[write_file], key="s1/1/0")

    assert reply.message.tool_calls == [
        {
            "name": "write_file",
            "args": {"path": "a.py", "content": "x=1"},
            "id": "call_abc",
            "type": "tool_call",
        }
    ]
    [request] = server.received
    assert request["path"] == "/v1/chat/completions"
    assert request["authorization"] == "Bearer sk-test"
    sent = request["json"]
    assert sent["model"] == "qwen-coder"
    assert sent["messages"] == [
        {"role": "system", "content": "You are the developer."},
        {"role": "user", "content": "Fix the bug."},
    ]
    [offered] = sent["tools"]
    assert offered["function"]["name"] == "write_file"
    assert set(offered["function"]["parameters"]["properties"]) == {"path", "content"}
    assert "tool_choice" not in sent
    assert sleeps == []
    assert gateway.label("developer") == (
        f"openai-compatible:qwen-coder@{server.url} (no price known: cost counted as 0)"
    )


def test_structured_plan_over_http_with_a_repair_round(server: FakeOpenAI, tmp_path: Path) -> None:
    no_risk = {k: v for k, v in PLAN.items() if k != "risk"}
    server.replies += [
        completion(tool_call("Plan", no_risk, "call_1"), prompt=50, completion_=20),
        completion(tool_call("Plan", PLAN, "call_2"), prompt=80, completion_=25),
    ]
    gateway, _ = gateway_for(server.url, tmp_path)

    reply = gateway.structured("planner", ASK, Plan, key="plan/0")

    assert reply.value == Plan.model_validate(PLAN)
    assert reply.error is None
    assert [json.loads(raw) for raw in reply.raw] == [no_risk, PLAN]
    assert (reply.usage.model_calls, reply.usage.input_tokens, reply.usage.output_tokens) == (
        2,
        130,
        45,
    )
    first, second = (request["json"] for request in server.received)
    [schema_tool] = first["tools"]
    assert schema_tool["function"]["name"] == "Plan"
    assert {"summary", "steps", "risk"} <= set(schema_tool["function"]["parameters"]["properties"])
    assert first["tool_choice"] == {"type": "function", "function": {"name": "Plan"}}
    # The repair turn: the invalid call goes back with the error as its tool result.
    assert second["messages"][:2] == first["messages"]
    assert second["messages"][2]["tool_calls"][0]["id"] == "call_1"
    assert second["messages"][3]["role"] == "tool"
    assert second["messages"][3]["tool_call_id"] == "call_1"
    assert "Plan.risk: Field required" in second["messages"][3]["content"]


def test_structured_plan_as_json_text_from_a_server_that_ignores_tool_choice(
    server: FakeOpenAI, tmp_path: Path
) -> None:
    text = "Here is the plan:\n```json\n" + json.dumps(PLAN) + "\n```"
    server.replies.append(completion({"content": text}))
    gateway, _ = gateway_for(server.url, tmp_path)
    reply = gateway.structured("planner", ASK, Plan, key="plan/0")
    assert reply.value == Plan.model_validate(PLAN)
    assert reply.raw == [text]
    assert len(server.received) == 1


def test_429_with_retry_after_then_success(server: FakeOpenAI, tmp_path: Path) -> None:
    server.replies += [
        error(429, "Rate limit reached", {"Retry-After": "2"}),
        completion({"content": "hello"}),
    ]
    gateway, sleeps = gateway_for(server.url, tmp_path)
    reply = gateway.chat("developer", ASK, key="s1/1/0")
    assert reply.message.content == "hello"
    assert sleeps == [2.0]
    assert len(server.received) == 2
    assert server.received[0]["json"] == server.received[1]["json"]
    assert reply.usage.model_calls == 1


def test_5xx_beyond_retries_names_the_endpoint(server: FakeOpenAI, tmp_path: Path) -> None:
    server.replies += [error(500, "boom"), error(502, "bad gateway"), error(503, "overloaded")]
    gateway, sleeps = gateway_for(server.url, tmp_path)
    with pytest.raises(ModelUnavailableError) as caught:
        gateway.chat("developer", ASK, key="s1/1/0")
    message = str(caught.value)
    assert server.url in message
    assert "after 3 attempt(s)" in message
    assert "HTTP 503" in message
    assert "shipyard resume" in message
    assert caught.value.exit_code == 3
    assert len(server.received) == 3
    # Exponential backoff with jitter: retry i waits within [2**i / 2, 2**i] seconds.
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0


def test_a_long_retry_after_is_not_waited_for(server: FakeOpenAI, tmp_path: Path) -> None:
    server.replies.append(error(429, "quota exceeded", {"Retry-After": "3600"}))
    gateway, sleeps = gateway_for(server.url, tmp_path)
    with pytest.raises(ModelUnavailableError, match=r"asks to wait 3600s") as caught:
        gateway.chat("developer", ASK, key="s1/1/0")
    assert server.url in str(caught.value)
    assert sleeps == []
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "check OPENAI_API_KEY"), (404, "check the model name"), (400, "refused this request")],
)
def test_4xx_is_not_retried(server: FakeOpenAI, tmp_path: Path, status: int, hint: str) -> None:
    server.replies.append(error(status, "nope"))
    gateway, sleeps = gateway_for(server.url, tmp_path)
    with pytest.raises(ModelUnavailableError) as caught:
        gateway.chat("reviewer", ASK, key="s1/1")
    assert hint in str(caught.value)
    assert f"HTTP {status}" in str(caught.value)
    assert server.url in str(caught.value)
    assert sleeps == []
    assert len(server.received) == 1


def test_malformed_body_is_retried(server: FakeOpenAI, tmp_path: Path) -> None:
    json_type = {"Content-Type": "application/json"}
    server.replies += [Reply(body=b'{"id": "x", "choi', headers=json_type)]
    server.replies += [completion({"content": "fine now"})]
    gateway, sleeps = gateway_for(server.url, tmp_path)
    reply = gateway.chat("developer", ASK, key="s1/1/0")
    assert reply.message.content == "fine now"
    assert len(sleeps) == 1
    assert len(server.received) == 2


@pytest.mark.parametrize(
    "body",
    [b'{"id": "x", "object": "chat.completion"}', b'{"id": "x", "choices": []}', b"<html>"],
    ids=["missing-choices", "empty-choices", "html"],
)
def test_always_malformed_ends_unavailable(server: FakeOpenAI, tmp_path: Path, body: bytes) -> None:
    server.replies += [Reply(body=body, headers={"Content-Type": "application/json"})] * 3
    gateway, sleeps = gateway_for(server.url, tmp_path)
    with pytest.raises(ModelUnavailableError, match=r"malformed reply") as caught:
        gateway.chat("developer", ASK, key="s1/1/0")
    assert server.url in str(caught.value)
    assert len(sleeps) == 2
    assert len(server.received) == 3


def test_timeout_is_retried(server: FakeOpenAI, tmp_path: Path) -> None:
    server.replies += [completion({"content": "late"}), completion({"content": "on time"})]
    server.replies[0].delay_s = 1.0
    gateway, sleeps = gateway_for(server.url, tmp_path, SHIPYARD_MODEL_TIMEOUT="0.3")
    reply = gateway.chat("developer", ASK, key="s1/1/0")
    assert reply.message.content == "on time"
    assert len(sleeps) == 1


def test_connection_refused_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    gateway, sleeps = gateway_for(url, tmp_path)
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        gateway.chat("planner", ASK, key="plan/0")
    assert time.monotonic() - started < 5
    assert url in str(caught.value)
    assert "cannot connect" in str(caught.value)
    assert len(sleeps) == 2


def test_usage_and_cost_from_the_server_usage(server: FakeOpenAI, tmp_path: Path) -> None:
    server.replies += [
        completion({"content": "a"}, prompt=1200, completion_=300),
        completion({"content": "b"}, prompt=1200, completion_=300),
    ]
    gateway, _ = gateway_for(server.url, tmp_path, SHIPYARD_REVIEWER_PRICE="1,2")

    priced = gateway.chat("developer", ASK, key="s1/1/0")  # gpt-4o-mini: 0.15 / 0.60
    assert priced.usage.model_copy(update={"wall_s": 0}) == Usage(
        model_calls=1, input_tokens=1200, output_tokens=300, cost_usd=0.00036
    )
    assert 0 < priced.usage.wall_s < 5
    overridden = gateway.chat("reviewer", ASK, key="s1/1")
    assert overridden.usage.cost_usd == pytest.approx(0.0018)
    assert gateway.label("reviewer") == f"openai-compatible:gpt-4o-mini@{server.url}"
