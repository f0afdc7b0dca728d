"""The Postgres check cache: evidence round-trips by (owner, tree hash, command key), and one
owner never sees another's entries."""

from __future__ import annotations

from shipyard.contracts import Evidence, Failure, IsolationReport
from shipyard.store import PgCheckCache, make_engine
from shipyard.tools.checks import CheckCache


def _evidence(passed: bool) -> Evidence:
    return Evidence(
        check="pytest",
        command=["pytest", "-q"],
        exit_code=0 if passed else 1,
        passed=passed,
        duration_s=0.5,
        summary="ok" if passed else "1 failed",
        failures=[] if passed else [Failure(id="t::x", message="boom")],
        log_ref="artifact://r/logs/pytest.txt",
        isolation=IsolationReport(level="process", missing={"bubblewrap": "not installed"}),
        cached_from="r",
    )


def test_get_put_replace(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        cache: CheckCache = PgCheckCache(engine)
        assert cache.get("alice", "tree1", "key") is None
        cache.put("alice", "tree1", "key", _evidence(False))
        assert cache.get("alice", "tree1", "key") == _evidence(False)
        assert cache.get("alice", "tree2", "key") is None
        assert cache.get("alice", "tree1", "other") is None

        cache.put("alice", "tree1", "key", _evidence(True))
        # A second instance (another worker) sees the same row.
        assert PgCheckCache(engine).get("alice", "tree1", "key") == _evidence(True)
    finally:
        engine.dispose()


def test_entries_belong_to_one_owner(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        cache = PgCheckCache(engine)
        cache.put("alice", "tree1", "key", _evidence(True))
        assert cache.get("bob", "tree1", "key") is None
        cache.put("bob", "tree1", "key", _evidence(False))
        assert cache.get("alice", "tree1", "key") == _evidence(True)
        assert cache.get("bob", "tree1", "key") == _evidence(False)
    finally:
        engine.dispose()
