"""The connection pool tests a connection that has been idle before handing it out (and replaces a dead one), and
skips that round trip for a connection returned a moment ago (lti_app.db._ping_when_idle)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from lti_app import db


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_idle_dead_connection_is_replaced_before_use(pg_database_url, monkeypatch):
    engine = db.make_engine(pg_database_url, pool_size=1, max_overflow=0)
    admin = db.make_engine(pg_database_url)
    try:
        victim = _backend_pid(engine)
        with admin.begin() as conn:  # the server drops the pooled connection (restart, idle timeout)
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        with engine.connect() as conn:  # pinged, found dead, replaced: the caller never sees the failure
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != victim
    finally:
        engine.dispose()
        admin.dispose()


def test_ping_leaves_no_transaction_open(pg_database_url, monkeypatch):
    """The connection handed out after a ping is idle (not in a transaction): a request may still choose AUTOCOMMIT
    (the OIDC login does) and its first statement sees a fresh snapshot."""
    engine = db.make_engine(pg_database_url, pool_size=1, max_overflow=0)
    try:
        _backend_pid(engine)
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.info.transaction_status.name == "IDLE"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_recent_dead_connection_fails_once_then_the_pool_recovers(pg_database_url, monkeypatch):
    """The trade-off, stated: a connection used within the last second is not pinged (no round trip), so if the
    server dropped it in that second one statement fails with a disconnect; the pool then discards it and the next
    checkout works."""

    engine = db.make_engine(pg_database_url, pool_size=1, max_overflow=0)
    admin = db.make_engine(pg_database_url)
    try:
        victim = _backend_pid(engine)
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
        with pytest.raises(DBAPIError) as failure, engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert failure.value.connection_invalidated
        assert _backend_pid(engine) != victim
    finally:
        engine.dispose()
        admin.dispose()
