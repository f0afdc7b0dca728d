"""Settings read from the environment — only when asked, never at import time.

| variable | meaning | default |
|---|---|---|
| ``SHIPYARD_HOME`` | data directory: embedded Postgres, workspaces, artifacts | per-user data dir |
| ``DATABASE_URL`` | Postgres to use instead of the embedded one | unset → embedded |
| ``SHIPYARD_MODEL`` | model name for every role | ``gpt-4o-mini`` |
| ``SHIPYARD_<ROLE>_MODEL`` | per role: ``PLANNER``, ``DEVELOPER``, ``REVIEWER`` | the above |
| ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` | any OpenAI-compatible endpoint | OpenAI |
| ``SHIPYARD_<ROLE>_BASE_URL`` / ``_API_KEY`` | per-role endpoint | the ``OPENAI_*`` ones |
| ``SHIPYARD_MODEL_SCRIPT`` | path of a script for the scripted model (tests, demo) | unset |
| ``SHIPYARD_MODEL_TIMEOUT`` | seconds per model request | ``120`` |
| ``SHIPYARD_MODEL_RETRIES`` | retries on 429 / 5xx / timeouts | ``4`` |
| ``SHIPYARD_<ROLE>_PRICE`` | ``"in,out"`` USD per 1M input / output tokens | built-in table |
| ``SHIPYARD_MODEL_FALLBACKS`` | models tried in order when one fails (same endpoint) | none |
| ``SHIPYARD_<ROLE>_FALLBACKS`` | per role | the above |
| ``SHIPYARD_REVIEW`` | ``1``: ask the reviewer on every run (else ``[review] enabled``) | ``0`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import platformdirs

from shipyard.errors import UserInputError

Role = Literal["planner", "developer", "reviewer"]
ROLES: tuple[Role, ...] = ("planner", "developer", "reviewer")


@dataclass(frozen=True)
class ModelSettings:
    """How to reach the model for one role."""

    role: Role
    model: str
    base_url: str | None
    api_key: str | None
    timeout_s: float
    retries: int
    price: tuple[float, float] | None = None
    """USD per 1M (input, output) tokens from ``SHIPYARD_<ROLE>_PRICE``; ``None`` means
    the built-in table in ``shipyard.llm.pricing`` decides."""
    fallbacks: tuple[str, ...] = ()
    """Models on the same endpoint tried in order when ``model`` fails after its retries
    (or refuses the request); priced by the built-in table."""


@dataclass(frozen=True)
class Settings:
    """Everything Shipyard reads from its environment."""

    home: Path
    database_url: str | None
    models: dict[Role, ModelSettings] = field(default_factory=dict)
    model_script: Path | None = None
    review: bool = False
    """``SHIPYARD_REVIEW``: the reviewer is asked on every run, whatever the policy says."""

    @property
    def workspaces(self) -> Path:
        """Where run worktrees live."""
        return self.home / "workspaces"

    @property
    def artifacts(self) -> Path:
        """Where logs, diffs and reports live (state holds references to them)."""
        return self.home / "artifacts"

    @property
    def pgdata(self) -> Path:
        """The embedded Postgres data directory."""
        return self.home / "pgdata"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        home = Path(env.get("SHIPYARD_HOME") or platformdirs.user_data_dir("shipyard"))
        script = env.get("SHIPYARD_MODEL_SCRIPT")
        return cls(
            home=home.expanduser().resolve(),
            database_url=env.get("DATABASE_URL") or None,
            models={role: _model_settings(role, env) for role in ROLES},
            model_script=Path(script).resolve() if script else None,
            review=_flag("SHIPYARD_REVIEW", env.get("SHIPYARD_REVIEW")),
        )


def _model_settings(role: Role, env: Mapping[str, str]) -> ModelSettings:
    prefix = f"SHIPYARD_{role.upper()}_"
    return ModelSettings(
        role=role,
        model=env.get(prefix + "MODEL") or env.get("SHIPYARD_MODEL") or "gpt-4o-mini",
        base_url=env.get(prefix + "BASE_URL") or env.get("OPENAI_BASE_URL") or None,
        api_key=env.get(prefix + "API_KEY") or env.get("OPENAI_API_KEY") or None,
        timeout_s=float(env.get("SHIPYARD_MODEL_TIMEOUT") or 120),
        retries=int(env.get("SHIPYARD_MODEL_RETRIES") or 4),
        price=_price(prefix + "PRICE", env.get(prefix + "PRICE")),
        fallbacks=_names(env.get(prefix + "FALLBACKS") or env.get("SHIPYARD_MODEL_FALLBACKS")),
    )


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _flag(name: str, text: str | None) -> bool:
    """``1``/``true``/``yes``/``on`` → True, ``0``/``false``/``no``/``off``/unset → False
    (any case); anything else names the variable."""
    value = (text or "").strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise UserInputError(f"{name}={text!r}: expected 1 or 0 (true/false, yes/no, on/off)")


def _names(text: str | None) -> tuple[str, ...]:
    """``"a, b"`` → ``("a", "b")``; empty items are ignored."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def _price(name: str, text: str | None) -> tuple[float, float] | None:
    """Parse ``"in,out"`` (USD per 1M tokens); a malformed value names the variable."""
    if not text:
        return None
    parts = text.split(",")
    try:
        price_in, price_out = (float(part) for part in parts)
    except ValueError:
        raise UserInputError(
            f'{name}={text!r}: expected "input,output" USD per 1M tokens, e.g. "0.15,0.60"'
        ) from None
    if price_in < 0 or price_out < 0:
        raise UserInputError(f"{name}={text!r}: prices cannot be negative")
    return (price_in, price_out)
