"""Retrying a model call: which failures are worth another try, and how long to wait.

Transient (retried ``retries`` times, exponential backoff with jitter, ``Retry-After``
honoured): HTTP 408, 409, 429 and 5xx; timeouts and refused or dropped connections; a 2xx
whose body is not a chat completion (a proxy under load truncating replies is the usual
cause, and a server that always does it ends in the same error one budget later).

Not transient (raised at once): any other 4xx. 401/403/404 mean the configuration is wrong
(key, model name, URL); 400 means the server refused this request (context too long, a
feature it lacks). Retrying those only wastes the wait.

Either way the caller gets ``ModelUnavailableError`` naming the endpoint and what to do;
the run is left resumable by the graph layer.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import openai

from shipyard.errors import ModelUnavailableError
from shipyard.llm.factory import MalformedReplyError

T = TypeVar("T")

_TRANSIENT_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; ``retries`` counts the calls after the first."""

    retries: int
    base_s: float = 1.0
    cap_s: float = 30.0
    max_retry_after_s: float = 60.0
    """A server asking for a longer pause than this (a daily quota) is not waited for."""


@dataclass(frozen=True)
class _Failure:
    reason: str
    transient: bool
    status: int | None = None
    retry_after_s: float | None = None


def call_with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    endpoint: str,
    role: str,
    rng: random.Random,
) -> T:
    """Return ``call()``, retrying transient failures; raise ``ModelUnavailableError`` else.

    ``endpoint`` and ``role`` only shape the error message. ``sleep`` is called once per
    retry with the wait in seconds.
    """
    for attempt in range(policy.retries + 1):
        try:
            return call()
        except (openai.APIError, MalformedReplyError) as err:
            failure = _classify(err)
            if not failure.transient:
                raise ModelUnavailableError(_refused(failure, endpoint, role)) from err
            wait = _wait(policy, attempt, failure.retry_after_s, rng)
            if wait is None or attempt == policy.retries:
                raise ModelUnavailableError(
                    _exhausted(failure, endpoint, attempt + 1, wait is None)
                ) from err
        sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _classify(err: Exception) -> _Failure:
    if isinstance(err, MalformedReplyError):
        return _Failure(f"malformed reply ({err})", transient=True)
    if isinstance(err, openai.APITimeoutError):
        return _Failure("request timed out", transient=True)
    if isinstance(err, openai.APIConnectionError):
        cause = err.__cause__ or err
        return _Failure(f"cannot connect ({type(cause).__name__}: {cause})", transient=True)
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        return _Failure(
            f"HTTP {status}: {_message(err)}",
            transient=status in _TRANSIENT_STATUS or status >= 500,
            status=status,
            retry_after_s=retry_after_s(err.response.headers),
        )
    return _Failure(f"malformed reply ({type(err).__name__}: {err})", transient=True)


def _message(err: openai.APIStatusError) -> str:
    text = err.message or ""
    return text if len(text) <= 200 else text[:200] + "..."


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The pause a server asks for: ``retry-after-ms``, or ``Retry-After`` in seconds or as
    an HTTP date. ``None`` when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _wait(
    policy: RetryPolicy, attempt: int, retry_after: float | None, rng: random.Random
) -> float | None:
    if retry_after is not None:
        return retry_after if retry_after <= policy.max_retry_after_s else None
    # "Equal jitter": at least half the exponential step, so waits still grow.
    step = min(policy.cap_s, policy.base_s * 2.0**attempt)
    return step * rng.uniform(0.5, 1.0)


def _refused(failure: _Failure, endpoint: str, role: str) -> str:
    prefix = f"SHIPYARD_{role.upper()}"
    if failure.status in (401, 403):
        todo = f"check OPENAI_API_KEY (or {prefix}_API_KEY)"
    elif failure.status == 404:
        todo = f"check the model name ({prefix}_MODEL / SHIPYARD_MODEL) and the base URL"
    else:
        todo = "the server refused this request; check that it supports it"
    return f"model endpoint {endpoint} ({role}) refused the request: {failure.reason}; {todo}"


def _exhausted(failure: _Failure, endpoint: str, attempts: int, too_long: bool) -> str:
    if too_long:
        return (
            f"model endpoint {endpoint} asks to wait {failure.retry_after_s:.0f}s "
            f"({failure.reason}); resume the run later with `shipyard resume RUN`"
        )
    return (
        f"model endpoint {endpoint} unavailable after {attempts} attempt(s): "
        f"{failure.reason}; check that the server is running and reachable, "
        "then continue with `shipyard resume RUN`"
    )
