"""The run queue's statements (``server.queue``). The hot ones (claim, enqueue, a run's end)
are each one round trip and its own transaction, so they cost one statement each. All are
rendered to text once, here (composing them on every call costs more than sending them)."""

from __future__ import annotations

from psycopg import sql

COLUMN_NAMES = (
    "run_id", "thread_id", "owner", "assistant_id", "status", "kwargs", "metadata",
    "multitask_strategy", "lease_owner", "lease_expires_at", "attempts", "cancel_action",
    "start_checkpoint_id", "error", "created_at", "updated_at",
)  # fmt: skip
COLUMNS = sql.SQL(", ").join(sql.Identifier(name) for name in COLUMN_NAMES)

LATEST_CHECKPOINT = """(SELECT c.checkpoint_id FROM checkpoints c
    WHERE c.thread_id = api_runs.thread_id AND c.checkpoint_ns = ''
    ORDER BY c.checkpoint_id DESC LIMIT 1)"""
"""The thread's newest checkpoint in LangGraph's own table (what ``aget_tuple`` would load)."""

CLAIM = (
    sql.SQL("""
WITH claimed AS (
UPDATE api_runs SET status = 'running', lease_owner = %(worker)s,
    lease_expires_at = now() + make_interval(secs => %(lease)s),
    attempts = attempts + 1, updated_at = now(),
    start_checkpoint_id = CASE WHEN api_runs.attempts = 0 THEN {latest}
                               ELSE api_runs.start_checkpoint_id END
WHERE run_id = (
    SELECT r.run_id FROM api_runs r
    WHERE ((r.status = 'pending' AND r.not_before <= now()
         AND NOT EXISTS (SELECT 1 FROM api_runs o WHERE o.thread_id = r.thread_id
                         AND o.run_id <> r.run_id
                         AND (o.status = 'running'
                              OR (o.status = 'pending' AND o.created_at < r.created_at))))
        OR (r.status = 'running' AND r.lease_expires_at < now()))
    ORDER BY r.created_at
    LIMIT 1
    FOR UPDATE SKIP LOCKED)
RETURNING {columns}, {latest} AS latest_checkpoint_id),
busy AS (
UPDATE threads SET status = 'busy', error = NULL, updated_at = now()
WHERE thread_id IN (SELECT thread_id FROM claimed))
SELECT claimed.*, EXISTS (
    SELECT 1 FROM api_runs r WHERE r.status = 'pending' AND r.not_before <= now()
      AND r.run_id <> claimed.run_id) AS more
FROM claimed
""")
    .format(columns=COLUMNS, latest=sql.SQL(LATEST_CHECKPOINT))
    .as_string()
)
"""Claims the oldest claimable run and marks its thread ``busy`` in the same statement; on
a first attempt it records the thread's newest checkpoint as the run's start (for rollback
and to tell a retry whether the run made progress). ``more``: other runs are waiting."""

OWNED = """EXISTS (SELECT 1 FROM threads
    WHERE thread_id = %(thread_id)s AND owner = %(owner)s)"""
"""The thread a run is inserted for exists and is the run's owner's."""

BUSY = """
UPDATE threads SET status = 'busy', error = NULL, updated_at = now(),
    metadata = CASE WHEN metadata ? 'graph_id' AND metadata ? 'assistant_id' THEN metadata
                    ELSE metadata || %(tags)s END
WHERE thread_id IN (SELECT thread_id FROM created)"""
"""Marks the thread of the run just inserted ``busy`` and, when its metadata lacks
``graph_id`` or ``assistant_id``, merges the run's ``tags`` into it."""

INSERT = (
    sql.SQL("""
WITH created AS (
INSERT INTO api_runs (run_id, thread_id, owner, assistant_id, kwargs, metadata,
    multitask_strategy, not_before)
SELECT %(run_id)s, %(thread_id)s, %(owner)s::text, %(assistant_id)s, %(kwargs)s, %(metadata)s,
    %(strategy)s, now() + make_interval(secs => %(after)s)
FROM (SELECT pg_advisory_xact_lock(hashtextextended(%(thread_id)s, 7))) AS thread_lock
WHERE {owned}
RETURNING {columns}),
busy AS ({busy})
SELECT created.* FROM created
CROSS JOIN (SELECT pg_notify(%(runs)s, %(run_id)s)) AS wake
""")
    .format(columns=COLUMNS, owned=sql.SQL(OWNED), busy=sql.SQL(BUSY))
    .as_string()
)
"""Inserts a pending run, marks its thread ``busy`` (tagging it, ``BUSY``) and wakes workers
(at commit). Holds the thread's run-creation lock until its transaction ends (taken before
the row is inserted). Inserts nothing when the thread is not the owner's (``OWNED``)."""

