"""``EffectLog`` against a real Postgres: what is written when, what is replayed.

Recorded calls (``record``) skip the intent only where no entry can exist — a timeline begun
in this invocation, a step opened for the first time; everywhere else they are journaled
intent-first like ``run``. Either way a recorded outcome is replayed, never made again.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterator

import pytest
import sqlalchemy

from shipyard.effects import EffectLog, invocation, new_timeline
from shipyard.store import Journal, make_engine


@pytest.fixture
def journal(db_url: str) -> Iterator[Journal]:
    engine = make_engine(db_url)
    yield Journal(engine)
    engine.dispose()


class Calls:
    """A call that counts how often it was made."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self) -> dict[str, int]:
        self.made += 1
        return {"n": self.made}


def test_a_fresh_step_records_after_the_call_and_replays_it_later(journal: Journal) -> None:
    call = Calls()
    seen: list[object] = []

    def during() -> dict[str, int]:
        seen.append(journal.get("t", "e1/plan", "ask"))  # nothing written before the call
        return call()

    with invocation():
        new_timeline("t", "e1")
        log = EffectLog(journal, "t", "e1/plan")
        assert log.fresh and log.last_tree() is None
        assert log.record("ask", "model", {"q": 1}, during) == {"n": 1}

    assert seen == [None]
    entry = journal.get("t", "e1/plan", "ask")  # a read sends the queued row first
    assert entry is not None and entry.status == "done" and entry.outcome == {"n": 1}
    assert entry.intent == {"q": 1}
    # A later invocation (a resume) replays it instead of asking again.
    with invocation():
        again = EffectLog(journal, "t", "e1/plan")
        assert not again.fresh
        assert again.record("ask", "model", {"q": 1}, call) == {"n": 1}
    assert call.made == 1 and again.replayed == 1


def test_without_an_invocation_a_recorded_call_is_journaled_intent_first(
    journal: Journal,
) -> None:
    seen: list[str | None] = []

    def during() -> dict[str, int]:
        entry = journal.get("t", "e1/plan", "ask")
        seen.append(entry and entry.status)
        return {"n": 1}

    new_timeline("t", "e1")  # outside an invocation: nothing is learned
    log = EffectLog(journal, "t", "e1/plan")
    assert not log.fresh
    log.record("ask", "model", {}, during)
    assert seen == ["intent"]


def test_a_step_of_an_older_timeline_is_not_fresh(journal: Journal) -> None:
    journal.begin("t", "old/plan", "ask", "model", {})  # cut short before it returned
    call = Calls()
    with invocation():
        new_timeline("t", "new")
        assert EffectLog(journal, "t", "new/plan").fresh
        old = EffectLog(journal, "t", "old/plan")
        assert not old.fresh
        assert old.record("ask", "model", {}, call) == {"n": 1}  # asked again
    entry = journal.get("t", "old/plan", "ask")
    assert entry is not None and entry.status == "reconciled" and call.made == 1


def test_a_step_opened_again_in_the_same_invocation_replays_the_first_try(
    journal: Journal,
) -> None:
    call = Calls()
    with invocation():
        new_timeline("t", "e1")
        first = EffectLog(journal, "t", "e1/execute")
        first.record("model.0", "model", {}, call)
        retry = EffectLog(journal, "t", "e1/execute")  # the node runs again (a retry)
        assert not retry.fresh
        assert retry.record("model.0", "model", {}, call) == {"n": 1}
    assert call.made == 1


def test_intent_first_effects_still_write_the_intent_before(journal: Journal) -> None:
    seen: list[str | None] = []

    def effect() -> dict[str, int]:
        entry = journal.get("t", "e1/validate", "commit")
        seen.append(entry and entry.status)
        return {"ok": 1}

    with invocation():
        new_timeline("t", "e1")
        log = EffectLog(journal, "t", "e1/validate")
        log.record("model.0", "model", {}, Calls())
        log.run("commit", "git:commit", {}, effect, lambda _intent: None)
    assert seen == ["intent"]
    steps = [(e.call_id, e.status) for e in journal.entries("t", "e1/validate")]
    assert steps == [("model.0", "done"), ("commit", "done")]  # in the order they were made


async def test_threads_and_tasks_of_an_invocation_share_what_it_learned(
    journal: Journal,
) -> None:
    # LangGraph runs sync nodes in executor threads and async ones in tasks; both copy
    # the context, so the invocation's knowledge reaches them — and only them.
    def opens(step_key: str) -> bool:
        return EffectLog(journal, "t", step_key).fresh

    with invocation():
        new_timeline("t", "e1")
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        assert await loop.run_in_executor(None, context.run, opens, "e1/a")
        assert not await asyncio.create_task(asyncio.to_thread(opens, "e1/a"))  # opened above
        assert await asyncio.create_task(asyncio.to_thread(opens, "e1/b"))
    assert not await asyncio.create_task(asyncio.to_thread(opens, "e1/c"))


def test_recorded_rows_are_committed_with_nothing_lost(journal: Journal, db_url: str) -> None:
    with invocation():
        new_timeline("t", "e1")
        log = EffectLog(journal, "t", "e1/execute")
        for turn in range(5):
            log.record(f"model.{turn}", "model", {"turn": turn}, lambda: {"ok": True})
    # Another connection sees them (the write-behind sender runs within LINGER_S).
    engine = make_engine(db_url)
    try:
        for _ in range(100):
            with engine.connect() as conn:
                count = conn.execute(sqlalchemy.text("SELECT count(*) FROM journal")).scalar()
            if count == 5:
                break
            time.sleep(0.05)
        assert count == 5
    finally:
        engine.dispose()
