"""Issue #10, the leaner launch: a returning teacher's complete launch (login, launch, first page) in at most six SQL
statements, with the registration (platform and deployment rows) cached per process — and every change to a
platform or deployment, made in this process or in another one, still honoured at the next launch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select, update

from lti_app.lti.registry_cache import registry_cache
from lti_app.models import Deployment, Platform, UsedNonce
from tests.support.lti_platform import LtiTestPlatform


@pytest.fixture
def app_config() -> dict[str, Any]:
    return {"cookie_secure": False}


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = app.extensions["caseload.engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _elsewhere(app: Any, statement: Any) -> None:
    """Run a change the way another process (the CLI, another web worker) would: on its own connection, outside
    this process's ORM sessions, so nothing here is told about it."""
    with app.extensions["caseload.engine"].begin() as conn:
        conn.execute(statement)


def _nonces(db_session: Any) -> int:
    db_session.expire_all()
    return int(db_session.scalar(select(func.count()).select_from(UsedNonce)))


def _complete_launch(client: Any, lms: LtiTestPlatform, sub: str = "teacher-1") -> tuple[Any, Any]:
    resp = lms.launch(client, role="teacher", sub=sub)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    page = client.get(resp.headers["Location"])
    return resp, page


def test_returning_teachers_complete_launch_costs_at_most_six_statements_and_no_savepoint(app, client, lms):
    _complete_launch(client, lms)  # the first launch creates the roster rows and caches the registration
    with statements(app) as login_sql:
        login = lms.start_login(client)
    token = lms.sign(lms.claims(login["nonce"], role="teacher", sub="teacher-1"))
    with statements(app) as launch_sql:
        resp = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    with statements(app) as page_sql:
        page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    # Login: the cached registration, nothing read. Launch: one INSERT … ON CONFLICT each for the nonce (which also
    # re-checks the cached registration), the person, the course and the enrollment. First page: two reads.
    assert login_sql == []
    assert len(launch_sql) == 4, launch_sql
    assert len(login_sql + launch_sql + page_sql) <= 6, page_sql
    assert not any("SAVEPOINT" in s.upper() for s in launch_sql + page_sql)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_platform_disabled_by_another_process_refuses_the_next_launch_although_it_was_cached(app, client, lms,
                                                                                          db_session):
    _complete_launch(client, lms)
    assert len(registry_cache(app)) > 0
    before = _nonces(db_session)
    _elsewhere(app, update(Platform).values(status="disabled"))
    resp = lms.launch(client, role="teacher")
    assert resp.status_code == 403
    assert "not registered with Caseload" in resp.get_data(as_text=True)
    assert _nonces(db_session) == before  # a refused launch writes nothing


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_deployment_disabled_by_another_process_refuses_the_next_launch_although_it_was_cached(app, client, lms,
                                                                                            db_session):
    _complete_launch(client, lms)
    _elsewhere(app, update(Deployment).values(status="disabled"))
    resp = lms.launch(client, role="teacher")
    assert resp.status_code == 403
    assert "is disabled in Caseload" in resp.get_data(as_text=True)
    assert _nonces(db_session) == 1


def test_deployment_approved_by_another_process_is_accepted_at_its_next_launch(app, client, lms, db_session):
    _elsewhere(app, update(Deployment).values(status="pending"))
    assert lms.launch(client, role="teacher").status_code == 403  # pending rows are never cached
    _elsewhere(app, update(Deployment).values(status="active"))
    resp = lms.launch(client, role="teacher")
    assert resp.status_code == 303, resp.get_data(as_text=True)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_token_signed_with_the_old_key_is_refused_once_another_process_changed_the_keyset_url(app, client, lms):
    """The platform moved to a new key pair published at a new URL: the cached row still names the old URL, whose
    keys would verify the token. The nonce insert sees the changed row, and the launch is decided again from it."""
    _complete_launch(client, lms)
    moved = LtiTestPlatform().start()  # the same platform's new JWKS endpoint, with a new key
    try:
        _elsewhere(app, update(Platform).values(keyset_url=moved.jwks_url))
        login = lms.start_login(client)
        old_key_token = lms.sign(lms.claims(login["nonce"], role="teacher"))
        resp = client.post("/lti/launch", data={"id_token": old_key_token, "state": login["state"]})
        assert resp.status_code == 400
        assert "signed with a key the LMS does not publish" in resp.get_data(as_text=True)
        login = lms.start_login(client)
        new_key_token = moved.sign(lms.claims(login["nonce"], role="teacher"))
        resp = client.post("/lti/launch", data={"id_token": new_key_token, "state": login["state"]})
        assert resp.status_code == 303, resp.get_data(as_text=True)
    finally:
        moved.stop()


def test_second_registration_added_by_another_process_can_log_in_although_the_issuer_was_cached(app, client, lms,
                                                                                             db_session):
    _complete_launch(client, lms)
    plat = db_session.scalars(select(Platform)).one()
    with app.extensions["caseload.engine"].begin() as conn:
        conn.execute(Platform.__table__.insert().values(
            name="second", lms=plat.lms, issuer=plat.issuer, client_id="second-client",
            auth_login_url=plat.auth_login_url, auth_token_url=plat.auth_token_url, keyset_url=plat.keyset_url,
            status="active", settings={}))
    resp = client.get("/lti/login", query_string={
        "iss": lms.issuer, "login_hint": "hint", "target_link_uri": lms.tool_launch_url,
        "client_id": "second-client"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert "client_id=second-client" in resp.headers["Location"]


def test_replayed_id_token_is_still_refused_as_a_replay_with_the_registration_cached(app, client, lms, db_session):
    login = lms.start_login(client)
    token = lms.sign(lms.claims(login["nonce"], role="teacher"))
    first = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert first.status_code == 303
    assert len(registry_cache(app)) > 0
    again = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    assert _nonces(db_session) == 1


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_platform_changed_through_this_process_orm_empties_the_cache_at_commit(app, client, lms, db_session):
    _complete_launch(client, lms)
    cache = registry_cache(app)
    assert len(cache) > 0
    plat = db_session.scalars(select(Platform)).one()
    plat.auth_login_url = lms.issuer + "/auth-moved"
    db_session.flush()
    assert len(cache) > 0  # not before the change is committed: other requests may still read the old row
    db_session.commit()
    assert len(cache) == 0
    login = lms.start_login(client)  # the redirect follows at once
    assert login["client_id"] == lms.client_id


def test_bulk_update_of_deployments_through_the_orm_empties_the_cache_at_commit(app, client, lms, db_session):
    _complete_launch(client, lms)
    cache = registry_cache(app)
    db_session.execute(update(Deployment).values(status="disabled"))
    db_session.rollback()
    assert len(cache) > 0  # rolled back: nothing changed
    db_session.execute(update(Deployment).values(status="disabled"))
    db_session.commit()
    assert len(cache) == 0
