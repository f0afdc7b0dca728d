"""The forge seam: one small protocol, and what its adapters share.

An adapter (``github``, ``gitea``, ``gitlab``) is a ``ForgeAdapter``: it knows its forge's
paths, payloads and auth header, and the base holds one repository's ``ForgeClient`` and
turns a refused creation that says the pull request exists into that pull request. GitHub
and Gitea answer pulls in the same shape (``github_shaped_pull``). ``ForgeClient`` turns
answers into typed errors (``delivery.errors``) the same way for all of them:

* a transport error (refused, reset, DNS, timeout) -> ``ForgeUnreachableError``;
* 401 -> ``ForgeAuthenticationError`` naming the token's variable;
* 429, or 403 with the rate limit spent -> wait until the forge's reset time
  (``Retry-After`` seconds, else ``X-RateLimit-Reset`` / ``RateLimit-Reset`` epoch seconds) and
  try again, at most ``RATE_RETRIES`` times and never longer than ``RATE_WAIT_S`` at once;
  beyond that ``ForgeRateLimitError`` with the reset time;
* any other 403 -> ``ForgePermissionError``; 5xx -> retried twice, then
  ``ForgeUnreachableError``; any other 4xx -> ``ForgeRequestError`` with the forge's words.

The transport is a seam: tests talk to fake forges over real HTTP; nothing is patched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx

from shipyard.delivery.errors import (
    ForgeAuthenticationError,
    ForgePermissionError,
    ForgeRateLimitError,
    ForgeRequestError,
    ForgeUnreachableError,
)
from shipyard.delivery.tokens import Token
from shipyard.redact import redact

RATE_RETRIES = 3
RATE_WAIT_S = 60.0
SERVER_RETRIES = 2
TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PullRequest:
    """An open pull (or merge) request."""

    url: str
    number: int
    head: str


@dataclass(frozen=True)
class PullRequestDraft:
    """What to open: ``draft`` asks the forge for a draft (or its draft title convention)."""

    title: str
    body: str
    head: str
    base: str
    draft: bool
    labels: list[str] = field(default_factory=list)


class Forge(Protocol):
    """A forge that holds pull requests for one repository."""

    name: str
    """``github``, ``gitea`` or ``gitlab``."""
    git_username: str
    """The username a git credential helper gives with the token."""

    def find_open(self, head: str) -> PullRequest | None:
        """The open pull request whose head is branch ``head``, if any."""
        ...

    def open(self, draft: PullRequestDraft) -> PullRequest:
        """Open a pull request; when one for ``draft.head`` already exists, return that."""
        ...


Sleep = Callable[[float], None]


class ForgeClient:
    """JSON over HTTP to one forge API with ``headers`` (the auth header among them)."""

    def __init__(
        self,
        api_url: str,
        token: Token,
        headers: Mapping[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        self._sleep = sleep or time.sleep
        self._http = httpx.Client(
            headers={"User-Agent": "shipyard", **headers},
            timeout=TIMEOUT_S,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET ``path`` and return the decoded JSON."""
        return self.send("GET", path, params=params)

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST JSON to ``path`` and return the decoded JSON."""
        return self.send("POST", path, json=body)

    def send(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request with the bounded retries above; the decoded JSON body."""
        rate_tries = server_tries = 0
        while True:
            response = self._request(method, path, **kwargs)
            status = response.status_code
            if status < 400:
                return response.json() if response.content else None
            wait = rate_wait(response)
            if wait is not None:
                if rate_tries >= RATE_RETRIES or wait > RATE_WAIT_S:
                    raise ForgeRateLimitError(
                        f"{self.api_url} rate limit spent ({status})", reset_at=time.time() + wait
                    )
                rate_tries += 1
                self._sleep(wait)
                continue
            if status >= 500 and server_tries < SERVER_RETRIES:
                server_tries += 1
                self._sleep(0.5 * server_tries)
                continue
            raise self._error(method, path, response)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, f"{self.api_url}{path}", **kwargs)
        except httpx.TransportError as err:
            why = f"{type(err).__name__}: {redact(str(err))}"
            where = self.api_url
            raise ForgeUnreachableError(f"cannot reach the forge at {where}: {why}") from None

    def _error(self, method: str, path: str, response: httpx.Response) -> Exception:
        said = redact(response.text.strip())[:500]
        what = f"{method} {self.api_url}{path} answered {response.status_code}"
        variable = self.token.variable
        if response.status_code == 401:
            return ForgeAuthenticationError(
                f"{what}: the forge refused the token in {variable}; set a valid token in "
                f"{variable} ({said})"
            )
        if response.status_code == 403:
            return ForgePermissionError(
                f"{what}: the token in {variable} may not do this; give it write access to "
                f"pull requests ({said})"
            )
        if response.status_code >= 500:
            return ForgeUnreachableError(f"{what}: the forge is failing ({said})")
        return ForgeRequestError(f"{what}: {said}", status=response.status_code)


class ForgeAdapter:
    """One repository's pull requests on one forge: subclasses give ``name``,
    ``git_username``, ``headers``, ``find_open`` and ``open``."""

    name: str
    git_username: str
    headers: ClassVar[Mapping[str, str]]
    """The forge's auth header (``{token}`` stands for the token) and what to accept."""

    def __init__(
        self,
        api_url: str,
        repository: str,
        token: Token,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        headers = {k: v.replace("{token}", token.value) for k, v in self.headers.items()}
        self.client = ForgeClient(api_url, token, headers, transport=transport, sleep=sleep)
        self.repository = repository

    def find_open(self, head: str) -> PullRequest | None:
        """The open pull request whose head is branch ``head``, if any."""
        raise NotImplementedError

    def existing(self, head: str, refusal: ForgeRequestError, words: str) -> PullRequest:
        """The open pull request from ``head`` when the forge refused to open one with
        ``words`` saying it exists already; else ``refusal`` again."""
        found = self.find_open(head) if words in str(refusal) else None
        if found is None:
            raise refusal
        return found


def head_ref(pull: Mapping[str, Any]) -> str | None:
    """The head branch of a GitHub-shaped pull (``head.ref``)."""
    head = pull.get("head")
    return head.get("ref") if isinstance(head, dict) else None


def github_shaped_pull(data: Any, forge: str) -> PullRequest:
    """The ``PullRequest`` in a GitHub-shaped answer (GitHub's, and Gitea's, which copies
    it); ``ForgeRequestError`` naming ``forge`` when it is not one."""
    try:
        return PullRequest(
            url=str(data["html_url"]), number=int(data["number"]), head=head_ref(data) or ""
        )
    except (KeyError, TypeError, ValueError):
        raise ForgeRequestError(
            f"{forge} answered a pull request without html_url/number: {data!r:.300}"
        ) from None


def rate_wait(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds until the forge's rate limit resets, when ``response`` says it is spent."""
    headers = response.headers
    limited = response.status_code == 429 or (
        response.status_code == 403
        and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers)
    )
    if not limited:
        return None
    retry_after = headers.get("retry-after", "")
    if retry_after.strip().isdigit():
        return float(retry_after)
    reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset") or ""
    if reset.strip().isdigit():
        return max(0.0, float(reset) - (time.time() if now is None else now))
    return 1.0


__all__ = [
    "RATE_RETRIES",
    "RATE_WAIT_S",
    "Forge",
    "ForgeAdapter",
    "ForgeClient",
    "PullRequest",
    "PullRequestDraft",
    "github_shaped_pull",
    "head_ref",
    "rate_wait",
]
