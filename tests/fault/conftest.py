"""Fixtures shared by the fault-injection tests: one private PostgreSQL cluster and one private Redis per test module
(tests/support/faults.py), with a migrated template database each test copies. The machine's own servers are never
touched. With ``CI=true`` missing server binaries fail the run instead of skipping it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, text

from tests.support import faults


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"fault tests need {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Servers:
    pg: faults.PrivatePostgres
    redis: faults.PrivateRedis
    template: str

    def copy_database(self, prefix: str) -> str:
        """A new database copied from the migrated template (``CREATE DATABASE ... TEMPLATE``); its URL."""
        import uuid

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        admin = create_engine(self.pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        admin.dispose()
        return self.pg.url(name)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """One private PostgreSQL cluster and one private Redis for the module; a migrated template database that each
    test copies (``CREATE DATABASE ... TEMPLATE``) instead of migrating again."""
    missing = faults.have_servers()
    if missing:
        _skip_or_fail(missing)
    base = tmp_path_factory.mktemp("faults")
    pg = faults.PrivatePostgres().init()
    pg.start()
    redis_server = faults.PrivateRedis(base / "redis")
    redis_server.start()
    try:
        from lti_app.migrate import upgrade

        admin = create_engine(pg.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "template_caseload"'))
        admin.dispose()
        upgrade(pg.url("template_caseload"), "head")
        yield Servers(pg, redis_server, "template_caseload")
    finally:
        redis_server.stop()
        pg.remove()
