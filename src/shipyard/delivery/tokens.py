"""Forge tokens: read from the environment when a delivery needs one, never stored.

Each forge has its own variables, tried in order, then ``SHIPYARD_FORGE_TOKEN``. A token found
is registered with the redaction (``secret_values.register_secret``) before anything can print
it, so it is masked by value in every stored row, artifact, event and log line. It is handed to
one ``git`` process through that process's environment (``delivery.push``) and to the forge's
API in a request header; sandboxed commands never see these variables
(``sandbox/isolation/environment.py``) and no model ever gets them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.policy.deliver import Forge
from shipyard.secret_values import register_secret

GENERIC = "SHIPYARD_FORGE_TOKEN"
VARIABLES: dict[Forge, tuple[str, ...]] = {
    "github": ("GITHUB_TOKEN", "GH_TOKEN"),
    "gitea": ("GITEA_TOKEN",),
    "gitlab": ("GITLAB_TOKEN",),
}
"""Each forge's token variables, in the order they are tried (``GENERIC`` last)."""


@dataclass(frozen=True)
class Token:
    """A token and the variable it came from; its ``repr`` never shows the value."""

    variable: str
    value: str = field(repr=False)


def variables_of(forge: Forge | None) -> tuple[str, ...]:
    """The variables a token for ``forge`` is read from, in order."""
    return (*VARIABLES[forge], GENERIC) if forge is not None else (GENERIC,)


def find_token(forge: Forge | None, environ: Mapping[str, str] | None = None) -> Token | None:
    """The first non-empty token variable for ``forge``, registered for masking; or None."""
    env = os.environ if environ is None else environ
    for name in variables_of(forge):
        value = env.get(name, "").strip()
        if value:
            register_secret(name, value)
            return Token(name, value)
    return None


def missing_token_message(forge: Forge | None) -> str:
    """Words for a delivery that needs a token and found none."""
    names = " or ".join(variables_of(forge))
    return f"no forge token: set {names} in the environment of the process that delivers"


__all__ = ["GENERIC", "VARIABLES", "Token", "find_token", "missing_token_message", "variables_of"]
