"""The scripted model: replays replies from a script, for tests and the offline demo.

A reply is chosen by ``(role, key)`` alone — no cursor — so a run resumed in a new process
gets exactly the replies it would have got without the crash. The gateway passes the key
the node gave it (planner ``plan/<round>``, developer ``<step>/<attempt>/<turn>``, reviewer
``<step>/<attempt>``; a structured repair asks for ``<key>/repair``).

Script format (JSON file, or the same shape as a dict)::

    {
      "label": "demo",                                   # shown as "scripted:demo"
      "planner":   [{"json": {...plan...}}, ...],         # list: indexed by plan/<round>
      "reviewer":  {"s1/1": {"json": {...review...}}},
      "developer": {"s1/1": [turn0, turn1, ...],          # compact: s1/1/<turn>
                    "s1/2/0": reply}                      # or one key per turn
    }

Lookup walks the key's ``/``-separated segments: a table (object) matches the longest
joined prefix it has as a key, a list is indexed by the next segment, a reply answers
``repair`` with its ``"repair"`` field. A role section given as a list ignores the key's
first segment (``plan/1`` → item 1). A reply is an object with any of the fields below
(a bare string is short for ``{"content": ...}``)::

    content     text of the reply
    tool_calls  [{"name": "write_file", "args": {...}}]; ids derive from role and key
    json        structured output: returned as a call of the requested schema's tool
    usage       {"input_tokens": 10, "output_tokens": 5}
    delay_s     seconds to sleep before answering (lets a test kill a process mid-call)
    fail        raise ModelUnavailableError with this text (an endpoint outage, replayed)
    repair      the reply to the repair request that follows an invalid structured reply
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeAlias

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.errors import ModelUnavailableError, UserInputError
from shipyard.settings import ROLES


class ScriptError(UserInputError):
    """A script that cannot be read, or has no reply for a key: fix the script."""


class ScriptedUsage(BaseModel):
    """Token counts a scripted reply reports."""

    model_config = ConfigDict(extra="forbid")
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)


class ScriptedToolCall(BaseModel):
    """A tool call a scripted reply makes."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class ScriptedReply(BaseModel):
    """One reply of the script (see the module docstring for the fields)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    content: str = ""
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    json_value: dict[str, Any] | list[Any] | None = Field(default=None, alias="json")
    usage: ScriptedUsage = Field(default_factory=ScriptedUsage)
    delay_s: float = Field(default=0.0, ge=0)
    fail: str | None = None
    repair: ScriptedReply | None = None


REPLY_FIELDS = frozenset({"content", "tool_calls", "json", "usage", "delay_s", "fail", "repair"})
Node: TypeAlias = "ScriptedReply | list[Node] | dict[str, Node]"


class Script:
    """A parsed script; ``reply(role, key)`` is a pure function of its arguments."""

    def __init__(self, data: Mapping[str, Any], *, name: str = "inline") -> None:
        """Parse ``data``; raise ``ScriptError`` naming the place of the first problem."""
        self.name = name
        unknown = sorted(set(data) - {"label", "description", *ROLES})
        if unknown:
            raise ScriptError(f"script {name}: unknown top-level key(s) {unknown}")
        label = data.get("label", Path(name).stem)
        self.label = str(label)
        self.sections: dict[str, Node] = {}
        for role in ROLES:
            if role in data:
                self.sections[role] = _parse(data[role], f"{name}: {role}", top=True)

    @classmethod
    def load(cls, path: Path) -> Script:
        """Read a JSON script file; a missing or unparsable file raises ``ScriptError``."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise ScriptError(f"cannot read model script {path}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise ScriptError(
                f"model script {path} is not valid JSON: {err.msg} at line {err.lineno}"
            ) from None
        if not isinstance(data, dict):
            raise ScriptError(f"model script {path} must hold a JSON object")
        return cls(data, name=str(path))

    def reply(self, role: str, key: str) -> ScriptedReply:
        """The reply for ``(role, key)``; ``ScriptError`` naming both when there is none."""
        section = self.sections.get(role)
        segments = key.split("/")
        if isinstance(section, list):
            segments = segments[1:]
        found = None if section is None else _resolve(section, segments)
        if found is None:
            raise ScriptError(
                f"model script {self.name} has no {role} reply for key {key!r}"
                f" ({_present(section)}); add one to the script"
            )
        return found


