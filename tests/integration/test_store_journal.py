"""The side-effect journal against a real Postgres: idempotent intents, ordered entries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy

from shipyard.store import Journal, make_engine


@pytest.fixture
def engine(db_url: str) -> Iterator[sqlalchemy.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_begin_twice_returns_the_first_entry_and_never_duplicates(
    engine: sqlalchemy.Engine,
) -> None:
    journal = Journal(engine)
    first = journal.begin("t1", "s1", "call-a", "write_file", {"path": "a.py"})
    again = journal.begin("t1", "s1", "call-a", "write_file", {"path": "OTHER.py"})

    assert again == first
    assert again.intent == {"path": "a.py"}
    assert again.status == "intent" and again.outcome is None
    with engine.connect() as conn:
        count = conn.execute(sqlalchemy.text("SELECT count(*) FROM journal")).scalar()
    assert count == 1


def test_complete_records_the_outcome_once(engine: sqlalchemy.Engine) -> None:
    journal = Journal(engine)
    journal.begin("t1", "s1", "call-a", "run_command", {"argv": ["pytest"]})

    done = journal.complete("t1", "s1", "call-a", {"exit_code": 0})
    repeat = journal.complete("t1", "s1", "call-a", {"exit_code": 1}, status="failed")

    assert done.status == "done" and done.outcome == {"exit_code": 0}
    assert done.completed_at is not None
    assert repeat == done
    assert journal.get("t1", "s1", "call-a") == done


def test_complete_without_intent_is_refused(engine: sqlalchemy.Engine) -> None:
    journal = Journal(engine)
    with pytest.raises(LookupError, match=r"call Journal\.begin before the effect"):
        journal.complete("t1", "s1", "never-begun", {"ok": True})
    assert journal.entries("t1") == []


def test_complete_with_unknown_status_is_refused_and_keeps_the_intent(
    engine: sqlalchemy.Engine,
) -> None:
    journal = Journal(engine)
    journal.begin("t1", "s1", "c", "commit", {})
    with pytest.raises(ValueError, match="status must be one of"):
        journal.complete("t1", "s1", "c", {}, status="intent")  # type: ignore[arg-type]
    assert [e.status for e in journal.open_intents("t1")] == ["intent"]


def test_entries_keep_insertion_order_and_filter_by_step_and_thread(
    engine: sqlalchemy.Engine,
) -> None:
    journal = Journal(engine)
    # Call ids deliberately not in alphabetical order: order is insertion, not key.
    for step, call in [("s1", "z"), ("s1", "a"), ("s2", "m"), ("s1", "k")]:
        journal.begin("t1", step, call, "tool", {"call": call})
    journal.begin("t2", "s1", "z", "tool", {})
    journal.complete("t1", "s1", "a", {"ok": True})
    journal.complete("t1", "s2", "m", {"ok": False}, status="reconciled")

    assert [(e.step_key, e.call_id) for e in journal.entries("t1")] == [
        ("s1", "z"),
        ("s1", "a"),
        ("s2", "m"),
        ("s1", "k"),
    ]
    assert [e.call_id for e in journal.entries("t1", "s1")] == ["z", "a", "k"]
    assert [e.call_id for e in journal.open_intents("t1")] == ["z", "k"]
    assert [e.status for e in journal.entries("t1", "s2")] == ["reconciled"]
    assert [e.thread_id for e in journal.entries("t2")] == ["t2"]
