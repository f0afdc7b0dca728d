"""``[environment]``: how the checks get a project's dependencies — an interpreter or venv
used read-only, and a setup command run once per workspace, with the network if a person
allows it (what it does: ``tools/environment.py``)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Environment(BaseModel):
    """``[environment]``: the interpreter and the setup command of the checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    python: str | None = None
    """Absolute path of an interpreter (``/opt/venv/bin/python``) or of a venv directory."""
    setup: list[str] = Field(default_factory=list)
    """Run once per workspace before the checks (a string is split like a shell would)."""
    lockfiles: list[str] = Field(default_factory=list)
    """Workspace-relative files whose content keys the setup (``requirements.txt``)."""
    network: bool = False
    """Whether the setup needs the network. It gets it once per workspace, on the base
    commit's files, right after a person approved the plan — with this, the plan always asks
    a person, whatever ``[approvals]`` says — outbound only, in a network namespace of its
    own where this machine's loopback is out of reach (``sandbox/isolation/usernet.py``).
    A later setup (the change altered a lockfile) runs without it."""
    pytest_args: list[str] = Field(default_factory=list)
    """Extra arguments of every pytest check and of an evaluation's hidden-test command
    (``-o pythonpath=src``)."""

    @field_validator("setup", "pytest_args", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return shlex.split(value)
        except ValueError as err:
            raise ValueError(f"cannot parse command: {err}") from None

    @field_validator("python")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_absolute():
            raise ValueError(f"python must be an absolute path, got {value!r}")
        return value

    @model_validator(mode="after")
    def _network_for_a_setup(self) -> Environment:
        if self.network and not self.setup:
            raise ValueError("network = true names no setup: only the setup can have it")
        return self
