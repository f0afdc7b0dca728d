"""A run's timeline, read from its checkpoints: which node ran, when, for how long.

Each checkpoint of the thread's root graph lists the channels its step updated; a
``branch:to:<node>`` among them means ``<node>`` runs next, from that checkpoint's time to
the next checkpoint's. The last such node has no end yet: it is running, or waiting at an
interrupt. ``attempt`` counts how often the node has run so far (a refined step runs
``execute`` and ``validate`` again). Every entry names its checkpoint, so the page can fork
from it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shipyard.contracts import Verdict
from shipyard.server.runs.queue import Pool

MAX_ENTRIES = 5_000
_BRANCH = "branch:to:"
_QUERY = """
SELECT checkpoint_id, checkpoint->>'ts' AS ts, checkpoint->'updated_channels' AS updated
FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' ORDER BY checkpoint_id LIMIT %s
"""
_VERDICTS = """
SELECT type, blob FROM checkpoint_blobs
WHERE thread_id = %s AND checkpoint_ns = '' AND channel = 'verdict' AND type <> 'empty'
ORDER BY version
"""


@dataclass(frozen=True)
class Entry:
    """One node run on the timeline."""

    node: str
    checkpoint_id: str
    """The checkpoint the node started from (fork here to run it again)."""
    started: datetime
    duration_s: float | None
    """``None`` while it runs or waits."""
    attempt: int
    failed: list[str] | None = None
    """For a ``validate`` that has ended: the checks that failed (empty: all passed)."""


async def timeline(pool: Pool, thread_id: str, serde: Any) -> list[Entry]:
    """The thread's node runs, oldest first; each ended ``validate`` with its verdict's
    failing checks (the ``verdict`` channel's values, decoded with the checkpointer's
    ``serde``)."""
    async with pool.connection() as conn:
        cur = await conn.execute(_QUERY, [thread_id, MAX_ENTRIES])
        rows = await cur.fetchall()
        cur = await conn.execute(_VERDICTS, [thread_id])
        blobs = await cur.fetchall()
    verdicts = [serde.loads_typed((b["type"], bytes(b["blob"]))) for b in blobs]
    failing = [
        [e.check for e in v.evidence if not e.passed] if isinstance(v, Verdict) else []
        for v in verdicts
        if v is not None
    ]
    return _with_verdicts(_entries(rows), failing)


def _with_verdicts(entries: list[Entry], failing: list[list[str]]) -> list[Entry]:
    validates = iter(failing)
    return [
        replace(e, failed=next(validates, None))
        if e.node == "validate" and e.duration_s is not None
        else e
        for e in entries
    ]


def _entries(rows: list[Any]) -> list[Entry]:
    points = [(r["checkpoint_id"], datetime.fromisoformat(r["ts"]), r["updated"]) for r in rows]
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for index, (checkpoint_id, started, updated) in enumerate(points):
        ended = points[index + 1][1] if index + 1 < len(points) else None
        for channel in updated or []:
            if not channel.startswith(_BRANCH):
                continue
            node = channel.removeprefix(_BRANCH)
            seen[node] = seen.get(node, 0) + 1
            duration = (ended - started).total_seconds() if ended is not None else None
            entries.append(Entry(node, checkpoint_id, started, duration, seen[node]))
    return entries


__all__ = ["Entry", "timeline"]
