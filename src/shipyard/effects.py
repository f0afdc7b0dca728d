"""Journaled side effects (docs/architecture.md §4, rule 2).

Every effect of a step attempt — a model call, a tool call, a commit — goes through an
``EffectLog``. When a node re-runs after a crash, a completed effect is replayed from its
recorded outcome instead of running again. Two kinds:

* ``EffectLog.run`` — an effect on the world (a command, a commit): the intent is written
  before the effect, the outcome after (queued: it reaches Postgres with the next intent or
  the step's checkpoint, whichever comes first — ``store.writer``). An effect with an intent
  but no outcome is handed to its ``reconcile`` function, which looks the effect up and
  returns its outcome — or says it cannot, and the effect is reported as interrupted.
* ``EffectLog.record`` — a call that leaves nothing behind to reconcile when it is cut short
  (a model call; a file tool, whose writes the workspace pin undoes): for these an intent
  would only ever be answered by "call it again". On a step that cannot have entries yet
  (its timeline began in this invocation: ``invocation`` / ``new_timeline``) the intent and
  outcome are written together, behind, after the call — no round trip. Anywhere else it
  is ``run`` with "call again" as its reconciliation.

Nothing is blindly repeated: a recorded outcome is always replayed. Intents and outcomes
are redacted before they are stored, and a live effect returns the same redacted outcome a
replay would, so both paths see identical data. A caller may narrow the redaction of an
outcome (``mask``): a model's reply is code the run goes on to write, so it has only secret
values masked (``llm/redaction.py``) — credential-looking patterns such as
``RETURNS_KEY = '__return__'`` would otherwise be rewritten in the files it writes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from shipyard.redact import redact_obj
from shipyard.store import Journal

Outcome = dict[str, Any]
Reconcile = Callable[[dict[str, Any]], Outcome | None]
Mask = Callable[[Outcome], Outcome]
"""How an outcome is redacted before it is stored and returned."""


@dataclass
class _Invocation:
    """What one run of a graph knows for certain about its journal (see ``invocation``)."""

    timelines: set[tuple[str, str]] = field(default_factory=set)
    opened: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_INVOCATION: ContextVar[_Invocation | None] = ContextVar("shipyard_invocation", default=None)


@contextmanager
def invocation() -> Iterator[None]:
    """Scope one run of a graph (one ``astream``): whoever drives the graph wraps it in this,
    so the nodes it runs (in its tasks and executor threads, which copy the context) learn
    which journal timelines began in it. Without it every effect is journaled intent-first."""
    token = _INVOCATION.set(_Invocation())
    try:
        yield
    finally:
        _INVOCATION.reset(token)


def new_timeline(thread_id: str, epoch: str) -> None:
    """Declare that ``epoch`` (a step-key prefix no entry has ever used) of ``thread_id``'s
    journal begins now: until this invocation ends, a step of it opened for the first time
    has no entries. Called by the node that picks the epoch (intake)."""
    if (scope := _INVOCATION.get()) is not None:
        scope.timelines.add((thread_id, epoch))


def _opened_fresh(thread_id: str, step_key: str) -> bool:
    """True once per step of a timeline that began in this invocation: the first opening of
    the step, which no earlier process (nor an earlier try in this one) can have written."""
    scope = _INVOCATION.get()
    if scope is None or (thread_id, step_key.split("/", 1)[0]) not in scope.timelines:
        return False
    with scope.lock:
        if (thread_id, step_key) in scope.opened:
            return False  # the node runs again (a retry): replay what the first try recorded
        scope.opened.add((thread_id, step_key))
        return True


class EffectLog:
    """The journal of one step attempt (``thread_id`` + ``step_key``)."""

    def __init__(self, journal: Journal, thread_id: str, step_key: str) -> None:
        self._journal = journal
        self.thread_id = thread_id
        self.step_key = step_key
        self.replayed = 0
        self.reconciled = 0
        self.fresh = _opened_fresh(thread_id, step_key)
        """No entry of this step existed when it was opened (so none to replay)."""

    def last_tree(self) -> str | None:
        """The workspace tree recorded by the latest completed effect of this step, if any."""
        if self.fresh:
            return None
        tree = None
        for entry in self._journal.entries(self.thread_id, self.step_key):
            if entry.status in ("done", "reconciled") and entry.outcome:
                tree = entry.outcome.get("tree") or tree
        return tree

    def record(
        self,
        call_id: str,
        kind: str,
        intent: dict[str, Any],
        call: Callable[[], Outcome],
        *,
        mask: Mask | None = None,
    ) -> Outcome:
        """Make ``call`` (a call that leaves nothing to reconcile when cut short) once across
        crashes and return its (possibly recorded) outcome, redacted by ``mask`` (default:
        in full); see the module docstring."""
        if not self.fresh:
            return self.run(call_id, kind, intent, call, lambda _intent: call(), mask=mask)
        outcome = (mask or _redacted)(call())
        self._journal.record_behind(
            self.thread_id, self.step_key, call_id, kind, _redacted(intent), outcome
        )
        return outcome

    def run(
        self,
        call_id: str,
        kind: str,
        intent: dict[str, Any],
        effect: Callable[[], Outcome],
        reconcile: Reconcile,
        *,
        mask: Mask | None = None,
    ) -> Outcome:
        """Run ``effect`` once across crashes; return its (possibly recorded) outcome,
        redacted by ``mask`` (default: in full)."""
        clean = mask or _redacted
        entry, fresh = self._journal.claim(
            self.thread_id, self.step_key, call_id, kind, _redacted(intent)
        )
        if fresh:
            outcome = clean(effect())
            # Written behind: in Postgres before this step's checkpoint (store.writer).
            self._journal.complete_behind(self.thread_id, self.step_key, call_id, outcome)
            return outcome
        if entry.status in ("done", "reconciled") and entry.outcome is not None:
            self.replayed += 1
            return entry.outcome
        found = reconcile(entry.intent)
        if found is None:
            raise RuntimeError(
                f"effect {self.step_key}/{call_id} has an intent but no outcome and cannot be "
                "reconciled; refusing to repeat it"
            )
        found = clean(found)
        self._journal.complete(self.thread_id, self.step_key, call_id, found, status="reconciled")
        self.reconciled += 1
        return found


def _redacted(data: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = redact_obj(data)
    return clean
