"""Run dependencies, handed to every node as ``Runtime[Context]``.

Nothing here is checkpointed: a resumed run gets a fresh ``Context`` from whoever drives it
(the CLI's ``Runner``, a server worker). What must survive a pause lives in state.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

from langchain_core.language_models import BaseChatModel
from pydantic import ConfigDict, PlainValidator
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import Engine

from shipyard.llm import ModelGateway
from shipyard.sandbox.launcher import Launcher, make_launcher
from shipyard.settings import Role, Settings
from shipyard.store import (
    ArtifactStore,
    Journal,
    PgCheckCache,
    RunStore,
    check_reachable,
    make_engine,
    migrate,
    resolve_database_url,
)
from shipyard.tools.checks import CheckCache

T = TypeVar("T")


def _as_given(value: Any) -> Any:
    return value


Live = Annotated[T, PlainValidator(_as_given), SkipJsonSchema()]
_UNSET: Any = object()
"""The value of a live dependency nobody gave (a ``hollow`` context)."""
"""A live dependency: taken as given (no validation) and absent from the JSON schema."""


class Clock(Protocol):
    """Monotonic seconds; a seam so budgets on wall time are testable."""

    def __call__(self) -> float: ...


@dataclass(kw_only=True)
class Context:
    """Everything a node needs that is not state.

    Live objects, not client-settable options: they are hidden from the JSON schema that
    servers (``langgraph dev``, Studio) derive from a graph's context. Shipyard's drivers
    build it with ``build``; another LangGraph server makes one from the client's context
    options alone (``Context(**options)``), which leaves it ``hollow``: the nodes then use
    the process's ``standalone_context`` with those options.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(arbitrary_types_allowed=True)

    settings: Live[Settings] = field(default=_UNSET)
    models: Live[ModelGateway] = field(default=_UNSET)
    launcher: Live[Launcher] = field(default=_UNSET)
    journal: Live[Journal] = field(default=_UNSET)
    runs: Live[RunStore] = field(default=_UNSET)
    artifacts: Live[ArtifactStore] = field(default=_UNSET)
    check_cache: Live[CheckCache] = field(default=_UNSET)
    clock: Live[Clock] = field(default=time.monotonic)
    review: bool = False
    """Ask the reviewer model for findings after checks pass, in addition to the policy's
    ``[review] enabled`` and ``SHIPYARD_REVIEW`` (any of them turns it on:
    ``nodes.validate.review_enabled``)."""
    owner: Live[str] = "local"
    """Who the run belongs to (set by the driver, never by a client: hidden from the schema);
    check cache entries are never shared between owners."""
    standalone: Live[bool] = False
    """No Shipyard driver keeps this run's records (``langgraph dev`` or another LangGraph
    server runs the graph): intake creates the run's row itself (``standalone_context``)."""

    @property
    def hollow(self) -> bool:
        """Made from client options only, without live dependencies (see the class doc)."""
        return self.settings is _UNSET

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


_STANDALONE: list[Context] = []
_STANDALONE_LOCK = threading.Lock()


def standalone_context(options: Context | None = None) -> Context:
    """The context of a run that no Shipyard driver started — the graph of ``langgraph.json``
    under ``langgraph dev`` or another LangGraph server, which gives no ``Context``: built
    once per process from the environment exactly as the CLI builds its own (``Settings``,
    the embedded Postgres or ``DATABASE_URL``, migrated; models per role; the strongest
    sandbox), and kept for the life of the process. What that server's own checkpoints
    guarantee is its business (``docs/architecture.md`` §9). ``options``: the hollow context
    the client's options made; only ``review`` is taken from it (a client never chooses the
    owner)."""
    with _STANDALONE_LOCK:
        if not _STANDALONE:
            settings = Settings.from_env()
            url = resolve_database_url(settings)
            check_reachable(url)
            migrate(url)
            built = Context.build(settings, make_engine(url))
            _STANDALONE.append(dataclasses.replace(built, standalone=True))
        shared = _STANDALONE[0]
    return shared if options is None else dataclasses.replace(shared, review=options.review)
