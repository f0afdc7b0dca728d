"""Leases and cancel requests on ``runs``: which process drives a run, and whether it was
asked to stop.

A process that drives a run from the CLI holds its lease (``lease_owner``, renewed before
``lease_expires_at`` by a heartbeat, ``shipyard.lifecycle.lease``). A run still ``running`` whose
lease ran out, and that no server worker holds (``api_runs``), has lost its process: it is
shown as interrupted and ``shipyard resume`` may take it over; so is one whose owner was a process
of this host that no longer exists (owners are ``host:pid:nonce``), without waiting for the
expiry. A cancel request
(``cancel_requested_at``) is read by the holder with each renewal. Times are the
database's, so clocks of different machines never disagree about a lease.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import Boolean, Engine, literal_column, text
from sqlalchemy.sql.elements import ColumnElement

from shipyard.store.run_holders import HOLDER_GONE, SERVER_HOLDS, dead_here


def new_owner() -> str:
    """A lease owner naming this process: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def holder_gone() -> ColumnElement[bool]:
    """SQL: the run says ``running`` but nothing drives it (select it with a ``runs`` row)."""
    return literal_column(HOLDER_GONE, Boolean).label("holder_gone")


_ACQUIRE = text(f"""
    UPDATE runs SET lease_owner = :owner,
        lease_expires_at = now() + make_interval(secs => :ttl)
    WHERE id = :run_id
      AND (lease_owner IS NULL OR lease_owner = :owner OR lease_expires_at < now())
      AND NOT {SERVER_HOLDS}
    RETURNING id""")  # noqa: S608 - constant fragments only

_TAKE_OVER = text("""
    UPDATE runs SET lease_owner = :owner,
        lease_expires_at = now() + make_interval(secs => :ttl)
    WHERE id = :run_id AND lease_owner = :stale
    RETURNING id""")

_RENEW = text("""
    UPDATE runs SET lease_expires_at = now() + make_interval(secs => :ttl)
    WHERE id = :run_id AND lease_owner = :owner
    RETURNING cancel_requested_at IS NOT NULL AS cancel""")

_RELEASE = text("""
    UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL
    WHERE id = :run_id AND lease_owner = :owner""")

_HOLDER = text(f"""
    SELECT lease_owner, lease_expires_at >= now() AS live, {SERVER_HOLDS} AS server
    FROM runs WHERE id = :run_id""")  # noqa: S608 - constant fragments only

_REQUEST_CANCEL = text("""
    UPDATE runs SET cancel_requested_at = coalesce(cancel_requested_at, now()),
        cancel_requested_by = coalesce(cancel_requested_by, :by)
    WHERE id = :run_id RETURNING id""")

_CLEAR_CANCEL = text("""
    UPDATE runs SET cancel_requested_at = NULL, cancel_requested_by = NULL
    WHERE id = :run_id""")


@dataclass(frozen=True)
class Renewal:
    """The outcome of one heartbeat."""

    ours: bool
    """The lease is still this process's (else another process took the run over)."""
    cancel_requested: bool


class RunLeases:
    """Lease and cancel-request statements on ``runs``; each method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acquire(self, run_id: str, owner: str, ttl_s: float) -> str | None:
        """Take the run's lease for ``ttl_s`` seconds. ``None`` when taken (or already
        ours), else who holds it: another process's lease owner, or ``"a server worker"``."""
        with self._engine.begin() as conn:
            params = {"run_id": run_id, "owner": owner, "ttl": ttl_s}
            if conn.execute(_ACQUIRE, params).first() is not None:
                return None
            row = conn.execute(_HOLDER, {"run_id": run_id}).first()
        if row is None:
            return None  # no such run: the caller's next read says so
        return "a server worker" if row.server else str(row.lease_owner)

    def take_over(self, run_id: str, owner: str, stale: str, ttl_s: float) -> str | None:
        """Take the lease from ``stale``, a holder known to be gone; ``None`` when taken,
        else who holds it now."""
        with self._engine.begin() as conn:
            params = {"run_id": run_id, "owner": owner, "stale": stale, "ttl": ttl_s}
            if conn.execute(_TAKE_OVER, params).first() is not None:
                return None
        return self.holder(run_id) or "another process"

    def renew(self, run_id: str, owner: str, ttl_s: float) -> Renewal:
        """Extend the lease; says whether it is still ours and whether a cancel is asked."""
        with self._engine.begin() as conn:
            row = conn.execute(_RENEW, {"run_id": run_id, "owner": owner, "ttl": ttl_s}).first()
        return Renewal(ours=row is not None, cancel_requested=bool(row and row.cancel))

    def release(self, run_id: str, owner: str) -> None:
        """Give the lease up (if still ours)."""
        with self._engine.begin() as conn:
            conn.execute(_RELEASE, {"run_id": run_id, "owner": owner})

    def holder(self, run_id: str) -> str | None:
        """Who drives the run now: a live lease's owner, ``"a server worker"``, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(_HOLDER, {"run_id": run_id}).first()
        if row is None:
            return None
        if row.server:
            return "a server worker"
        if not row.lease_owner or not row.live or dead_here(row.lease_owner):
            return None
        return str(row.lease_owner)

    def request_cancel(self, run_id: str, by: str) -> bool:
        """Ask the run to stop (idempotent: the first request's time and author stay)."""
        with self._engine.begin() as conn:
            return conn.execute(_REQUEST_CANCEL, {"run_id": run_id, "by": by}).first() is not None

    def clear_cancel(self, run_id: str) -> None:
        """Forget a cancel request (the run ended before it was acted on)."""
        with self._engine.begin() as conn:
            conn.execute(_CLEAR_CANCEL, {"run_id": run_id})
