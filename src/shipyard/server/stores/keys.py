"""API keys and owners.

A caller is identified by the ``x-api-key`` header (what ``langgraph-sdk`` sends). Keys are
stored as SHA-256 hashes of 256-bit random secrets — the secret is printed once at creation
and cannot be recovered. Each key belongs to an owner; every row a caller creates carries
that owner and other owners get 404 for it.

Modes:

* keys exist (or the server listens beyond loopback): a request without a key, or with an
  unknown or revoked key, gets 401;
* no keys: single-owner mode, every request acts as ``LOCAL_OWNER``. That is only allowed on
  a loopback address — ``check_bind`` refuses anything else with a message saying how to fix
  it, since anyone reaching the port would own everything.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from shipyard.errors import AuthenticationError, UserInputError
from shipyard.server.stores.listener import KEYS_CHANNEL
from shipyard.server.stores.tables import SYSTEM_OWNER, ApiKeyRow

LOCAL_OWNER = "local"
"""The owner of everything in single-owner mode (no API keys)."""

_PREFIX = "sy_"

CACHE_TTL_S = 1.0
"""How long a process trusts what it read about keys without asking the database again.

Key changes made through an ``Auth`` apply to it at once and ``NOTIFY shipyard_keys``
(``KEYS_CHANNEL``) makes every server process that listens drop its cache within
milliseconds; the TTL bounds staleness when that notification is missed (listener
reconnecting): a key created or revoked elsewhere is enforced after at most this long."""

_CACHE_MAX = 4096
"""Cached secrets per process; beyond this the cache starts over (random bad keys cannot
grow memory)."""


@dataclass(frozen=True)
class ApiKey:
    """A key as listed (never with its secret)."""

    id: str
    owner: str
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        """Build from a database row."""
        return cls(row.id, row.owner, row.name, row.created_at, row.revoked_at)


def hash_secret(secret: str) -> str:
    """The stored form of a secret (hex SHA-256; secrets are random, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Auth:
    """Creates, lists, revokes and checks API keys.

    ``require_keys`` forces key mode even while no key exists (a server listening beyond
    loopback): then every request is refused until a key is created.
    """

    def __init__(
        self, engine: Engine, *, require_keys: bool = False, ttl_s: float = CACHE_TTL_S
    ) -> None:
        self.engine = engine
        self.require_keys = require_keys
        self.ttl_s = ttl_s
        self._any: tuple[bool, float] | None = None  # (any active key, valid until)
        self._owners: dict[str, tuple[str | None, float]] = {}  # hash -> (owner, valid until)

    def invalidate(self, _payload: str = "") -> None:
        """Forget what was cached (a key was created or revoked, here or elsewhere)."""
        self._any = None
        self._owners = {}

    def create(self, name: str, owner: str) -> tuple[ApiKey, str]:
        """A new key for ``owner`` and its secret (shown once; only its hash is kept)."""
        owner, name = owner.strip(), name.strip()
        if not owner or not name:
            raise UserInputError("an API key needs a non-empty name and owner")
        if owner in (SYSTEM_OWNER, LOCAL_OWNER):
            raise UserInputError(f"owner {owner!r} is reserved; choose another owner name")
        secret = _PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(id=secrets.token_hex(8), owner=owner, name=name, hash=hash_secret(secret))
        with Session(self.engine) as session, session.begin():
            session.add(row)
            session.flush()
            session.refresh(row)
            key = ApiKey.from_row(row)
            _notify_change(session)
        self.invalidate()
        return key, secret

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with Session(self.engine) as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            return [ApiKey.from_row(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke ``key_id`` (idempotent); ``UserInputError`` if there is no such key."""
        with Session(self.engine) as session, session.begin():
            session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise UserInputError(f"no API key with id {key_id!r}; see `shipyard keys list`")
            _notify_change(session)
            key = ApiKey.from_row(row)
        self.invalidate()
        return key

    def any_active(self) -> bool:
        """Whether at least one unrevoked key exists (cached for ``ttl_s``)."""
        now = time.monotonic()
        if self._any is not None and self._any[1] > now:
            return self._any[0]
        with Session(self.engine) as session:
            found = session.scalar(
                select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None)).limit(1)
            )
        self._any = (found is not None, now + self.ttl_s)
        return found is not None

    def owner_for(self, secret: str | None) -> str:
        """The owner a request with ``secret`` acts as; ``AuthenticationError`` if none."""
        if not secret:
            if self.require_keys or self.any_active():
                raise AuthenticationError("missing API key: send it in the x-api-key header")
            return LOCAL_OWNER
        digest = hash_secret(secret)
        now = time.monotonic()
        cached = self._owners.get(digest)
        if cached is not None and cached[1] > now:
            owner = cached[0]
        else:
            with Session(self.engine) as session:
                owner = session.scalar(
                    select(ApiKeyRow.owner).where(
                        ApiKeyRow.hash == digest, ApiKeyRow.revoked_at.is_(None)
                    )
                )
            if len(self._owners) >= _CACHE_MAX:
                self._owners = {}
            self._owners[digest] = (owner, now + self.ttl_s)
        if owner is None:
            raise AuthenticationError("invalid or revoked API key")
        return owner

    def cached(self, secret: str | None) -> bool:
        """Whether ``owner_for(secret)`` can answer without the database right now."""
        now = time.monotonic()
        if not secret:
            return self.require_keys or (self._any is not None and self._any[1] > now)
        cached = self._owners.get(hash_secret(secret))
        return cached is not None and cached[1] > now


def _notify_change(session: Session) -> None:
    """Tell every listening server process (at commit) to drop its key cache."""
    session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": KEYS_CHANNEL})


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys_exist: bool) -> None:
    """Refuse to serve single-owner mode beyond loopback (``UserInputError`` saying why)."""
    if keys_exist or is_loopback(host):
        return
    raise UserInputError(
        f"refusing to listen on {host} without API keys: anyone who can reach it would act "
        f"as owner {LOCAL_OWNER!r}. Create a key first (`shipyard keys create NAME --owner "
        "OWNER`), or listen on 127.0.0.1"
    )
