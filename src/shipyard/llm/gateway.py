"""The model gateway: the one door the graph's nodes use to reach a model.

It picks the model for a role (injected, scripted, or built from settings on first use),
retries what is transient, falls back to the role's fallback models when its model stays
unavailable, asks for structured output with one repair round, and returns every call's
``Usage`` (calls, tokens, cost, wall time). What it sends and what it returns passes secret
redaction (``llm.redaction``). The caller adds the usage up and decides when a budget is
spent; given the run's ``Allowance``, the gateway also checks each call's worst case before
making it (``llm.pricing``): the reply is bounded by ``max_tokens`` to what the budget
affords, and a call that cannot afford a useful reply is not made (``CallOverBudgetError``).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Generic, TypeVar

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from shipyard.contracts import Usage
from shipyard.errors import ModelUnavailableError, ShipyardError
from shipyard.llm import redaction
from shipyard.llm.factory import build_chat_model, endpoint_label
from shipyard.llm.pricing import (
    MIN_REPLY_TOKENS,
    REPLY_TOKENS_ASSUMED,
    Allowance,
    Price,
    cost_usd,
    estimate_tokens,
    price_for,
    reply_tokens,
    unaffordable,
)
from shipyard.llm.retry import RetryPolicy, call_with_retries
from shipyard.llm.scripted import Script, ScriptedChatModel
from shipyard.llm.structured import Invalid, parse_reply, repair_messages
from shipyard.settings import ModelSettings, Role, Settings

T = TypeVar("T", bound=BaseModel)
log = logging.getLogger(__name__)

MESSAGE_OVERHEAD_TOKENS = 4
"""Tokens a chat message costs beyond its text (role, separators)."""

UNPRICED = " (no price known: cost counted as 0)"
"""Appended to a label when the model is neither in the price table nor given a price."""


class CallOverBudgetError(ShipyardError):
    """A model call was not made: its worst case exceeds what the run's budgets leave.
    Nodes catch it and end the run as ``needs_human_review`` with the message as reason."""


@dataclass(frozen=True)
class ModelReply:
    """One model call: the message (content, tool calls) and what this call used."""

    message: AIMessage
    usage: Usage
    label: str = ""
    """What answered: ``scripted:<label>`` or ``openai-compatible:<model>@<url>`` (a routed
    scripted call says which model it stood in for: ``scripted:<label> as <model>``)."""


@dataclass(frozen=True)
class StructuredReply(Generic[T]):
    """A structured request's outcome, after at most one repair round."""

    value: T | None
    """The validated instance, or ``None`` when no reply validated."""
    usage: Usage
    """Summed over the attempts."""
    raw: list[str] = field(default_factory=list)
    """Every raw reply, in order (kept for escalation)."""
    error: str | None = None
    """The last validation error (naming the fields); ``None`` when ``value`` is set."""
    label: str = ""
    """What answered the last attempt (as ``ModelReply.label``)."""


