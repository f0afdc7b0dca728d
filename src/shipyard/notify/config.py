"""Where notifications go and how hard the sender tries: read from the environment and the
server's configuration file, only when asked.

* ``SHIPYARD_NOTIFY_URL``: one endpoint (named ``env``) receiving every event (unset: none)
* ``SHIPYARD_NOTIFY_SECRET``: its signing secret (required for format ``json``)
* ``SHIPYARD_NOTIFY_FORMAT``: ``json`` (a signed envelope, the default) or ``slack``
* ``SHIPYARD_NOTIFY_CONFIG``: a TOML file with a ``[notify]`` table (default:
  ``$SHIPYARD_HOME/server.toml`` when it exists)
* ``SHIPYARD_PUBLIC_URL``: the server's public URL; events then link to ``/ui/runs/{id}``
* ``SHIPYARD_NOTIFY_ATTEMPTS``: attempts per delivery before it is recorded ``failed`` (8)
* ``SHIPYARD_NOTIFY_TIMEOUT``: seconds per HTTP request (10)
* ``SHIPYARD_WEBHOOK_ALLOW``: non-public destinations run webhooks may reach (``notify.guard``)

The file::

    [notify]
    public_url = "https://shipyard.example.com"      # else SHIPYARD_PUBLIC_URL

    [notify.endpoints.ops]                            # the endpoint's name: "ops"
    url = "https://hooks.example.com/shipyard"
    format = "json"                                   # or "slack"
    secret_env = "OPS_HOOK_SECRET"                    # the secret is read from this variable
    events = ["approval.requested", "run.failed"]     # default: every event

Secrets never live in the file or the outbox: the sender reads them from its environment.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import platformdirs

from shipyard.errors import UserInputError
from shipyard.notify.events import EVENTS, EventName
from shipyard.notify.guard import AllowList, WebhookRefusedError

Format = Literal["json", "slack"]
ENV_ENDPOINT = "env"
"""The name of the endpoint ``SHIPYARD_NOTIFY_URL`` configures."""


class NotifyConfigError(UserInputError):
    """The notification configuration is invalid; the message names the variable or key."""


@dataclass(frozen=True)
class Endpoint:
    """A configured receiver of events. ``events`` ``None`` means every event."""

    name: str
    url: str
    format: Format = "json"
    secret: str | None = None
    events: frozenset[EventName] | None = None

    def wants(self, event: EventName) -> bool:
        """Whether this endpoint receives ``event``."""
        return self.events is None or event in self.events


@dataclass(frozen=True)
class NotifyConfig:
    """Everything the emitters and the sender read from their environment."""

    endpoints: tuple[Endpoint, ...] = ()
    public_url: str | None = None
    attempts: int = 8
    timeout_s: float = 10.0
    webhook_allow: AllowList = field(default_factory=AllowList)

    @property
    def lease_s(self) -> float:
        """How long a claimed delivery stays with its sender before another may take it
        (a dead sender's deliveries are sent again after this long)."""
        return self.timeout_s + 5.0

    def endpoint(self, name: str) -> Endpoint | None:
        """The endpoint called ``name``, if configured here."""
        return next((e for e in self.endpoints if e.name == name), None)

    def console_url(self, run_id: str) -> str | None:
        """The run's page in the console, when the public URL is known."""
        return f"{self.public_url}/ui/runs/{run_id}" if self.public_url else None


def load(env: Mapping[str, str] | None = None) -> NotifyConfig:
    """Read the configuration from ``env`` (default: the process environment) and the file
    it names; ``NotifyConfigError`` names what is wrong."""
    env = os.environ if env is None else env
    table = _file_table(env)
    endpoints = [*_file_endpoints(table, env)]
    if env.get("SHIPYARD_NOTIFY_URL"):
        endpoints.append(_env_endpoint(env))
    public = env.get("SHIPYARD_PUBLIC_URL") or _text(table, "public_url", "[notify] public_url")
    return NotifyConfig(
        endpoints=tuple(endpoints),
        public_url=public.rstrip("/") if public else None,
        attempts=_positive(env, "SHIPYARD_NOTIFY_ATTEMPTS", 8),
        timeout_s=float(_positive(env, "SHIPYARD_NOTIFY_TIMEOUT", 10)),
        webhook_allow=_allow(env.get("SHIPYARD_WEBHOOK_ALLOW", "")),
    )


def _allow(text: str) -> AllowList:
    try:
        return AllowList.parse(text)
    except WebhookRefusedError as err:
        raise NotifyConfigError(str(err)) from None


_cache: dict[tuple[Any, ...], NotifyConfig] = {}


def current() -> NotifyConfig:
    """``load()`` of this process, re-read when a variable or the file changed."""
    path = _file_path(os.environ)
    mtime = path.stat().st_mtime_ns if path is not None and path.is_file() else None
    names = sorted(k for k in os.environ if k.startswith(("SHIPYARD_NOTIFY", "SHIPYARD_WEB")))
    key = (path, mtime, os.environ.get("SHIPYARD_PUBLIC_URL"), *((n, os.environ[n]) for n in names))
    if key not in _cache:
        _cache.clear()
        _cache[key] = load()
    return _cache[key]


def _env_endpoint(env: Mapping[str, str]) -> Endpoint:
    url = _url(env["SHIPYARD_NOTIFY_URL"], "SHIPYARD_NOTIFY_URL")
    fmt = _format(env.get("SHIPYARD_NOTIFY_FORMAT") or "json", "SHIPYARD_NOTIFY_FORMAT")
    secret = env.get("SHIPYARD_NOTIFY_SECRET") or None
    if fmt == "json" and secret is None:
        raise NotifyConfigError(
            "SHIPYARD_NOTIFY_URL is set but SHIPYARD_NOTIFY_SECRET is not: JSON events are "
            "signed; set a secret (or SHIPYARD_NOTIFY_FORMAT=slack for a Slack webhook)"
        )
    return Endpoint(ENV_ENDPOINT, url, fmt, secret)


def _file_path(env: Mapping[str, str]) -> Path | None:
    if env.get("SHIPYARD_NOTIFY_CONFIG"):
        return Path(env["SHIPYARD_NOTIFY_CONFIG"]).expanduser()
    home = Path(env.get("SHIPYARD_HOME") or platformdirs.user_data_dir("shipyard"))
    default = home.expanduser() / "server.toml"
    return default if default.is_file() else None


def _file_table(env: Mapping[str, str]) -> dict[str, Any]:
    path = _file_path(env)
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise NotifyConfigError(f"SHIPYARD_NOTIFY_CONFIG={path}: cannot read it: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise NotifyConfigError(f"{path}: not valid TOML: {err}") from None
    table = data.get("notify", {})
    if not isinstance(table, dict):
        raise NotifyConfigError(f"{path}: [notify] must be a table")
    return cast(dict[str, Any], table)


def _file_endpoints(table: dict[str, Any], env: Mapping[str, str]) -> list[Endpoint]:
    raw = table.get("endpoints", {})
    if not isinstance(raw, dict):
        raise NotifyConfigError("[notify] endpoints must be a table of named endpoints")
    return [_file_endpoint(name, spec, env) for name, spec in raw.items()]


def _file_endpoint(name: str, spec: Any, env: Mapping[str, str]) -> Endpoint:
    where = f"[notify.endpoints.{name}]"
    if not isinstance(spec, dict):
        raise NotifyConfigError(f"{where} must be a table")
    unknown = set(spec) - {"url", "format", "secret_env", "events"}
    if unknown:
        raise NotifyConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    url = _url(_text(spec, "url", f"{where} url") or "", f"{where} url")
    fmt = _format(_text(spec, "format", f"{where} format") or "json", f"{where} format")
    secret_env = _text(spec, "secret_env", f"{where} secret_env")
    secret = env.get(secret_env) if secret_env else None
    if secret_env and not secret:
        raise NotifyConfigError(f"{where} secret_env: the variable {secret_env} is not set")
    if fmt == "json" and not secret:
        raise NotifyConfigError(f"{where}: JSON events are signed; name a secret_env")
    return Endpoint(name, url, fmt, secret, _events(spec.get("events"), f"{where} events"))


def _events(value: Any, where: str) -> frozenset[EventName] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NotifyConfigError(f"{where}: expected a list of event names")
    unknown = [v for v in value if v not in EVENTS]
    if unknown:
        raise NotifyConfigError(
            f"{where}: unknown event {unknown[0]!r}; known: {', '.join(EVENTS)}"
        )
    return frozenset(cast(list[EventName], value))


def _text(table: Mapping[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise NotifyConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _url(text: str, where: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise NotifyConfigError(f"{where}={text!r}: expected an http:// or https:// URL")
    return text


def _format(text: str, where: str) -> Format:
    if text not in get_args(Format):
        raise NotifyConfigError(f"{where}={text!r}: expected one of {', '.join(get_args(Format))}")
    return cast(Format, text)


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise NotifyConfigError(f"{name}={text!r}: expected a whole number of 1 or more")
    return value
