"""Database wiring: declarative base with a naming convention, and the engine/session built per app.

Nothing here runs at import time except the class definitions: ``init_app`` builds the engine from the
app's settings and stores the session factory on the app, so several apps (tests) can coexist.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# JSON that is JSONB on PostgreSQL and JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """The engine for ``url``. ``hide_parameters``: a database error's message (logged with its traceback, and shown
    by ``str(exc)``) names the statement but not the values bound to it, which can be names, e-mails, note text or
    tokens."""
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine)
    _note_writes(engine)
    return engine


_WROTE = "caseload.wrote"
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.IGNORECASE)


def _note_writes(engine: Engine) -> None:
    """Mark a connection's transaction as having written once it runs anything but a plain read (``SELECT``, or a
    ``WITH`` query naming no INSERT/UPDATE/DELETE): ``_close_session`` ends a transaction that only read with a
    COMMIT instead of a ROLLBACK, because psycopg empties its cache of prepared statements (and deallocates them on
    the server) at every ROLLBACK, so a page whose last reads ran after its commit (every page header) had every
    statement parsed and planned again on every request. Unknown or ambiguous statements count as writes."""

    @event.listens_for(engine, "begin")
    def _reset(conn: Any) -> None:
        conn.info[_WROTE] = False

    @event.listens_for(engine, "before_cursor_execute")
    def _note(conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool) -> None:
        if conn.info.get(_WROTE) is not False:
            return
        head = statement.lstrip()[:6].upper()
        if not (head.startswith("SELECT") or (head.startswith("WITH") and not _WRITES.search(statement))):
            conn.info[_WROTE] = True


def _only_read(session: Session) -> bool:
    """The session's open transaction ran reads only (PostgreSQL engines note writes; elsewhere: unknown, False)."""
    if not session.in_transaction() or session.new or session.dirty or session.deleted:
        return False
    return session.connection().info.get(_WROTE) is False


PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled connection idle for longer than this is tested (SELECT 1) before it is handed out."""


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pre-ping, except for connections returned to the pool less than a second ago: a busy worker
    reuses its connection on every request, and the ping was a round trip on each (a fifth of a small request's
    CPU). A connection that has been idle (where a database restart or an idle timeout bites) is still tested, and
    a dead one is replaced before use (DisconnectionError makes the pool retry with a fresh connection)."""

    @event.listens_for(engine, "checkin")
    def _stamp(_dbapi_conn: Any, record: Any) -> None:
        record.info["caseload.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("caseload.idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new connection, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)  # the pre-ping's own ping: leaves no transaction open
        except engine.dialect.loaded_dbapi.Error as err:
            raise DisconnectionError(f"pooled connection failed its ping: {err}") from err


def init_app(app: Flask) -> None:
    settings = app.config["CASELOAD"]
    engine = make_engine(settings.database_url)
    app.extensions["caseload.engine"] = engine
    app.extensions["caseload.sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_request(_close_session)
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["caseload.engine"]  # type: ignore[no-any-return]


def get_session() -> Session:
    """The session of the current request (or app context), opened on first use, closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["caseload.sessionmaker"]()
    return g.db_session  # type: ignore[no-any-return]


@contextmanager
def session_scope(app: Flask | None = None) -> Iterator[Session]:
    """A standalone session (CLI, tasks, benches): rolled back unless the caller committed."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    session: Session = app.extensions["caseload.sessionmaker"]()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def _close_session(exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        if exc is None and _only_read(session):
            session.commit()  # same outcome as a rollback for a read-only transaction, and psycopg keeps its cache
        session.rollback()
        session.close()


def dialect_insert(session: Session, target: Any) -> Any:
    """The database's own INSERT construct (PostgreSQL or SQLite), which has ``on_conflict_do_nothing`` and
    ``on_conflict_do_update``; ``target`` is a table or a mapped class."""
    return dialect_insert_for(session.get_bind().dialect.name, target)


def dialect_insert_for(dialect: str, target: Any) -> Any:
    """``dialect_insert`` by dialect name (``postgresql`` or ``sqlite``)."""
    from sqlalchemy.dialects import postgresql, sqlite

    if dialect == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)



def in_ids(dialect: str, column: Any, ids: Iterable[int]) -> Any:
    """``column IN (ids)`` for a list of integer ids. On PostgreSQL it is ``column = ANY(%s)`` with the ids as one
    array parameter: the statement text stays the same whatever the number of ids, so psycopg parses it once per
    connection instead of again on every execution (a caseload of 200 students put 200 placeholders in several
    statements per page), and the planner still uses the column's index. SQLite keeps the expanding ``IN``."""
    values = list(ids)
    if dialect == "postgresql":
        from sqlalchemy import any_, bindparam
        from sqlalchemy.dialects.postgresql import ARRAY
        from sqlalchemy.types import Integer

        return column == any_(bindparam(None, values, type_=ARRAY(Integer)))
    return column.in_(values)
