"""Whether anything still drives a run stored as ``running``: the SQL and the host check
behind ``Run.interrupted``, with no SQLAlchemy (the CLI's listings read runs with plain
psycopg, ``cli/records.py``; ``store/run_leases.py`` builds its statements on these).

A run has lost its process when its lease ran out (or it never had one) and no server
worker holds its thread (``api_runs``), or when its lease owner (``host:pid:nonce``) names a
process of this host that no longer exists.
"""

from __future__ import annotations

import os
import socket

SERVER_HOLDS = """EXISTS (SELECT 1 FROM api_runs a WHERE a.thread_id = runs.thread_id
    AND a.status IN ('pending', 'running'))"""
"""SQL: a server worker drives (or will drive) the run's thread: its queue keeps it alive."""

HOLDER_GONE = f"""(runs.status = 'running'
    AND (runs.lease_expires_at IS NULL OR runs.lease_expires_at < now())
    AND NOT {SERVER_HOLDS})"""
"""SQL, on a ``runs`` row: the run says ``running`` but no lease or server worker holds it."""


def dead_here(owner: str | None) -> bool:
    """Whether ``owner`` names a process of this host that no longer exists."""
    host, _, rest = (owner or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def is_interrupted(status: str, holder_gone: bool, lease_owner: str | None) -> bool:
    """A run shown as interrupted: stored ``running`` with nothing driving it."""
    return holder_gone or (status == "running" and dead_here(lease_owner))
