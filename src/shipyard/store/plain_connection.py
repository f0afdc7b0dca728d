"""The configured database, reached with plain psycopg: no SQLAlchemy, no pydantic.

For the commands whose start-up time is what a person waits for (``shipyard runs``): the
URL is resolved as everywhere else (``DATABASE_URL``, else the embedded Postgres, started if
needed), and a URL in any accepted form (``postgresql://``, ``postgres://``,
``postgresql+psycopg://``) is handed to libpq as it is. Anything unusual — a scheme Shipyard
does not take, text libpq cannot parse, a server that does not answer — goes through
``store/database.py``, so the error is the same one every other command gives.
"""

from __future__ import annotations

import psycopg

from shipyard.settings import Settings

CONNECT_TIMEOUT_S = 5
_LIBPQ_SCHEMES = {"postgresql": "postgresql", "postgres": "postgres"}
_SQLALCHEMY_SCHEMES = {"postgresql+psycopg": "postgresql"}


def resolve_database_url(settings: Settings) -> str:
    """``settings.database_url`` if set, else the embedded Postgres under ``settings.pgdata``.

    Starting the embedded server happens here (not at import): the first call on a fresh
    machine takes a few seconds, later ones reuse the running server.
    """
    if settings.database_url:
        return settings.database_url
    from shipyard.store.embedded import ensure_embedded  # noqa: PLC0415  (psutil, its programs)

    return ensure_embedded(settings.pgdata)


def libpq_url(url: str) -> str | None:
    """``url`` as libpq takes it, if its scheme says it is Postgres; else ``None``."""
    scheme, sep, rest = url.partition("://")
    libpq = (_LIBPQ_SCHEMES | _SQLALCHEMY_SCHEMES).get(scheme)
    return f"{libpq}://{rest}" if sep and libpq else None


def connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to ``url``; ``DatabaseUnavailableError`` (naming the URL,
    its password masked, and the fix) when it cannot be had."""
    plain = libpq_url(url)
    if plain is not None:
        try:
            return psycopg.connect(plain, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and _tried_the_server(exc):
                from shipyard.store.database import unreachable  # noqa: PLC0415  (SQLAlchemy)

                raise unreachable(url, exc) from exc
    from shipyard.store.database import check_reachable, psycopg_conninfo  # noqa: PLC0415

    check_reachable(url, CONNECT_TIMEOUT_S)  # raises the error every command gives
    conninfo = psycopg_conninfo(url)
    return psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True)


def _tried_the_server(exc: psycopg.OperationalError) -> bool:
    """libpq parsed the URL and tried to connect (so trying again cannot say more)."""
    text = str(exc)
    return "connection to server" in text or "timeout expired" in text
