"""Structured output: asking for a pydantic class, reading it back, and the repair prompt.

How the schema is requested: as one tool named after the class (``Plan``, ``Review``), with
``tool_choice`` forcing that tool — OpenAI's ``function_calling`` method. It is the form the
widest range of OpenAI-compatible servers accept: vLLM (named tool choice via guided
decoding), LiteLLM (passed through), Ollama (tools supported; a forced choice is ignored, so
the model may answer in plain text). ``response_format=json_schema`` is rarer outside OpenAI.

How it is read back: the arguments of the tool call named after the class (or the only tool
call); failing that, a JSON object in the text content (fenced or bare) — what a server
that ignores ``tool_choice`` tends to send. Validation is pydantic's, but the error text is
ours: one line per field, ``Plan.steps.0.title: Field required``.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class Invalid(Exception):
    """A reply that did not yield a valid instance: the raw text and the error (its ``str``)."""

    def __init__(self, raw: str, error: str) -> None:
        super().__init__(error)
        self.raw = raw
        self.error = error


def parse_reply(message: AIMessage, schema: type[M]) -> tuple[str, M]:
    """Return ``(raw, instance)``; raise ``Invalid(raw, error)`` when it does not validate.

    ``raw`` is the text the value was read from (tool arguments as JSON, or the content).
    """
    raw, data = _payload(message, schema.__name__)
    try:
        return raw, schema.model_validate(data)
    except ValidationError as err:
        raise Invalid(raw, validation_error(schema.__name__, err)) from None


def validation_error(name: str, err: ValidationError) -> str:
    """Pydantic's errors as ``Name.field.path: message`` lines, joined by ``; ``."""
    parts = []
    for item in err.errors(include_url=False):
        loc = ".".join(str(part) for part in (name, *item["loc"]))
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def _payload(message: AIMessage, name: str) -> tuple[str, Any]:
    calls = [call for call in message.tool_calls if call["name"] == name]
    if not calls and len(message.tool_calls) == 1:
        calls = list(message.tool_calls)
    if calls:
        args = calls[0]["args"]
        return json.dumps(args, sort_keys=True), args
    for bad in message.invalid_tool_calls:
        if bad.get("name") in (name, None) or len(message.invalid_tool_calls) == 1:
            raw = bad.get("args") or ""
            raise Invalid(raw, f"the arguments of the {name} call are not valid JSON")
    return _from_text(message.text, name)


def _from_text(text: str, name: str) -> tuple[str, Any]:
    fenced = _FENCE.search(text)
    candidate = (fenced.group(1) if fenced else text).strip()
    if not candidate.startswith(("{", "[")):
        start = candidate.find("{")
        candidate = candidate[start:] if start >= 0 else ""
    try:
        return text, json.loads(candidate)
    except json.JSONDecodeError:
        raise Invalid(
            text, f"the reply has no {name} tool call and no JSON object in its text"
        ) from None


def repair_messages(reply: AIMessage, error: str, name: str) -> list[BaseMessage]:
    """The turn that sends an invalid reply back: the reply itself plus the error.

    When the reply made tool calls, every call gets a ``ToolMessage`` (the API requires an
    answer per call id) carrying the error; otherwise the error goes in a human message.
    """
    ask = f"Call {name} again with arguments that fix exactly these errors: {error}"
    calls = [*reply.tool_calls, *reply.invalid_tool_calls]
    ids = [call_id for call in calls if (call_id := call.get("id"))]
    if ids:
        return [reply, *(ToolMessage(content=f"Error. {ask}", tool_call_id=i) for i in ids)]
    return [reply, HumanMessage(content=f"Your reply did not validate. {ask}")]
