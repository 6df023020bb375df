"""The OIDC state is a signed value and the nonce is bound to it (docs/design-notes.md, "OIDC state without a
table"): nothing is stored for a login, and an id_token is accepted only with the login it was issued for."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lti_app.models import LaunchStateEntry, UsedNonce


@pytest.fixture
def app_config():
    return {"cookie_secure": False}


def _used_nonces(db_session) -> int:
    db_session.expire_all()
    return int(db_session.scalar(select(func.count()).select_from(UsedNonce)))


def test_login_writes_nothing_and_signs_the_state(client, lms, db_session):
    login = lms.start_login(client)
    assert db_session.scalar(select(func.count()).select_from(LaunchStateEntry)) == 0
    assert login["state"].count(".") == 3  # platform id . random . time . signature
    assert f"lti1p3-{login['state']}={login['state']}" in login["_set_cookie"]
    assert login["nonce"] != lms.start_login(client)["nonce"]  # a nonce per login


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_id_token_of_one_login_is_refused_with_the_state_of_another(client, lms, db_session):
    """Two logins in this browser (both state cookies present): each id_token only completes its own login."""
    first, second = lms.start_login(client), lms.start_login(client)
    token_for_first = lms.sign(lms.claims(first["nonce"]))
    crossed = client.post("/lti/launch", data={"id_token": token_for_first, "state": second["state"]})
    assert crossed.status_code == 400 and "nonce" in crossed.get_data(as_text=True)
    assert _used_nonces(db_session) == 0  # the refusal rolled the nonce row back
    ok = client.post("/lti/launch", data={"id_token": token_for_first, "state": first["state"]})
    assert ok.status_code == 303


def test_tampered_state_is_refused(client, lms, db_session):
    login = lms.start_login(client)
    platform_id, rest = login["state"].split(".", 1)
    forged = f"{int(platform_id) + 1}.{rest}"
    client.set_cookie(f"lti1p3-{forged}", forged)
    resp = client.post("/lti/launch", data={"id_token": lms.sign(lms.claims(login["nonce"])), "state": forged})
    assert resp.status_code == 400 and "state" in resp.get_data(as_text=True)
    assert _used_nonces(db_session) == 0


def test_expired_state_is_refused(client, lms, db_session, monkeypatch):
    import time

    login = lms.start_login(client)
    token = lms.sign(lms.claims(login["nonce"]))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 301)  # itsdangerous reads time.time()
    resp = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert resp.status_code == 400 and "five minutes" in resp.get_data(as_text=True)
    assert _used_nonces(db_session) == 0


def test_state_issued_for_another_registration_of_the_issuer_is_refused(client, lms, db_session):
    from lti_app.models import Deployment, Platform

    other = Platform(name="second-registration", lms="moodle", issuer=lms.issuer, client_id="second-client",
                     auth_login_url=lms.issuer + "/auth", auth_token_url=lms.issuer + "/token",
                     keyset_url=lms.jwks_url, status="active", settings={})
    db_session.add(other)
    db_session.flush()
    db_session.add(Deployment(platform_id=other.id, deployment_id=lms.deployment_id, status="active"))
    db_session.commit()
    login = lms.start_login(client)  # for lms.client_id
    token = lms.sign(lms.claims(login["nonce"], aud="second-client"))
    resp = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert resp.status_code == 400
    assert _used_nonces(db_session) == 0
