"""Context management for the developer's conversation within one attempt
(docs/agent-features.md): when its estimated size passes ``[agent.context] max_tokens``,
older tool results (and the long arguments of older file writes) are condensed to a line
saying what they were, until it is back under three quarters of the budget.

Never condensed: the system prompt, the step request (which carries the repository
instructions and the feedback of the previous attempt), the latest ``run_command`` result
(the latest evidence) and the last ``keep_turns`` model turns with their tool results.

``condensation`` only decides; the node journals its decision (a list of ``Edit``s) and
``apply`` carries it out, so a resumed run applies the recorded edits rather than deciding
again: the conversation after a crash is the one before it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from shipyard.llm.pricing import estimate_tokens
from shipyard.policy.agent import ContextPolicy

MESSAGE_TOKENS = 4
"""What a message costs beyond its text (as the gateway estimates it)."""
HEAD = 2
"""The system prompt and the step request."""
LONG_ARG = 200
"""Tool-call arguments longer than this (characters) are condensed in older turns."""
MARK = "[condensed"


class Edit(TypedDict):
    """One replacement: a message's content, or one argument of one of its tool calls."""

    index: int
    call: int | None
    arg: str | None
    text: str


def estimate(messages: Sequence[BaseMessage]) -> int:
    """The conversation's prompt tokens, estimated (text, tool calls, per-message overhead)."""
    return sum(_tokens(m) for m in messages)


def _tokens(message: BaseMessage) -> int:
    calls = getattr(message, "tool_calls", None) or []
    return estimate_tokens(str(message.content) + json.dumps(calls, default=str)) + MESSAGE_TOKENS


def condensation(messages: Sequence[BaseMessage], rules: ContextPolicy) -> list[Edit] | None:
    """The edits that bring ``messages`` under the budget, oldest first; None when the
    conversation is within ``max_tokens`` (or condensing is off, or nothing is left that may
    be condensed)."""
    if not rules.enabled or estimate(messages) <= rules.max_tokens:
        return None
    target = rules.max_tokens * 3 // 4
    over = estimate(messages) - target
    edits: list[Edit] = []
    for index in _condensable(messages, rules.keep_turns):
        for edit in _edits_of(messages[index], index):
            edits.append(edit)
            over -= _saved(messages[index], edit)
        if over <= 0:
            break
    return edits or None


def _condensable(messages: Sequence[BaseMessage], keep_turns: int) -> list[int]:
    """Indices that may be condensed, oldest first."""
    turns = [i for i, m in enumerate(messages) if isinstance(m, AIMessage)]
    keep_from = turns[-keep_turns] if len(turns) >= keep_turns else HEAD
    evidence = _latest_command_result(messages)
    return [i for i in range(HEAD, keep_from) if i != evidence]


def _latest_command_result(messages: Sequence[BaseMessage]) -> int | None:
    commands: set[str] = set()
    for message in messages:
        if isinstance(message, AIMessage):
            commands |= {c["id"] or "" for c in message.tool_calls if c["name"] == "run_command"}
    found = [i for i, m in enumerate(messages) if isinstance(m, ToolMessage)
             and m.tool_call_id in commands]  # fmt: skip
    return found[-1] if found else None


def _edits_of(message: BaseMessage, index: int) -> list[Edit]:
    text = str(message.content)
    if isinstance(message, ToolMessage) and not text.startswith(MARK):
        first = text.splitlines()[0][:120] if text else ""
        note = f"{MARK}: an older tool result of {len(text)} characters, starting {first!r}; "
        note += "call the tool again if you need it]"
        return [Edit(index=index, call=None, arg=None, text=note)] if len(note) < len(text) else []
    if not isinstance(message, AIMessage):
        return []
    edits: list[Edit] = []
    for n, call in enumerate(message.tool_calls):
        for arg, value in call["args"].items():
            if isinstance(value, str) and len(value) > LONG_ARG and not value.startswith(MARK):
                note = f"{MARK}: {len(value)} characters written by this call]"
                edits.append(Edit(index=index, call=n, arg=arg, text=note))
    return edits


def _saved(message: BaseMessage, edit: Edit) -> int:
    if edit["call"] is None:
        return estimate_tokens(str(message.content)) - estimate_tokens(edit["text"])
    calls: list[Any] = getattr(message, "tool_calls", [])
    value = str(calls[edit["call"]]["args"][edit["arg"]])
    return estimate_tokens(value) - estimate_tokens(edit["text"])


def apply(messages: list[BaseMessage], edits: Sequence[Edit]) -> None:
    """Carry out ``edits`` (as ``condensation`` returned them, or as journaled) in place."""
    for edit in edits:
        message = messages[edit["index"]]
        if edit["call"] is None:
            messages[edit["index"]] = message.model_copy(update={"content": edit["text"]})
            continue
        if not isinstance(message, AIMessage) or edit["arg"] is None:
            raise ValueError(f"condensation edit {edit} does not fit message {edit['index']}")
        calls: list[dict[str, Any]] = [dict(call) for call in message.tool_calls]
        args: dict[str, Any] = dict(calls[edit["call"]]["args"])
        calls[edit["call"]]["args"] = {**args, edit["arg"]: edit["text"]}
        messages[edit["index"]] = message.model_copy(update={"tool_calls": calls})
