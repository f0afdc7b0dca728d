"""Run dependencies, handed to every node as ``Runtime[Context]``.

Nothing here is checkpointed: a resumed run gets a fresh ``Context`` from whoever drives it
(the CLI's ``Runner``, a server worker). What must survive a pause lives in state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shipyard.llm import ModelGateway
    from shipyard.sandbox import Launcher
    from shipyard.settings import Settings
    from shipyard.store import ArtifactStore, Journal, RunStore
    from shipyard.tools.checks import CheckCache


class Clock(Protocol):
    """Monotonic seconds; a seam so budgets on wall time are testable."""

    def __call__(self) -> float: ...


@dataclass(kw_only=True)
class Context:
    """Everything a node needs that is not state."""

    settings: Settings
    models: ModelGateway
    launcher: Launcher
    journal: Journal
    runs: RunStore
    artifacts: ArtifactStore
    check_cache: CheckCache
    clock: Clock = field(default=time.monotonic)
    review: bool = False
    """Ask the reviewer model for findings after checks pass."""
