"""The full login -> launch flow through Caseload's real endpoints, with a test platform that signs its own
id_tokens and publishes its JWKS over HTTP."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest
from sqlalchemy import func, select

from lti_app.auth import read_token
from lti_app.models import Course, Deployment, Enrollment, Person, UsedNonce
from tests.support.lti_platform import CLAIM, LtiTestPlatform


@pytest.fixture
def app_config():
    return {"cookie_secure": False}


def _counts(db_session):
    db_session.expire_all()
    return tuple(db_session.scalar(select(func.count()).select_from(m)) for m in (Person, Course, Enrollment, UsedNonce))


def _viewer_from(resp, app):
    from urllib.parse import parse_qs, urlsplit

    token = parse_qs(urlsplit(resp.headers["Location"]).query)["t"][0]
    with app.test_request_context():
        return read_token(token)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_teacher_launch_lands_on_course_panel_and_records_roster(app, client, lms, db_session):
    resp = lms.launch(client, role="teacher")
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert resp.headers["Location"].startswith("/panels/course?t=")
    viewer = _viewer_from(resp, app)
    assert viewer.roles == ("teacher",)
    person = db_session.get(Person, viewer.person_id)
    assert person.lti_sub == "teacher-1" and person.kind == "staff"
    enrollment = db_session.scalars(select(Enrollment)).one()
    assert (enrollment.role, enrollment.state, enrollment.source) == ("teacher", "active", "launch")
    assert db_session.get(Course, viewer.course_id).title == "Algebra I"


def test_login_sets_partitioned_secure_state_cookie(app, client, lms):
    app.config["CASELOAD"] = type(app.config["CASELOAD"])(**{**app.config["CASELOAD"].__dict__, "cookie_secure": True})
    login = lms.start_login(client)
    cookie = login["_set_cookie"]
    assert "Secure" in cookie and "SameSite=None" in cookie and "Partitioned" in cookie and "HttpOnly" in cookie


def test_student_and_observer_get_the_staff_only_page_with_no_data(client, lms):
    for role in ("student", "observer"):
        resp = lms.launch(client, role=role, sub=f"{role}-1")
        assert resp.status_code == 200
        body = resp.get_data(as_text=True)
        assert "Caseload is for school staff" in body and "?t=" not in body


def test_admin_account_navigation_goes_to_admin(client, lms):
    resp = lms.launch(client, role="admin", context_id=None)
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/?t=")


def test_case_manager_grant_without_course_goes_to_casework(app, client, lms, db_session):
    from lti_app.models import Platform, RoleGrant
    from lti_app.services.roster import primitives as roster

    plat = db_session.scalars(select(Platform)).one()
    cm = roster.upsert_person(db_session, plat.id, "cm-1", kind="staff")
    db_session.add(RoleGrant(person_id=cm.id, role="case_manager"))
    db_session.commit()
    resp = lms.launch(client, role="teacher", sub="cm-1", context_id=None)
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/casework/?t=")


def test_jwks_is_fetched_once_per_cache_period(client, lms):
    for i in range(3):
        assert lms.launch(client, sub=f"t{i}").status_code == 303
    assert lms.jwks_fetches == 1


def test_jwks_stored_meanwhile_by_another_process_does_not_fail_the_launch(app, client, lms, monkeypatch):
    """Two web processes launching at once both find no cached JWKS, both fetch it, and both store it: the second
    store must update the row the first one wrote, not fail the launch with a duplicate key."""
    import requests
    from sqlalchemy import insert

    from lti_app.db import utcnow
    from lti_app.lti import adapter
    from lti_app.models import PlatformKeysetCache

    real_get = requests.get
    others: list[threading.Thread] = []

    def fetch_while_another_process_stores(url, *args, **kwargs):
        resp = real_get(url, *args, **kwargs)
        # The other process has just inserted the row and commits a moment later, after this one looked for it.
        other = app.extensions["caseload.engine"].connect()
        other.begin()
        other.execute(insert(PlatformKeysetCache).values(url=url, keys=resp.json(), fetched_at=utcnow()))

        def commit_soon() -> None:
            time.sleep(0.5)
            other.commit()
            other.close()

        others.append(threading.Thread(target=commit_soon))
        others[-1].start()
        return resp

    monkeypatch.setattr(adapter, "_PROCESS_KEYSETS", {})  # this process has not fetched it yet
    monkeypatch.setattr(adapter.requests, "get", fetch_while_another_process_stores)
    assert lms.launch(client).status_code == 303
    for t in others:
        t.join(5)
    assert lms.jwks_fetches == 1


def test_unknown_kid_refetches_jwks_once(client, lms):
    assert lms.launch(client).status_code == 303
    lms.rotate_key()
    assert lms.launch(client, sub="t2").status_code == 303
    assert lms.jwks_fetches == 2


def test_moodle_golden_claims_are_accepted(client, lms, db_session):
    import json

    from tests.support.recorded import MOODLE_4_5

    golden = json.loads((MOODLE_4_5 / "id_token_claims_student.json").read_text())
    login = lms.start_login(client)
    now = int(time.time())
    claims = {**golden, "iss": lms.issuer, "aud": lms.client_id, "nonce": login["nonce"], "iat": now, "exp": now + 60,
              CLAIM + "deployment_id": lms.deployment_id, CLAIM + "target_link_uri": lms.tool_launch_url,
              CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]}
    resp = client.post("/lti/launch", data={"id_token": lms.sign(claims), "state": login["state"]})
    assert resp.status_code == 303
    course = db_session.scalars(select(Course)).one()
    assert course.lti_context_id == "2" and course.nrps_url.endswith("/memberships")


# --- forged and broken launches: each refused with a readable 4xx, nothing written ----------------------------

def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _with_body(token: str, claims: dict) -> str:
    """``token`` with its payload replaced (so its signature no longer matches)."""
    header, _, signature = token.split(".")
    return ".".join([header, _b64url(json.dumps(claims).encode()), signature])


def _forge(lms, client, case):
    login = lms.start_login(client)
    nonce, state = login["nonce"], login["state"]
    c = lms.claims
    other = LtiTestPlatform()
    from tests.support.lti_platform import new_rsa_key

    _, foreign_pem, _ = new_rsa_key()
    cases = {
        "bad_signature": lambda: lms.sign(c(nonce), key_pem=foreign_pem),
        "alg_none": lambda: lms.sign(c(nonce), alg="none"),
        "alg_hs256": lambda: lms.sign(c(nonce), alg="HS256"),
        "expired": lambda: lms.sign(c(nonce, exp=int(time.time()) - 120, iat=int(time.time()) - 180)),
        "issued_in_future": lambda: lms.sign(c(nonce, iat=int(time.time()) + 600, exp=int(time.time()) + 660)),
        "wrong_audience": lambda: lms.sign(c(nonce, aud="someone-else")),
        "several_audiences_no_azp": lambda: lms.sign(c(nonce, aud=[lms.client_id, "other"])),
        "several_audiences_wrong_azp": lambda: lms.sign(c(nonce, aud=[lms.client_id, "other"], azp="other")),
        "unknown_issuer": lambda: lms.sign(c(nonce, iss="https://evil.example.test")),
        "unknown_deployment": lambda: lms.sign(c(nonce, **{CLAIM + "deployment_id": "999"})),
        "missing_sub": lambda: lms.sign(c(nonce, sub=None)),
        "missing_nonce": lambda: lms.sign(c(nonce, **{"nonce": None})),
        "wrong_nonce": lambda: lms.sign(c("not-the-login-nonce")),
        "wrong_version": lambda: lms.sign(c(nonce, **{CLAIM + "version": "1.1"})),
        "deep_linking_message": lambda: lms.sign(c(nonce, **{CLAIM + "message_type": "LtiDeepLinkingRequest"})),
        "wrong_target_link_uri": lambda: lms.sign(c(nonce, **{CLAIM + "target_link_uri": "https://evil.test/launch"})),
        "missing_roles": lambda: lms.sign(c(nonce, **{CLAIM + "roles": None})),
        "not_a_jwt": lambda: "not.a.jwt.at.all",
        "garbage_token": lambda: "abc",
        # Claims of the wrong JSON type: refused before anything reads them (they were 500s).
        "aud_a_number": lambda: _with_body(lms.sign(c(nonce)), c(nonce, aud=5)),
        "resource_link_not_an_object": lambda: lms.sign(c(nonce, **{CLAIM + "resource_link": ["rl-1"]})),
        "roles_a_string": lambda: lms.sign(c(nonce, **{CLAIM + "roles": "Instructor"})),
        "exp_far_away": lambda: lms.sign(c(nonce, exp=int(time.time()) + 10**12)),
        # A header nested deeper than Python's JSON parser recurses (it raises RecursionError, not ValueError).
        "deeply_nested_header": lambda: ".".join([_b64url(b"[" * 50_000 + b"]" * 50_000),
                                                  lms.sign(c(nonce)).split(".", 1)[1]]),
        "unknown_kid": lambda: lms.sign(c(nonce), kid="nope", key_pem=foreign_pem),
    }
    del other
    if case == "missing_state":
        return client.post("/lti/launch", data={"id_token": lms.sign(c(nonce))})
    if case == "wrong_state":
        return client.post("/lti/launch", data={"id_token": lms.sign(c(nonce)), "state": "state-forged"})
    if case == "missing_id_token":
        return client.post("/lti/launch", data={"state": state})
    return client.post("/lti/launch", data={"id_token": cases[case](), "state": state})


FORGED = ["bad_signature", "alg_none", "alg_hs256", "expired", "issued_in_future", "wrong_audience",
          "several_audiences_no_azp", "several_audiences_wrong_azp", "unknown_issuer", "unknown_deployment",
          "missing_sub", "missing_nonce", "wrong_nonce", "wrong_version", "deep_linking_message",
          "wrong_target_link_uri", "missing_roles", "not_a_jwt", "garbage_token", "deeply_nested_header",
          "aud_a_number", "resource_link_not_an_object", "roles_a_string", "exp_far_away",
          "unknown_kid", "missing_state", "wrong_state", "missing_id_token"]


@pytest.mark.parametrize("case", FORGED)
def test_forged_launch_is_refused_readably_and_writes_nothing(client, lms, db_session, case):
    before = _counts(db_session)
    resp = _forge(lms, client, case)
    body = resp.get_data(as_text=True)
    assert 400 <= resp.status_code < 500, (case, resp.status_code, body[:300])
    assert "reference" in body and "Traceback" not in body
    assert _counts(db_session) == before


def test_replayed_id_token_is_refused_even_in_the_same_browser(client, lms, db_session):
    login = lms.start_login(client)
    token = lms.sign(lms.claims(login["nonce"]))
    first = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert first.status_code == 303
    before = _counts(db_session)
    again = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert again.status_code == 400  # the state is single-use too
    # Replaying the same id_token behind a fresh login state is caught by the single-use nonce.
    fresh = lms.start_login(client)
    replay = client.post("/lti/launch", data={"id_token": token, "state": fresh["state"]})
    assert replay.status_code == 400 and "already used" in replay.get_data(as_text=True)
    assert _counts(db_session) == before


def test_unknown_deployment_is_recorded_pending_then_accepted_after_approval(client, lms, db_session):
    resp = _forge(lms, client, "unknown_deployment")
    assert resp.status_code == 403 and "waiting for an administrator" in resp.get_data(as_text=True)
    db_session.expire_all()
    dep = db_session.scalars(select(Deployment).where(Deployment.deployment_id == "999")).one()
    assert dep.status == "pending"
    dep.status = "active"
    db_session.commit()
    resp = lms.launch(client, **{CLAIM + "deployment_id": "999"})
    assert resp.status_code == 303


def test_login_from_unknown_issuer_is_refused(client, lms):
    resp = client.get("/lti/login", query_string={"iss": "https://unknown.test", "login_hint": "x",
                                                  "target_link_uri": lms.tool_launch_url})
    assert resp.status_code == 403 and "not registered" in resp.get_data(as_text=True)


def test_login_with_foreign_target_link_uri_is_refused(client, lms):
    resp = client.get("/lti/login", query_string={"iss": lms.issuer, "login_hint": "x", "client_id": lms.client_id,
                                                  "target_link_uri": "https://evil.test/launch"})
    assert resp.status_code == 400


def test_jwks_serves_current_and_next_keys(client):
    keys = client.get("/lti/jwks").get_json()["keys"]
    assert len(keys) == 2 and all(k["alg"] == "RS256" and k["kid"] for k in keys)
    assert client.get("/.well-known/jwks.json").get_json()["keys"] == keys


# --- LTI platform storage (lti_storage_target) when the browser drops the state cookie ---------------------------

def test_login_with_storage_target_stores_state_in_the_platform_then_continues(client, lms):
    resp = client.get("/lti/login", query_string={
        "iss": lms.issuer, "login_hint": "x", "target_link_uri": lms.tool_launch_url, "client_id": lms.client_id,
        "lti_deployment_id": lms.deployment_id, "lti_storage_target": "_parent"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'data-mode="put"' in html and "lti_storage.js" in html
    assert 'data-origins="https://lms.example.test"' in html  # the platform's known origins (no Referer sent)


def _cookieless_launch(client, lms):
    login = lms.start_login(client, lti_storage_target="_parent")
    client._cookies.clear()  # the browser dropped the tool's third-party cookie
    token = lms.sign(lms.claims(login["nonce"]))
    return login, token


def test_cookieless_launch_checks_state_in_platform_storage_then_lands(client, lms, db_session):
    login, token = _cookieless_launch(client, lms)
    before = _counts(db_session)
    check = client.post("/lti/launch", data={"id_token": token, "state": login["state"], "lti_storage_target": "_parent"})
    html = check.get_data(as_text=True)
    assert check.status_code == 200 and 'data-mode="check"' in html and 'name="platform_storage_checked"' in html
    assert _counts(db_session) == before  # nothing written before the state is confirmed
    confirmed = client.post("/lti/launch", headers={"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:5000"},
                            data={"id_token": token, "state": login["state"], "lti_storage_target": "_parent",
                                  "platform_storage_checked": "1"})
    # No cookie came back, so the page token is bound through platform storage: the launch page puts the binding
    # secret in the LMS's storage and opens the first page with it in the POST body (never in a URL).
    page = confirmed.get_data(as_text=True)
    assert confirmed.status_code == 200 and 'data-mode="put"' in page
    assert 'action="/panels/course?_caseload_replay=get"' in page


def test_cross_site_platform_storage_confirmation_is_refused(client, lms, db_session):
    login, token = _cookieless_launch(client, lms)
    before = _counts(db_session)
    forged = client.post("/lti/launch", headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example.test"},
                         data={"id_token": token, "state": login["state"], "lti_storage_target": "_parent",
                               "platform_storage_checked": "1"})
    assert forged.status_code == 400
    assert _counts(db_session) == before


def test_cookieless_launch_without_platform_storage_is_refused_readably(client, lms):
    login, token = _cookieless_launch(client, lms)
    resp = client.post("/lti/launch", data={"id_token": token, "state": login["state"]})
    assert resp.status_code == 400 and "new tab" in resp.get_data(as_text=True)