class ModelGateway:
    """Chat and structured calls per role, with retries and usage accounting.

    ``models`` overrides the model of some roles (tests); otherwise ``settings.model_script``
    makes every role scripted, and failing that each role's model is built from
    ``settings.models[role]`` on first use — so missing credentials surface as
    ``ModelUnavailableError`` at the first call, not here. ``sleep`` is called with every
    retry wait (inject a recorder or a no-op in tests).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        models: Mapping[Role, BaseChatModel] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._models: dict[Role, BaseChatModel] = dict(models or {})
        self._sleep = sleep
        self._fallbacks: dict[Role, list[BaseChatModel]] = {}
        self._by_name: dict[str, BaseChatModel] = {}
        self._script: Script | None = None
        self._rng = random.Random()

    @property
    def scripted(self) -> bool:
        """True when any role answers from a script (the report must say so)."""
        if self._settings.model_script is not None:
            return True
        return any(isinstance(model, ScriptedChatModel) for model in self._models.values())

    def label(self, role: Role) -> str:
        """What serves ``role``: ``scripted:<label>`` or ``openai-compatible:<model>@<url>``.

        A model without a known price gets ``UNPRICED`` appended, so a cost of 0 is never
        mistaken for a free model.
        """
        text = self._endpoint(role)
        if not text.startswith("scripted:") and self._price(role) is None:
            text += UNPRICED
        if fallbacks := self._fallback_names(role):
            text += f" (fallbacks: {', '.join(fallbacks)})"
        return text

    def chat(
        self,
        role: Role,
        messages: Sequence[BaseMessage],
        *,
        tools: Sequence[BaseTool] = (),
        key: str,
        allowance: Allowance | None = None,
        model: str | None = None,
    ) -> ModelReply:
        """One model turn with ``tools`` offered.

        ``model`` names a model to use instead of the role's own (model routing): built like
        the role's (same endpoint and key), priced by the table, without fallbacks. A
        scripted role answers it from the same script, labelled with the name it stands in
        for. ``None`` or the role's own model name is the role's model.

        ``key`` names the call (see ``scripted.py`` for the keys nodes use): it selects the
        scripted reply and tags the trace; a real endpoint otherwise ignores it.

        Raises ``ModelUnavailableError`` when the endpoint fails after the retries (or is
        misconfigured); the message names the endpoint and what to do. With ``allowance``,
        raises ``CallOverBudgetError`` instead of making a call it cannot afford.
        """

        def bind(model: BaseChatModel) -> Runnable[LanguageModelInput, AIMessage]:
            return model.bind_tools(list(tools)) if tools else model

        return self._invoke(role, bind, messages, key, allowance, model)

    def structured(
        self,
        role: Role,
        messages: Sequence[BaseMessage],
        schema: type[T],
        *,
        key: str,
        allowance: Allowance | None = None,
    ) -> StructuredReply[T]:
        """Ask for an instance of ``schema``; one repair round if the first reply is invalid.

        The schema is offered as a tool named after the class and forced (see
        ``structured.py``). The repair round resends the invalid reply with the error and
        uses the key ``<key>/repair``. If that still does not validate, ``value`` is
        ``None`` and ``raw`` / ``error`` are kept for escalation. ``allowance`` as for
        ``chat``; the repair round gets what the first reply left.
        """

        def bind(model: BaseChatModel) -> Runnable[LanguageModelInput, AIMessage]:
            return model.bind_tools([schema], tool_choice=schema.__name__)

        history = list(messages)
        usage, error = Usage(), ""
        raw: list[str] = []
        for attempt_key in (key, f"{key}/repair"):
            left = allowance.after(usage) if allowance is not None else None
            reply = self._invoke(role, bind, history, attempt_key, left)
            usage += reply.usage
            try:
                text, value = parse_reply(reply.message, schema)
            except Invalid as bad:
                raw.append(bad.raw)
                error = bad.error
                history += repair_messages(reply.message, error, schema.__name__)
                continue
            raw.append(text)
            return StructuredReply(value=value, usage=usage, raw=raw, label=reply.label)
        return StructuredReply(value=None, usage=usage, raw=raw, error=error, label=reply.label)

    def _invoke(
        self,
        role: Role,
        bind: Callable[[BaseChatModel], Runnable[LanguageModelInput, AIMessage]],
        messages: Sequence[BaseMessage],
        key: str,
        allowance: Allowance | None = None,
        routed: str | None = None,
    ) -> ModelReply:
        """The role's model, retried; then each fallback model in turn, retried alike (or
        only the ``routed`` model, see ``chat``)."""
        candidates = self._routed(role, routed) if routed else self._candidates(role)
        extra: dict[str, Any] = {}
        if isinstance(candidates[0][0], ScriptedChatModel):
            extra["script_key"] = key
        retries = self._model_settings(role).retries if role in self._settings.models else 0
        # Traces (LangSmith, Studio) show which role and script key each call was.
        config = RunnableConfig(run_name=f"model:{role}", metadata={"role": role, "key": key})
        failures: list[str] = []
        sent = redaction.prompt(messages)
        for model, endpoint in candidates:
            runnable = bind(model)
            if allowance is not None:
                runnable = self._bounded(role, model, runnable, sent, allowance)
            started = time.monotonic()
            try:
                message = call_with_retries(
                    partial(runnable.invoke, sent, config, **extra),
                    policy=RetryPolicy(retries=retries),
                    sleep=self._sleep,
                    endpoint=endpoint,
                    role=role,
                    rng=self._rng,
                )
            except ModelUnavailableError as err:
                failures.append(str(err))
                continue
            if failures:
                log.warning("%s: %s; answered by %s", role, "; ".join(failures), endpoint)
            message = redaction.reply(message)
            usage = self._usage(role, model, message, started)
            return ModelReply(message=message, usage=usage, label=endpoint)
        if len(failures) == 1:
            raise ModelUnavailableError(failures[0])
        raise ModelUnavailableError(
            f"the {role} model and its fallbacks are unavailable: " + " | ".join(failures)
        )

    def _bounded(
        self,
        role: Role,
        model: BaseChatModel,
        runnable: Runnable[LanguageModelInput, AIMessage],
        messages: Sequence[BaseMessage],
        allowance: Allowance,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """``runnable`` with its reply bounded to what ``allowance`` affords, or raise
        ``CallOverBudgetError`` when that is less than a useful reply."""
        price = self._price(role, model)
        prompt = _prompt_tokens(messages, runnable)
        most = reply_tokens(price, prompt, allowance)
        if most < MIN_REPLY_TOKENS:
            raise CallOverBudgetError(unaffordable(price, prompt, allowance, role))
        if most >= REPLY_TOKENS_ASSUMED or isinstance(model, ScriptedChatModel):
            return runnable
        configured = getattr(model, "max_tokens", None)
        return runnable.bind(max_tokens=min(most, configured or most))

    def _candidates(self, role: Role) -> list[tuple[BaseChatModel, str]]:
        """The role's model and its fallback models (built on first use), with labels."""
        candidates = [(self._model(role), self._endpoint(role))]
        names = self._fallback_names(role)
        if names and role not in self._fallbacks:
            primary = self._model_settings(role)
            self._fallbacks[role] = [
                build_chat_model(replace(primary, model=name, price=None, fallbacks=()))
                for name in names
            ]
        for model in self._fallbacks.get(role, []):
            candidates.append((model, self._model_endpoint(model)))
        return candidates

    def _routed(self, role: Role, name: str) -> list[tuple[BaseChatModel, str]]:
        """The one candidate for a routed call: ``name`` on the role's endpoint."""
        own = self._model(role)
        if isinstance(own, ScriptedChatModel):
            return [(own, f"{own.label} as {name}")]
        if name == getattr(own, "model_name", None):
            return [(own, self._endpoint(role))]
        if name not in self._by_name:
            primary = self._model_settings(role)
            self._by_name[name] = build_chat_model(
                replace(primary, model=name, price=None, fallbacks=())
            )
        model = self._by_name[name]
        return [(model, self._model_endpoint(model))]

    def _fallback_names(self, role: Role) -> tuple[str, ...]:
        """Fallbacks apply to a model built from settings (not injected, not scripted)."""
        settings = self._settings.models.get(role)
        if settings is None or self._settings.model_script is not None:
            return ()
        if role in self._models and not isinstance(self._models[role], ChatOpenAI):
            return ()
        return settings.fallbacks

    def _endpoint(self, role: Role) -> str:
        model = self._models.get(role)
        if model is not None:
            return self._model_endpoint(model)
        if self._settings.model_script is not None:
            return f"scripted:{self._load_script().label}"
        return endpoint_label(self._model_settings(role))

    @staticmethod
    def _model_endpoint(model: BaseChatModel) -> str:
        if isinstance(model, ScriptedChatModel):
            return model.label
        if isinstance(model, ChatOpenAI):
            return f"openai-compatible:{model.model_name}@{model.openai_api_base}"
        return f"{type(model).__name__}:{getattr(model, 'model_name', '') or '?'}"

    def _usage(self, role: Role, model: BaseChatModel, message: AIMessage, started: float) -> Usage:
        tokens = message.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        input_tokens, output_tokens = tokens["input_tokens"], tokens["output_tokens"]
        return Usage(
            model_calls=1,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd(self._price(role, model), input_tokens, output_tokens),
            wall_s=round(time.monotonic() - started, 3),
        )

    def _price(self, role: Role, model: BaseChatModel | None = None) -> Price | None:
        """The price of ``model`` (default: the role's own); the role's ``price`` setting
        applies to its own model, a fallback is priced by the table."""
        own = self._models.get(role)
        model = model or own
        if isinstance(model, ScriptedChatModel):
            return None
        settings = self._settings.models.get(role)
        name = getattr(model, "model_name", None) or (settings.model if settings else "")
        given = settings.price if settings and model is own else None
        return price_for(str(name), given)

    def _model(self, role: Role) -> BaseChatModel:
        if role not in self._models:
            if self._settings.model_script is not None:
                self._models[role] = ScriptedChatModel(script=self._load_script(), role=role)
            else:
                self._models[role] = build_chat_model(self._model_settings(role))
        return self._models[role]

    def _model_settings(self, role: Role) -> ModelSettings:
        settings = self._settings.models.get(role)
        if settings is None:
            raise ModelUnavailableError(
                f"no model settings for the {role} role; build Settings with "
                "Settings.from_env() or give models[role]"
            )
        return settings

    def _load_script(self) -> Script:
        if self._script is None:
            path = self._settings.model_script
            if path is None:
                raise AssertionError("_load_script called without a model script")
            self._script = Script.load(path)
        return self._script


def _prompt_tokens(
    messages: Sequence[BaseMessage], runnable: Runnable[LanguageModelInput, AIMessage]
) -> int:
    """The request's prompt tokens, estimated: every message (text and tool calls) and
    what the binding sends along (tool schemas, tool choice)."""
    parts = [
        str(m.content) + json.dumps(getattr(m, "tool_calls", None) or [], default=str)
        for m in messages
    ]
    if isinstance(runnable, RunnableBinding):
        parts.append(json.dumps(runnable.kwargs, default=str))
    return estimate_tokens("".join(parts)) + MESSAGE_OVERHEAD_TOKENS * len(messages)
