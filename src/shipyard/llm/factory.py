"""The one factory: a role's ``ModelSettings`` → a chat model on an OpenAI-compatible endpoint.

Every role talks Chat Completions through ``langchain-openai`` (OpenAI, vLLM, Ollama, a
LiteLLM proxy — anything that speaks ``POST {base_url}/chat/completions``). The client's own
retries are off (``max_retries=0``): the gateway retries, so one policy covers 429, 5xx,
timeouts, refused connections and malformed replies, and the injected ``sleep`` sees every wait.
"""

from __future__ import annotations

from typing import Any

import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI

from shipyard.errors import ModelUnavailableError
from shipyard.settings import ModelSettings

OPENAI_BASE_URL = "https://api.openai.com/v1"

# A local server (vLLM, Ollama) usually needs no key, but the OpenAI client insists on one.
_NO_KEY = "not-needed"


class MalformedReplyError(Exception):
    """The endpoint answered 2xx with a body that is not a chat completion.

    Raised inside the model (so only for what came back over the wire, never for a bug in
    how we built the request); the gateway retries it like a 5xx.
    """


class CheckedChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` that reports a malformed reply body as ``MalformedReplyError``.

    Stock ``ChatOpenAI`` surfaces such bodies as ``JSONDecodeError``, ``KeyError``,
    ``TypeError`` or (for an empty ``choices``) an ``IndexError`` far from the call — too
    generic to retry on safely. Building the request payload happens first and outside the
    guard, so errors in our own messages still raise as themselves.
    """

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._get_request_payload(messages, stop=stop, **kwargs)
        try:
            result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        except openai.APIError:
            raise
        except (ValueError, KeyError, TypeError) as err:
            raise MalformedReplyError(_short(err)) from err
        return _checked(result)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._get_request_payload(messages, stop=stop, **kwargs)
        try:
            result = await super()._agenerate(
                messages, stop=stop, run_manager=run_manager, **kwargs
            )
        except openai.APIError:
            raise
        except (ValueError, KeyError, TypeError) as err:
            raise MalformedReplyError(_short(err)) from err
        return _checked(result)


def _checked(result: ChatResult) -> ChatResult:
    if not result.generations:
        raise MalformedReplyError("the reply has an empty 'choices' list")
    return result


def _short(err: Exception) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= 300 else text[:300] + "..."


def base_url(settings: ModelSettings) -> str:
    """The endpoint a role talks to (OpenAI's when none is configured)."""
    return (settings.base_url or OPENAI_BASE_URL).rstrip("/")


def endpoint_label(settings: ModelSettings) -> str:
    """``openai-compatible:<model>@<base_url>`` — what the report says served a role."""
    return f"openai-compatible:{settings.model}@{base_url(settings)}"


def build_chat_model(settings: ModelSettings) -> CheckedChatOpenAI:
    """Build the chat model for one role.

    Raises ``ModelUnavailableError`` when there is nothing to talk to: no API key and no
    ``base_url`` (OpenAI itself needs a key; a local server needs its URL).
    """
    if settings.api_key is None and settings.base_url is None:
        role = settings.role.upper()
        raise ModelUnavailableError(
            f"no model endpoint configured for the {settings.role} role: set OPENAI_API_KEY "
            f"(or SHIPYARD_{role}_API_KEY) to use OpenAI, OPENAI_BASE_URL (or "
            f"SHIPYARD_{role}_BASE_URL) for an OpenAI-compatible server such as vLLM, Ollama "
            "or a LiteLLM proxy, or SHIPYARD_MODEL_SCRIPT to replay a scripted model"
        )
    return CheckedChatOpenAI(
        model=settings.model,
        base_url=base_url(settings),
        api_key=settings.api_key or _NO_KEY,
        timeout=settings.timeout_s,
        max_retries=0,
        # Chat Completions is what every OpenAI-compatible server speaks; never let the
        # client switch a model name it recognises over to the Responses API.
        use_responses_api=False,
    )
