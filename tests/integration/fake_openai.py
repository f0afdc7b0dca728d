"""A local HTTP server speaking OpenAI's chat-completions protocol — the far side of the wire
for tests that drive the real ``langchain-openai`` client through the gateway — and helpers to
script its replies. ``openai_server`` is registered as the ``server`` fixture in conftest."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shipyard.llm import ModelGateway
from shipyard.settings import Settings


@dataclass
class Reply:
    """One canned HTTP response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class FakeOpenAI:
    """What the server will answer (in order) and what it received."""

    url: str = ""
    replies: list[Reply] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)


def completion(message: dict[str, Any], *, prompt: int = 11, completion_: int = 7) -> Reply:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": "tool_calls" if "tool_calls" in message else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_,
            "total_tokens": prompt + completion_,
        },
    }
    return Reply(body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def tool_call(name: str, args: dict[str, Any] | str, call_id: str = "call_abc") -> dict[str, Any]:
    arguments = args if isinstance(args, str) else json.dumps(args)
    return {
        "content": None,
        "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ],
    }


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"error": {"message": message, "type": "test", "code": None}}).encode()
    return Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


def openai_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fake.received.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization"),
                    "json": json.loads(self.rfile.read(length)),
                }
            )
            reply = fake.replies.pop(0) if fake.replies else error(500, "no reply queued")
            time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class Sleeps(list[float]):
    """An injected ``sleep`` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def gateway_for(url: str, tmp_path: Path, **env: str) -> tuple[ModelGateway, Sleeps]:
    base = {
        "SHIPYARD_HOME": str(tmp_path),
        "OPENAI_BASE_URL": url,
        "OPENAI_API_KEY": "sk-test",
        "SHIPYARD_MODEL_RETRIES": "2",
        "SHIPYARD_MODEL_TIMEOUT": "5",
    }
    sleeps = Sleeps()
    return ModelGateway(Settings.from_env({**base, **env}), sleep=sleeps), sleeps
