"""Run leases and cancel requests on the ``runs`` table (``store/run_leases.py``): one
holder at a time, taken over when it expires or its process is gone, never from a server
worker, and shown as interrupted exactly when nothing drives a running run."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from shipyard.store import RunStore, make_engine
from shipyard.store.run_holders import dead_here
from shipyard.store.run_leases import new_owner
from tests.support import wait_until


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = make_engine(db_url)
    yield made
    made.dispose()


def test_one_holder_at_a_time_until_its_lease_expires(engine: Engine) -> None:
    store = RunStore(engine)
    store.create_run("g", "/repo", run_id="run-a")
    leases = store.leases
    assert leases.acquire("run-a", "hostA:1:a", 30) is None
    assert leases.acquire("run-a", "hostB:2:b", 30) == "hostA:1:a"
    assert leases.holder("run-a") == "hostA:1:a"
    assert not store.get_run("run-a").interrupted
    assert leases.renew("run-a", "hostA:1:a", 0.2).ours  # its last renewal, then it dies
    # Running, its lease run out: nothing drives it.
    wait_until(lambda: store.get_run("run-a").interrupted, what="the lease run out")
    assert leases.holder("run-a") is None
    assert leases.acquire("run-a", "hostB:2:b", 30) is None
    renewal = leases.renew("run-a", "hostA:1:a", 30)
    assert not renewal.ours  # the first holder learns it lost the run
    assert leases.renew("run-a", "hostB:2:b", 30).ours
    leases.release("run-a", "hostA:1:a")  # not its lease any more: nothing changes
    assert leases.holder("run-a") == "hostB:2:b"
    leases.release("run-a", "hostB:2:b")
    assert leases.holder("run-a") is None and store.get_run("run-a").interrupted


def test_a_lease_of_a_process_gone_from_this_host_counts_as_gone(engine: Engine) -> None:
    store = RunStore(engine)
    store.create_run("g", "/repo", run_id="run-b")
    gone = f"{socket.gethostname()}:{2**22 + 12345}:x"  # above any pid_max: never alive
    assert dead_here(gone) and not dead_here(new_owner())
    assert not dead_here(f"{socket.gethostname()}-other:{os.getpid()}:x")
    assert store.leases.acquire("run-b", gone, 600) is None
    assert store.get_run("run-b").interrupted and store.leases.holder("run-b") is None
    assert store.leases.take_over("run-b", "me:1:m", gone, 30) is None
    assert store.leases.holder("run-b") == "me:1:m"
    assert store.leases.take_over("run-b", "you:2:y", gone, 30) == "me:1:m"


def test_a_run_queued_on_the_server_is_neither_taken_nor_interrupted(engine: Engine) -> None:
    store = RunStore(engine)
    store.create_run("g", "/repo", run_id="run-c")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO threads (thread_id, owner) VALUES ('run-c', 'o')"))
        conn.execute(
            text(
                "INSERT INTO api_runs (run_id, thread_id, owner, assistant_id, status, "
                "multitask_strategy) VALUES ('q1', 'run-c', 'o', 'shipyard', 'running', 'reject')"
            )
        )
    assert not store.get_run("run-c").interrupted
    assert store.leases.acquire("run-c", "cli:1:c", 30) == "a server worker"
    assert store.leases.holder("run-c") == "a server worker"
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_runs SET status = 'success' WHERE run_id = 'q1'"))
    assert store.get_run("run-c").interrupted
    assert store.leases.acquire("run-c", "cli:1:c", 30) is None


def test_cancel_request_reaches_the_holder_with_its_next_renewal(engine: Engine) -> None:
    store = RunStore(engine)
    store.create_run("g", "/repo", run_id="run-d")
    leases = store.leases
    assert leases.acquire("run-d", "h:1:d", 30) is None
    assert not leases.renew("run-d", "h:1:d", 30).cancel_requested
    assert leases.request_cancel("run-d", "cli")
    assert leases.request_cancel("run-d", "someone else")  # idempotent: the first stays
    assert leases.renew("run-d", "h:1:d", 30).cancel_requested
    run = store.get_run("run-d")
    assert run.cancel_requested and run.cancel_by == "cli"
    leases.clear_cancel("run-d")
    assert not leases.renew("run-d", "h:1:d", 30).cancel_requested
    assert not leases.request_cancel("no-such-run", "cli")
    # Ended runs are never interrupted, whatever their lease.
    store.update_run("run-d", status="completed")
    leases.release("run-d", "h:1:d")
    assert not store.get_run("run-d").interrupted
