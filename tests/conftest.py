"""Shared fixtures: an app on a real, migrated database (PostgreSQL by default, SQLite on request).

- The schema always comes from ``alembic upgrade`` (never create_all), once per test session per backend;
  tables are emptied after each test.
- PostgreSQL: ``CASELOAD_TEST_PG_URL`` (default postgres@127.0.0.1:5432/test) is used to create a private
  database per test process. With ``CI=true`` an unreachable PostgreSQL fails the run instead of skipping.
- Unit tests (tests/unit) use none of this.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("CASELOAD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TEST_DATA_KEY = Fernet.generate_key().decode()
TEST_SECRET = "test-secret-key-" + "x" * 32
MIGRATION_TARGET = "head"


def _pg_unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL is required in CI but unavailable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    from lti_app.migrate import upgrade

    name = f"caseload_test_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        _pg_unavailable(f"{type(exc).__name__}: {exc}")
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url, MIGRATION_TARGET)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    from lti_app.migrate import upgrade

    path = Path(tmp_path_factory.mktemp("sqlite")) / "caseload.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url, MIGRATION_TARGET)
    return url


@pytest.fixture(params=["postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the ``app`` fixture uses. Parametrize indirectly to run on both:
    ``@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)``."""
    return str(request.param)


def test_settings(database_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "env": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "data_keys": [TEST_DATA_KEY],
        "base_url": "http://127.0.0.1:5000",
        **extra,
    }


def _empty_tables(app: Any) -> None:
    from lti_app.db import Base

    engine = app.extensions["caseload.engine"]
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            existing = [r[0] for r in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"))]
            if existing:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in existing) + " RESTART IDENTITY CASCADE"))
        else:
            existing = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            for t in tables + sorted(existing - set(tables) - {"alembic_version"}):
                if t in existing:
                    conn.execute(text(f'DELETE FROM "{t}"'))
            conn.execute(text("PRAGMA foreign_keys=ON"))


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return str(request.getfixturevalue("sqlite_database_url"))
    return str(request.getfixturevalue("pg_database_url"))


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Override in a test module to change settings for its ``app``."""
    return {}


@pytest.fixture
def app(database_url: str, app_config: dict[str, Any]) -> Iterator[Any]:
    from lti_app import create_app

    app = create_app(test_settings(database_url, **app_config))
    with app.app_context():
        yield app
    _empty_tables(app)
    app.extensions["caseload.engine"].dispose()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def db_session(app: Any) -> Iterator[Any]:
    """A session for arranging and asserting; commit explicitly to make data visible to requests."""
    session = app.extensions["caseload.sessionmaker"]()
    yield session
    session.rollback()
    session.close()


TEST_BROWSER_SECRET = "test-browser-binding-secret-" + "b" * 16
"""The ``client`` fixture's browser: the binding cookie a launch would have set in it (lti_app.auth)."""


@pytest.fixture
def token_for(app: Any, client: Any) -> Any:
    """token_for(person, course=None, roles=("teacher",)) -> app token string, as a launch would issue: bound to the
    ``client`` fixture's browser, which holds the binding cookie (another client is another browser)."""
    from lti_app.auth import COOKIE_MODE, Viewer, bind, binding_cookie_name, issue_token

    with app.test_request_context():
        client.set_cookie(binding_cookie_name(), TEST_BROWSER_SECRET)

    def _make(person: Any, course: Any = None, roles: tuple[str, ...] = ("teacher",), **kw: Any) -> str:
        with app.test_request_context():
            kw.setdefault("binding", bind(COOKIE_MODE, TEST_BROWSER_SECRET))
            return issue_token(Viewer(person_id=person.id, platform_id=person.platform_id,
                                      course_id=course.id if course is not None else None, roles=roles, **kw))

    return _make
