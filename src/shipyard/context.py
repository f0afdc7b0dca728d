"""Run dependencies, handed to every node as ``Runtime[Context]``.

Nothing here is checkpointed: a resumed run gets a fresh ``Context`` from whoever drives it
(the CLI's ``Runner``, a server worker). What must survive a pause lives in state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from langchain_core.language_models import BaseChatModel
from sqlalchemy import Engine

from shipyard.llm import ModelGateway
from shipyard.sandbox import Launcher, make_launcher
from shipyard.settings import Role, Settings
from shipyard.store import ArtifactStore, Journal, PgCheckCache, RunStore
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

    @classmethod
    def build(
        cls,
        settings: Settings,
        engine: Engine,
        *,
        models: Mapping[Role, BaseChatModel] | None = None,
        launcher: Launcher | None = None,
        review: bool = False,
    ) -> Context:
        """The production dependencies on ``engine``; ``models`` and ``launcher`` replace
        the configured model of some roles and the sandbox (tests, the demo)."""
        return cls(
            settings=settings,
            models=ModelGateway(settings, models=models),
            launcher=launcher or make_launcher(),
            journal=Journal(engine),
            runs=RunStore(engine),
            artifacts=ArtifactStore(settings.artifacts),
            check_cache=PgCheckCache(engine),
            review=review,
        )
