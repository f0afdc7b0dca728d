"""What a model hears and what it says passes secret redaction (``shipyard.redact``).

The gateway sends ``prompt(messages)`` and hands the graph ``reply(message)``:

* A prompt's own messages (system, human, tool results) are redacted in full: secret values
  of the environment and credential-looking patterns. The model's earlier replies in the
  history have only secret values masked, so its code reads back as it wrote it.
* A reply has secret values masked in its text and in its tool calls' arguments, so a
  value the model learnt never reaches a file, a command, the state or a report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from shipyard.redact import redact_obj
from shipyard.secret_values import redact_values_obj


def prompt(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages as they may be sent to a model."""
    return [reply(m) if isinstance(m, AIMessage) else _redacted(m) for m in messages]


def reply(message: AIMessage) -> AIMessage:
    """A model's reply with every secret value masked (content and tool calls)."""
    update: dict[str, Any] = {
        "content": redact_values_obj(message.content),
        "additional_kwargs": redact_values_obj(message.additional_kwargs),
        "tool_calls": redact_values_obj(message.tool_calls),
        "invalid_tool_calls": redact_values_obj(message.invalid_tool_calls),
    }
    if update == {k: getattr(message, k) for k in update}:
        return message
    return message.model_copy(update=update)


def _redacted(message: BaseMessage) -> BaseMessage:
    content = redact_obj(message.content)
    if content == message.content:
        return message
    return message.model_copy(update={"content": content})