def _parse(value: Any, where: str, *, top: bool = False) -> Node:
    if isinstance(value, str) and not top:
        return ScriptedReply(content=value)
    if isinstance(value, list):
        return [_parse(item, f"{where}/{i}") for i, item in enumerate(value)]
    if isinstance(value, dict) and (top or not REPLY_FIELDS.intersection(value)):
        return {str(k): _parse(v, f"{where}/{k}") for k, v in value.items()}
    if isinstance(value, dict):
        try:
            return ScriptedReply.model_validate(value)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            field = ".".join(str(part) for part in first["loc"])
            raise ScriptError(f"script {where}: field {field!r}: {first['msg']}") from None
    raise ScriptError(f"script {where}: expected a reply, list or table, got {value!r:.60}")


def _resolve(node: Node, segments: list[str]) -> ScriptedReply | None:
    if not segments:
        return node if isinstance(node, ScriptedReply) else None
    head, rest = segments[0], segments[1:]
    if isinstance(node, ScriptedReply):
        return _resolve(node.repair, rest) if head == "repair" and node.repair else None
    if isinstance(node, list):
        index = int(head) if head.isdigit() else len(node)
        return _resolve(node[index], rest) if index < len(node) else None
    for n in range(len(segments), 0, -1):
        child = node.get("/".join(segments[:n]))
        found = None if child is None else _resolve(child, segments[n:])
        if found is not None:
            return found
    return None


def _present(section: Node | None) -> str:
    if section is None:
        return "the script has no section for that role"
    if isinstance(section, dict):
        keys = sorted(section)
        return "keys present: " + (", ".join(keys[:12]) + (" ..." if len(keys) > 12 else ""))
    return f"{len(section) if isinstance(section, list) else 1} entries"


class ScriptedChatModel(BaseChatModel):
    """A chat model answering from a ``Script`` for one role.

    Call it with the keyword ``script_key`` (the gateway does). ``calls`` records
    ``(key, messages)`` of every call, so tests can assert what the model was told.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    script: Script
    role: str
    calls: list[tuple[str, list[BaseMessage]]] = Field(default_factory=list, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def label(self) -> str:
        """``scripted:<script label>`` — what the report shows for this role."""
        return f"scripted:{self.script.label}"

    def bind_tools(
        self,
        tools: Any,
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer ``tools`` (and force ``tool_choice``) on later calls, like ``ChatOpenAI``."""
        specs = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=specs, tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        key = kwargs.get("script_key")
        if not isinstance(key, str):
            raise ScriptError(f"the scripted {self.role} model was called without script_key")
        reply = self.script.reply(self.role, key)
        self.calls.append((key, list(messages)))
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.fail is not None:
            raise ModelUnavailableError(
                f"{self.label} ({self.role} {key}): scripted outage: {reply.fail}"
            )
        offered = [spec["function"]["name"] for spec in kwargs.get("tools") or []]
        message = self._message(reply, key, offered, kwargs.get("tool_choice"))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _message(
        self, reply: ScriptedReply, key: str, offered: list[str], choice: Any
    ) -> AIMessage:
        calls = [(call.name, call.args) for call in reply.tool_calls]
        content = reply.content
        if reply.json_value is not None:
            forced = choice if isinstance(choice, str) and choice in offered else None
            name = forced or (offered[0] if len(offered) == 1 else None)
            if name is not None and isinstance(reply.json_value, dict):
                calls.append((name, reply.json_value))
            else:
                content = json.dumps(reply.json_value)
        for name, _ in calls:
            if offered and name not in offered:
                raise ScriptError(
                    f"model script {self.script.name}: {self.role} reply {key!r} calls "
                    f"{name!r}, which is not among the tools offered: {offered}"
                )
        usage = UsageMetadata(
            input_tokens=reply.usage.input_tokens,
            output_tokens=reply.usage.output_tokens,
            total_tokens=reply.usage.input_tokens + reply.usage.output_tokens,
        )
        return AIMessage(
            content=content,
            tool_calls=[_tool_call(self.role, key, i, n, a) for i, (n, a) in enumerate(calls)],
            usage_metadata=usage,
            response_metadata={"model_name": self.label},
        )


def _tool_call(role: str, key: str, index: int, name: str, args: dict[str, Any]) -> ToolCall:
    digest = hashlib.sha256(f"{role}/{key}/{index}".encode()).hexdigest()[:24]
    return ToolCall(name=name, args=args, id=f"call_{digest}", type="tool_call")