INSERT_CLAIMED = (
    sql.SQL("""
WITH thread AS (
SELECT NOT EXISTS (SELECT 1 FROM api_runs o WHERE o.thread_id = %(thread_id)s
                   AND o.status IN ('pending', 'running')) AS free,
    (SELECT c.checkpoint_id FROM checkpoints c
     WHERE c.thread_id = %(thread_id)s AND c.checkpoint_ns = ''
     ORDER BY c.checkpoint_id DESC LIMIT 1) AS latest
FROM (SELECT pg_advisory_xact_lock(hashtextextended(%(thread_id)s, 7))) AS thread_lock
WHERE {owned}),
created AS (
INSERT INTO api_runs (run_id, thread_id, owner, assistant_id, kwargs, metadata,
    multitask_strategy, not_before, status, lease_owner, lease_expires_at, attempts,
    start_checkpoint_id)
SELECT %(run_id)s, %(thread_id)s, %(owner)s::text, %(assistant_id)s, %(kwargs)s, %(metadata)s,
    %(strategy)s, now(), CASE WHEN free THEN 'running' ELSE 'pending' END,
    CASE WHEN free THEN %(worker)s END,
    CASE WHEN free THEN now() + make_interval(secs => %(lease)s) END,
    CASE WHEN free THEN 1 ELSE 0 END, CASE WHEN free THEN latest END
FROM thread
RETURNING {columns}),
busy AS ({busy})
SELECT created.*, thread.latest AS latest_checkpoint_id, (SELECT count(*) FROM (
    SELECT pg_notify(%(runs)s, %(run_id)s) WHERE created.status = 'pending') AS n) AS woken
FROM created CROSS JOIN thread
""")
    .format(columns=COLUMNS, owned=sql.SQL(OWNED), busy=sql.SQL(BUSY))
    .as_string()
)
"""``INSERT`` for a run this process will execute at once: when the thread has no other
run, the run is inserted already claimed by ``worker`` (as ``CLAIM`` would: attempts 1,
the lease, the thread's newest checkpoint as its start) and no worker is woken; otherwise
it is queued as ``INSERT`` queues it. The partial unique index on running runs keeps one
running run per thread even if a concurrent insert was not yet visible."""

FINISH = """
WITH ended AS (
UPDATE api_runs SET status = %(status)s, error = %(error)s, lease_owner = NULL,
    lease_expires_at = NULL, updated_at = now()
WHERE run_id = %(run_id)s AND lease_owner = %(worker)s AND status = 'running'
RETURNING thread_id),
thread AS (
UPDATE threads SET status = %(t_status)s, error = %(t_error)s, updated_at = now(),
    values = CASE WHEN %(set_values)s THEN %(values)s ELSE threads.values END,
    state_updated_at = CASE WHEN %(set_values)s THEN now() ELSE threads.state_updated_at END,
    interrupts = CASE WHEN %(set_interrupts)s THEN %(interrupts)s ELSE threads.interrupts END
WHERE thread_id IN (SELECT thread_id FROM ended))
SELECT (SELECT count(*) FROM ended) AS ended, pg_notify(%(events)s, %(run_id)s),
    (SELECT count(*) FROM (SELECT pg_notify(%(runs)s, %(run_id)s) WHERE EXISTS (
        SELECT 1 FROM api_runs p WHERE p.status = 'pending'
          AND p.thread_id IN (SELECT thread_id FROM ended))) AS freed) AS woken
"""
"""Ends a run held by ``worker`` and records its thread's status and latest state — one
statement, so whoever sees the run ended sees the thread. Workers are woken only when a
run was waiting for the thread."""


def _select(where: str) -> str:
    """Every column of the runs matching ``where`` (static text of this module)."""
    query = sql.SQL("SELECT {columns} FROM api_runs WHERE {where}")
    return query.format(columns=COLUMNS, where=sql.SQL(where)).as_string()


RENEW = """UPDATE api_runs SET lease_expires_at = now() + make_interval(secs => %s)
    WHERE run_id = %s AND lease_owner = %s AND status = 'running' RETURNING cancel_action"""
"""Extends a lease still held by the worker; says whether a cancel was asked for."""

END = """UPDATE api_runs SET status = %s, error = %s, lease_owner = NULL,
        lease_expires_at = NULL, updated_at = now()
    WHERE run_id = %s AND lease_owner = %s AND status = 'running' RETURNING run_id"""
"""Ends (or, with status ``pending``, releases) a run held by the worker, thread untouched."""

GET = _select("run_id = %s AND (%s::text IS NULL OR owner = %s)")
FOR_THREAD = _select(
    "owner = %s AND thread_id = %s AND (%s::text IS NULL OR status = %s)"
    " ORDER BY created_at DESC, run_id LIMIT %s OFFSET %s"
)
OWNED_WITH_STATUS = _select("owner = %s AND status = ANY(%s) ORDER BY created_at")
ACTIVE_OF_THREAD = _select(
    "thread_id = %s AND status IN ('pending', 'running') ORDER BY created_at"
)

DELETE_PENDING = "DELETE FROM api_runs WHERE run_id = %s AND status = 'pending'"
INTERRUPT_PENDING = """UPDATE api_runs SET status = 'interrupted', updated_at = now()
    WHERE run_id = %s AND status = 'pending'"""
FREE_THREAD = """UPDATE threads SET updated_at = now(),
    status = CASE WHEN interrupts IN ('{}'::jsonb, '[]'::jsonb, 'null'::jsonb)
                  THEN 'idle' ELSE 'interrupted' END
    WHERE thread_id = %(thread_id)s AND status = 'busy' AND NOT EXISTS (
        SELECT 1 FROM api_runs WHERE thread_id = %(thread_id)s
          AND status IN ('pending', 'running'))"""
"""After a pending run ended without running: its thread is no longer ``busy`` unless another
run holds it — ``interrupted`` when the thread still waits at an interrupt, else ``idle``."""
ASK_TO_STOP = """UPDATE api_runs SET cancel_action = %s, updated_at = now()
    WHERE run_id = %s AND status = 'running'"""
"""A running run is stopped by its worker, which sees ``cancel_action`` (or is told on
``shipyard_cancel``)."""
