"""Run dependencies, handed to every node as ``Runtime[Context]``.

Nothing here is checkpointed: a resumed run gets a fresh ``Context`` from whoever drives it
(the CLI's ``Runner``, a server worker). What must survive a pause lives in state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

from langchain_core.language_models import BaseChatModel
from pydantic import ConfigDict, PlainValidator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import Engine

from shipyard.llm import ModelGateway
from shipyard.sandbox import Launcher, make_launcher
from shipyard.settings import Role, Settings
from shipyard.store import ArtifactStore, Journal, PgCheckCache, RunStore
from shipyard.tools.checks import CheckCache

T = TypeVar("T")


def _as_given(value: Any) -> Any:
    return value


Live = Annotated[T, PlainValidator(_as_given), SkipJsonSchema()]
"""A live dependency: taken as given (no validation) and absent from the JSON schema."""


class Clock(Protocol):
    """Monotonic seconds; a seam so budgets on wall time are testable."""

    def __call__(self) -> float: ...


@dataclass(kw_only=True)
class Context:
    """Everything a node needs that is not state.

    Live objects, not client-settable options: they are hidden from the JSON schema that
    servers (``langgraph dev``, Studio) derive from a graph's context.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(arbitrary_types_allowed=True)

    settings: Live[Settings]
    models: Live[ModelGateway]
    launcher: Live[Launcher]
    journal: Live[Journal]
    runs: Live[RunStore]
    artifacts: Live[ArtifactStore]
    check_cache: Live[CheckCache]
    clock: Live[Clock] = field(default=time.monotonic)
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
