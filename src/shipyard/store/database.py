"""Database URLs and engines: which Postgres to use and how to reach it.

URLs are accepted as ``postgresql://…`` (what people put in ``DATABASE_URL``) or in
SQLAlchemy's ``postgresql+psycopg://…`` form. ``sqlalchemy_url`` and ``psycopg_conninfo``
convert either form for the two libraries that need them (SQLAlchemy for Shipyard's tables,
plain psycopg for the LangGraph checkpointer).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import psycopg
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from shipyard.errors import DatabaseUnavailableError
from shipyard.store import jsonb

_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError as exc:
        raise DatabaseUnavailableError(
            f"not a database URL: {url!r}; expected postgresql://user:password@host:port/dbname"
        ) from exc
    if parsed.drivername not in _SCHEMES:
        raise DatabaseUnavailableError(
            f"unsupported database URL scheme {parsed.drivername!r} in "
            f"{mask_password(url)}; Shipyard needs Postgres: postgresql://user@host/dbname"
        )
    return parsed


def sqlalchemy_url(url: str) -> str:
    """``url`` in SQLAlchemy form, using the psycopg 3 driver (``postgresql+psycopg://``)."""
    return _render(_parse(url).set(drivername="postgresql+psycopg"))


def psycopg_conninfo(url: str) -> str:
    """``url`` as a libpq URI (``postgresql://…``) for ``psycopg.connect`` and its pools."""
    return _render(_parse(url).set(drivername="postgresql"))


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (same form as given)."""
    return _render(_parse(url).set(database=database))


def mask_password(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to show in messages and logs)."""
    try:
        parsed = make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return "<unparseable database URL>"
    return _render(parsed, password="***" if parsed.password is not None else None)


def _render(url: URL, password: str | None = None) -> str:
    """Render ``url`` percent-encoding every part.

    SQLAlchemy's own rendering writes a space in the query as ``+``, which libpq does not
    decode (a socket directory with a space would break); ``%20`` works for both. Query
    parameters come out sorted by name.
    """
    auth = ""
    if url.username is not None:
        auth = quote(url.username, safe="")
        secret = password if password is not None else url.password
        if secret is not None:
            auth += ":" + (secret if password is not None else quote(str(secret), safe=""))
        auth += "@"
    host = url.host or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = f":{url.port}" if url.port is not None else ""
    database = quote(url.database, safe="") if url.database else ""
    # Sorted: one canonical text per URL, whichever way it was written or parsed — the
    # write-behind rows find the checkpointer of their database by comparing these.
    pairs = sorted(
        (key, value)
        for key, values in url.query.items()
        for value in (values if isinstance(values, tuple) else (values,))
    )
    query = "?" + urlencode(pairs, quote_via=quote) if pairs else ""
    return f"{url.drivername}://{auth}{host}{port}/{database}{query}"


def make_engine(url: str) -> sqlalchemy.Engine:
    """A SQLAlchemy engine on psycopg 3.

    No ping before each use (it would add a round trip to every journal write): a connection
    broken by a Postgres restart fails its statement once, SQLAlchemy then discards the whole
    pool, and the next call reconnects. The run stays resumable from its last checkpoint.
    """
    return sqlalchemy.create_engine(
        sqlalchemy_url(url), pool_pre_ping=False, json_serializer=jsonb.dumps
    )


def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Connect once; raise ``DatabaseUnavailableError`` naming the URL and the fix if we cannot."""
    try:
        with psycopg.connect(psycopg_conninfo(url), connect_timeout=max(1, int(timeout_s))):
            return
    except psycopg.OperationalError as exc:
        raise unreachable(url, exc) from exc


def unreachable(url: str, exc: psycopg.OperationalError) -> DatabaseUnavailableError:
    """The error for a Postgres at ``url`` that refused or did not answer (``exc``)."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatabaseUnavailableError(
        f"cannot reach Postgres at {mask_password(url)}: {reason}\n"
        "Fix: start that Postgres server (or correct DATABASE_URL), or unset DATABASE_URL "
        "to let Shipyard run its embedded Postgres under SHIPYARD_HOME."
    )
