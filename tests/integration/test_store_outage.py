"""What counts as losing the database: a connection that fails or is shut down, never a
statement the server refused — a run that waited for the database after a lock timeout
would retry the same statement forever."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import exc as sa_exc

from shipyard.store import psycopg_conninfo
from shipyard.store.outage import database_outage


def test_a_lock_timeout_is_not_an_outage(db_url: str) -> None:
    info = psycopg_conninfo(db_url)
    with psycopg.connect(info, autocommit=True) as setup:
        setup.execute("CREATE TABLE held (id int)")
    with psycopg.connect(info) as holder, psycopg.connect(info) as waiter:
        holder.execute("LOCK TABLE held IN ACCESS EXCLUSIVE MODE")
        waiter.execute("SET lock_timeout = '20ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable) as refused:
            waiter.execute("SELECT * FROM held")
    assert not database_outage(refused.value)
    wrapped = sa_exc.OperationalError("SELECT", {}, refused.value)
    assert not database_outage(wrapped)


def test_a_refused_connection_and_a_terminated_one_are_outages(db_url: str) -> None:
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect("host=127.0.0.1 port=1 dbname=x connect_timeout=2")
    assert database_outage(refused.value)
    info = psycopg_conninfo(db_url)
    with (
        psycopg.connect(info, autocommit=True) as victim,
        psycopg.connect(info, autocommit=True) as admin,
    ):
        pid = victim.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(psycopg.OperationalError) as terminated:
            victim.execute("SELECT 1")
    assert database_outage(terminated.value)
