"""Runs, approvals and run events against a real Postgres."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy

from shipyard.contracts import ApprovalDecision, ApprovalRequest, Usage, content_hash
from shipyard.errors import NotWaitingError, StaleApprovalError, UnknownRunError
from shipyard.store import RunStore, make_engine


@pytest.fixture
def store(db_url: str) -> Iterator[RunStore]:
    engine = make_engine(db_url)
    yield RunStore(engine)
    engine.dispose()


def _request(run_id: str, summary: str = "the plan") -> ApprovalRequest:
    payload = {"summary": summary}
    return ApprovalRequest(
        kind="plan",
        run_id=run_id,
        summary=summary,
        risk="low",
        payload=payload,
        content_hash=content_hash(payload),
    )


def test_create_get_update_and_list(store: RunStore) -> None:
    run = store.create_run("add validation", "/repos/demo", run_id="run-aaaaaaaa")
    assert (run.id, run.thread_id, run.status) == ("run-aaaaaaaa", "run-aaaaaaaa", "running")
    assert run.usage == Usage()

    updated = store.update_run(
        run.id,
        status="completed",
        branch="shipyard/run-aaaaaaaa",
        head_commit="abc123",
        usage=Usage(model_calls=3, cost_usd=0.25),
    )
    assert updated.status == "completed"
    assert updated.branch == "shipyard/run-aaaaaaaa"
    assert updated.usage == Usage(model_calls=3, cost_usd=0.25)
    assert updated.updated_at >= run.updated_at
    assert store.get_run(run.id) == updated

    second = store.create_run("another goal", "/repos/demo")
    assert [r.id for r in store.list_runs()] == [second.id, run.id]
    assert [r.id for r in store.list_runs(limit=1)] == [second.id]


def test_bad_updates_are_refused_and_change_nothing(store: RunStore) -> None:
    run = store.create_run("g", "/r", run_id="run-1")
    with pytest.raises(ValueError, match="cannot update run field"):
        store.update_run(run.id, colour="blue")
    with pytest.raises(ValueError, match="unknown run status 'done'"):
        store.update_run(run.id, status="done")
    with pytest.raises(UnknownRunError, match="no run with id 'nope'"):
        store.update_run("nope", status="failed")
    with pytest.raises(ValueError, match="already exists"):
        store.create_run("g2", "/r2", run_id="run-1")
    assert store.get_run(run.id) == run


def test_get_run_by_unique_prefix(store: RunStore) -> None:
    store.create_run("g", "/r", run_id="abcdef-1111")
    store.create_run("g", "/r", run_id="abcdef-2222")
    store.create_run("g", "/r", run_id="a_c%ef-3333")

    assert store.get_run("abcdef-1").id == "abcdef-1111"
    with pytest.raises(UnknownRunError, match="ambiguous: it matches abcdef-1111, abcdef-2222"):
        store.get_run("abcdef")
    with pytest.raises(UnknownRunError, match="at least 6 characters"):
        store.get_run("abcde")
    with pytest.raises(UnknownRunError, match="no run with id or id prefix 'zzzzzz'"):
        store.get_run("zzzzzz")
    # LIKE wildcards in the prefix are literal characters, not patterns.
    assert store.get_run("a_c%ef").id == "a_c%ef-3333"
    with pytest.raises(UnknownRunError):
        store.get_run("a%%%%%")


def test_approval_lifecycle(store: RunStore) -> None:
    run = store.create_run("g", "/r")
    request = _request(run.id)

    pending = store.record_approval_request(run.id, "int-1", request)
    assert store.record_approval_request(run.id, "int-1", request) == pending  # idempotent
    assert pending.status == "pending" and pending.decision is None
    assert store.pending_approval(run.id) == pending

    decision = ApprovalDecision(decision="approve", by="alice", content_hash=request.content_hash)
    decided = store.record_decision(run.id, decision, "decided", interrupt_id="int-1")

    assert decided.id == pending.id
    assert (decided.status, decided.decision, decided.decided_by) == ("decided", decision, "alice")
    assert decided.decided_at is not None
    assert store.pending_approval(run.id) is None
    assert store.approvals(run.id) == [decided]
    with pytest.raises(NotWaitingError, match="not waiting for an approval"):
        store.record_decision(run.id, decision)


def test_stale_decision_is_refused_recorded_and_keeps_the_request_pending(
    store: RunStore,
) -> None:
    run = store.create_run("g", "/r")
    pending = store.record_approval_request(run.id, "int-1", _request(run.id))
    stale = ApprovalDecision(decision="approve", by="bob", content_hash="sha256:old")

    with pytest.raises(StaleApprovalError, match="still pending"):
        store.record_decision(run.id, stale)
    with pytest.raises(StaleApprovalError, match="interrupt 'int-0'"):
        store.record_decision(
            run.id,
            stale.model_copy(update={"content_hash": pending.content_hash}),
            interrupt_id="int-0",
        )

    assert store.pending_approval(run.id) == pending
    rows = store.approvals(run.id)
    assert [r.status for r in rows] == ["pending", "refused", "refused"]
    assert rows[1].decision == stale and rows[1].decided_by == "bob"


def test_new_interrupt_supersedes_the_pending_one(store: RunStore) -> None:
    run = store.create_run("g", "/r")
    store.record_approval_request(run.id, "int-1", _request(run.id, "v1"))
    newer = store.record_approval_request(run.id, "int-2", _request(run.id, "v2"))

    assert store.pending_approval(run.id) == newer
    assert [(a.interrupt_id, a.status) for a in store.approvals(run.id)] == [
        ("int-1", "superseded"),
        ("int-2", "pending"),
    ]


def test_approval_for_unknown_or_mismatched_run_is_refused(store: RunStore) -> None:
    run = store.create_run("g", "/r")
    with pytest.raises(UnknownRunError):
        store.record_approval_request("missing", "i", _request("missing"))
    with pytest.raises(ValueError, match="is for run 'other'"):
        store.record_approval_request(run.id, "i", _request("other"))
    with pytest.raises(NotWaitingError):
        store.record_decision(run.id, ApprovalDecision(decision="reject", content_hash="x"))
    assert store.approvals(run.id) == []


def test_events_are_numbered_per_run_in_order(store: RunStore, db_url: str) -> None:
    a = store.create_run("g", "/r")
    b = store.create_run("g", "/r")
    store.append_event(a.id, "node", {"node": "intake"})
    store.append_event(b.id, "node", {"node": "intake"})
    last = store.append_event(a.id, "status", {"status": "completed"})

    assert last.seq == 2
    assert [(e.seq, e.kind, e.payload) for e in store.events(a.id)] == [
        (1, "node", {"node": "intake"}),
        (2, "status", {"status": "completed"}),
    ]
    assert [e.seq for e in store.events(a.id, after_seq=1)] == [2]
    assert [e.seq for e in store.events(b.id)] == [1]
    with pytest.raises(UnknownRunError):
        store.append_event("missing", "node", {})
    engine = make_engine(db_url)
    with engine.connect() as conn:
        total = conn.execute(sqlalchemy.text("SELECT count(*) FROM run_events")).scalar()
    engine.dispose()
    assert total == 3
