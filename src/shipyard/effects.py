"""Journaled side effects (DESIGN §4, rule 2).

Every effect of a step attempt — a model call, a tool call, a commit — goes through
``EffectLog.run``: the intent is written before the effect, the outcome after (queued: it
reaches Postgres with the next intent or the step's checkpoint, whichever comes first —
``store.writer``). When a node
re-runs after a crash, a completed effect is replayed from its recorded outcome instead of
running again; an effect with an intent but no outcome is handed to its ``reconcile``
function, which looks the effect up and returns its outcome — or says it cannot, and the
effect is reported as interrupted. Nothing is blindly repeated.

Intents and outcomes are redacted before they are stored, and a live effect returns the
same redacted outcome a replay would, so both paths see identical data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard.redact import redact_obj
from shipyard.store import Journal

Outcome = dict[str, Any]
Reconcile = Callable[[dict[str, Any]], Outcome | None]


class EffectLog:
    """The journal of one step attempt (``thread_id`` + ``step_key``)."""

    def __init__(self, journal: Journal, thread_id: str, step_key: str) -> None:
        self._journal = journal
        self.thread_id = thread_id
        self.step_key = step_key
        self.replayed = 0
        self.reconciled = 0

    def last_tree(self) -> str | None:
        """The workspace tree recorded by the latest completed effect of this step, if any."""
        tree = None
        for entry in self._journal.entries(self.thread_id, self.step_key):
            if entry.status in ("done", "reconciled") and entry.outcome:
                tree = entry.outcome.get("tree") or tree
        return tree

    def run(
        self,
        call_id: str,
        kind: str,
        intent: dict[str, Any],
        effect: Callable[[], Outcome],
        reconcile: Reconcile,
    ) -> Outcome:
        """Run ``effect`` once across crashes; return its (possibly recorded) outcome."""
        entry, fresh = self._journal.claim(
            self.thread_id, self.step_key, call_id, kind, _redacted(intent)
        )
        if fresh:
            outcome = _redacted(effect())
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
        found = _redacted(found)
        self._journal.complete(self.thread_id, self.step_key, call_id, found, status="reconciled")
        self.reconciled += 1
        return found


def _redacted(data: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = redact_obj(data)
    return clean
