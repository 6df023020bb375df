"""A request whose open transaction only read ends it with COMMIT, not ROLLBACK (``db._close_session``): psycopg
empties its cache of prepared statements at every ROLLBACK, so every page (whose header reads after the view's
commit) had each statement parsed and planned again on every request. A transaction that wrote and was not
committed is still rolled back: nothing a view left half-done is ever stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, select, text

from lti_app.db import get_session
from lti_app.models import Platform
from tests.support.lti_platform import LtiTestPlatform

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"cookie_secure": False}


def test_pages_keep_their_prepared_statements_across_requests(app, client, lms: LtiTestPlatform):
    resp = lms.launch(client, role="teacher", sub="teacher-1")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    engine = app.extensions["caseload.engine"]
    used: list[Any] = []

    def checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        used.append(dbapi_conn)

    event.listen(engine, "checkout", checkout)
    try:
        for _ in range(8):  # psycopg prepares a statement at its fifth execution on a connection
            assert client.get(resp.headers["Location"]).status_code == 200
    finally:
        event.remove(engine, "checkout", checkout)
    conn = used[-1]
    prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
    conn.rollback()
    assert prepared >= 2  # the panel's statement and the header's, at least


def test_a_request_that_wrote_and_did_not_commit_is_rolled_back(app, db_session, lms: LtiTestPlatform):
    platform_id = db_session.scalar(select(Platform.id))
    for write in ("UPDATE platforms SET name = 'half-done' WHERE id = :id",
                  "WITH changed AS (UPDATE platforms SET name = 'half-done' WHERE id = :id RETURNING id) "
                  "SELECT id FROM changed"):
        with app.test_request_context("/"):
            session = get_session()
            session.execute(select(Platform.name))  # a read first: the transaction is not write-only
            session.execute(text(write), {"id": platform_id})
        db_session.expire_all()
        assert db_session.scalar(select(Platform.name).where(Platform.id == platform_id)) == "testlms"


def test_a_request_that_raised_is_rolled_back_even_when_it_only_read(app, db_session, lms: LtiTestPlatform):
    engine = app.extensions["caseload.engine"]
    ended: list[str] = []
    event.listen(engine, "commit", lambda _c: ended.append("commit"))
    event.listen(engine, "rollback", lambda _c: ended.append("rollback"))
    ctx = app.test_request_context("/")
    ctx.push()
    get_session().execute(select(Platform.name))
    ctx.pop(RuntimeError("the view failed"))
    assert ended == ["rollback"]
    ended.clear()
    with app.test_request_context("/"):
        get_session().execute(select(Platform.name))
    assert ended == ["commit"]
