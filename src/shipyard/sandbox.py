"""The launcher: every command the agent or a check runs goes through it (DESIGN §5).

(Interface fixed here; the layered implementation is being written.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from shipyard.contracts import IsolationReport


@dataclass(frozen=True)
class Limits:
    """Resource limits for one command."""

    timeout_s: float = 300.0
    cpu_s: int = 600
    memory_bytes: int = 4 << 30
    file_size_bytes: int = 1 << 30
    processes: int = 512
    output_bytes: int = 64 << 10


class CommandResult(BaseModel):
    """What a command did. ``limit`` names the limit that ended it, if any."""

    argv: list[str]
    exit_code: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    truncated: bool = False
    limit: str | None = None
    isolation: IsolationReport


class Launcher(Protocol):
    """Runs one command inside the workspace with the strongest isolation available."""

    def run(
        self,
        argv: Sequence[str],
        *,
        workspace: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        limits: Limits | None = None,
        shell: bool = False,
    ) -> CommandResult: ...

    def report(self) -> IsolationReport: ...
