"""The Moodle companion plugin's events at POST /webhooks/moodle/<platform>: HMAC verification, each observed
event, and refusals."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.crypto import cipher
from lti_app.models import Enrollment, InboundEvent, Person
from lti_app.services.roster import inbox
from tests.support import factories as f
from tests.support.lms_events import MoodlePlugin

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
SECRET = "moodle-webhook-secret-for-tests-0123456789"


@pytest.fixture
def moodle() -> MoodlePlugin:
    return MoodlePlugin(secret=SECRET)


@pytest.fixture
def world(db_session: Any) -> dict[str, Any]:
    plat = f.platform(db_session, name="district-moodle", lms="moodle",
                      webhook_secret_encrypted=cipher().encrypt(SECRET))
    # Moodle's LTI context id is its course id, and ``sub`` is its user id (tests/fixtures/moodle-4.5).
    course = f.course(db_session, plat, "Geometry", lti_context_id="12")
    db_session.commit()
    return {"platform": plat, "course": course}


def rows(db_session: Any, sub: str) -> dict[str, str]:
    db_session.expire_all()
    person = db_session.scalars(select(Person).where(Person.lti_sub == sub)).one_or_none()
    if person is None:
        return {}
    return {e.role: e.state for e in db_session.scalars(select(Enrollment).where(Enrollment.person_id == person.id))}


def last_event(db_session: Any) -> InboundEvent:
    db_session.expire_all()
    return db_session.scalars(select(InboundEvent).order_by(InboundEvent.id.desc())).first()


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_enrolment_creates_the_person_and_enrollment(client, db_session, moodle, world):
    resp = moodle.post(client, "district-moodle", moodle.event("user_enrolment_created", course_id=12, user_id=34,
                                                               roles=["student"], when=at(0)))
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert rows(db_session, "34") == {"student": "active"}
    person = db_session.scalars(select(Person).where(Person.lti_sub == "34")).one()
    assert (person.name, person.email, person.sis_id, person.kind) == ("Rowan Example34", "user34@example.org",
                                                                       "S-34", "student")
    assert last_event(db_session).status == "applied"


def test_roles_suspension_unassignment_and_unenrolment(client, db_session, moodle, world):
    post = lambda payload: moodle.post(client, "district-moodle", payload)  # noqa: E731
    post(moodle.event("user_enrolment_created", course_id=12, user_id=40, roles=[], when=at(0)))
    assert rows(db_session, "40") == {}  # enrolled, no role yet: nothing to grant
    post(moodle.event("role_assigned", course_id=12, user_id=40, roles=["editingteacher"], role="editingteacher",
                      when=at(1)))
    assert rows(db_session, "40") == {"teacher": "active"}
    assert db_session.scalars(select(Person).where(Person.lti_sub == "40")).one().kind == "staff"
    post(moodle.event("role_assigned", course_id=12, user_id=40, roles=["editingteacher", "teacher"], role="teacher",
                      when=at(2)))
    assert rows(db_session, "40") == {"teacher": "active", "ta": "active"}
    post(moodle.event("user_enrolment_updated", course_id=12, user_id=40, roles=["editingteacher", "teacher"],
                      status="suspended", when=at(3)))
    assert rows(db_session, "40") == {"teacher": "inactive", "ta": "inactive"}
    post(moodle.event("user_enrolment_updated", course_id=12, user_id=40, roles=["editingteacher", "teacher"],
                      when=at(4)))
    assert rows(db_session, "40") == {"teacher": "active", "ta": "active"}
    post(moodle.event("role_unassigned", course_id=12, user_id=40, roles=["teacher"], role="editingteacher",
                      when=at(5)))
    assert rows(db_session, "40") == {"teacher": "deleted", "ta": "active"}
    post(moodle.event("user_enrolment_deleted", course_id=12, user_id=40, status="none", when=at(6)))
    assert rows(db_session, "40") == {"teacher": "deleted", "ta": "deleted"}


def test_unassignment_before_assignment_keeps_the_role_removed(client, db_session, moodle, world):
    moodle.post(client, "district-moodle", moodle.event("role_unassigned", course_id=12, user_id=41, roles=[],
                                                        role="student", when=at(2)))
    moodle.post(client, "district-moodle", moodle.event("role_assigned", course_id=12, user_id=41,
                                                        roles=["student"], role="student", when=at(1)))
    assert rows(db_session, "41") == {"student": "deleted"}


def test_user_updated_deleted_and_course_deleted(client, db_session, moodle, world):
    other = f.course(db_session, world["platform"], "Art", lti_context_id="13")
    db_session.commit()
    for course_id in (12, 13):
        moodle.post(client, "district-moodle", moodle.event("user_enrolment_created", course_id=course_id,
                                                            user_id=50, roles=["student"], when=at(0)))
    moodle.post(client, "district-moodle", moodle.event("user_updated", user_id=50, when=at(1),
                                                        user={"firstname": "Wren", "email": "wren@example.org"}))
    db_session.expire_all()
    person = db_session.scalars(select(Person).where(Person.lti_sub == "50")).one()
    assert (person.name, person.email) == ("Wren Example50", "wren@example.org")
    moodle.post(client, "district-moodle", moodle.event("course_deleted", course_id=13, when=at(2)))
    states = {e.course_id: e.state for e in db_session.scalars(select(Enrollment).where(
        Enrollment.person_id == person.id))}
    assert states == {world["course"].id: "active", other.id: "deleted"}
    moodle.post(client, "district-moodle", moodle.event("user_deleted", user_id=50, when=at(3)))
    db_session.expire_all()
    assert {e.state for e in db_session.scalars(select(Enrollment).where(Enrollment.person_id == person.id))} == \
        {"deleted"}


def test_unknown_course_waits_then_applies(client, db_session, moodle, world):
    moodle.post(client, "district-moodle", moodle.event("user_enrolment_created", course_id=99, user_id=60,
                                                        roles=["student"], when=at(0)))
    event = last_event(db_session)
    assert event.status == "waiting" and "Moodle course 99" in event.last_error
    f.course(db_session, world["platform"], "Latin", lti_context_id="99")
    db_session.commit()
    inbox.drain(db_session, now=event.next_attempt_at)
    assert rows(db_session, "60") == {"student": "active"}


def test_redelivery_of_the_same_event_uid_is_a_duplicate(client, db_session, moodle, world):
    payload = moodle.event("user_enrolment_created", course_id=12, user_id=70, roles=["student"], when=at(0),
                           uid="site1-0123456789abcdef")
    assert moodle.post(client, "district-moodle", payload).get_json()["status"] == "accepted"
    again = moodle.post(client, "district-moodle", payload)
    assert (again.status_code, again.get_json()["status"]) == (202, "duplicate")
    db_session.expire_all()
    assert len(list(db_session.scalars(select(InboundEvent)))) == 1


def test_unknown_moodle_events_are_ignored_and_recorded(client, db_session, moodle, world):
    payload = moodle.event("user_enrolment_created", course_id=12, user_id=71, roles=["student"])
    payload["event_name"] = "\\mod_forum\\event\\post_created"
    resp = moodle.post(client, "district-moodle", payload)
    assert (resp.status_code, resp.get_json()["status"]) == (202, "ignored")
    assert last_event(db_session).status == "ignored"


@pytest.mark.parametrize("case, status, words", [
    ("no_headers", 401, "headers are required"),
    ("wrong_secret", 401, "does not match"),
    ("old_timestamp", 401, "minutes from Caseload"),
    ("future_timestamp", 401, "minutes from Caseload"),
    ("tampered_body", 401, "does not match"),
    ("not_json", 400, "not valid JSON"),
    ("wrong_schema", 400, "caseload.moodle-event/1"),
    ("no_uid", 400, "event_uid"),
    ("bad_status", 400, "enrolment.status"),
    ("bad_roles", 400, "enrolment.roles"),
    ("nan_number", 400, "NaN or Infinity"),
    ("nul_character", 400, "NUL character"),
    ("lone_surrogate", 400, "not valid Unicode"),
    ("deeply_nested", 400, "not valid JSON"),
])
def test_refusals(client, db_session, moodle, world, case, status, words):
    payload = moodle.event("user_enrolment_created", course_id=12, user_id=80, roles=["student"])
    if case == "no_headers":
        resp = client.post("/webhooks/moodle/district-moodle", data=json.dumps(payload),
                           content_type="application/json")
    elif case == "wrong_secret":
        resp = moodle.post(client, "district-moodle", payload, secret="not-the-secret")
    elif case == "old_timestamp":
        resp = moodle.post(client, "district-moodle", payload, timestamp=int(time.time()) - 301)
    elif case == "future_timestamp":
        resp = moodle.post(client, "district-moodle", payload, timestamp=int(time.time()) + 301)
    elif case == "tampered_body":
        body = json.dumps(payload).encode()
        ts = str(int(time.time()))
        from integrations.signed_payloads import hmac_signature

        sig = hmac_signature(SECRET, ts, body)
        resp = client.post("/webhooks/moodle/district-moodle", data=body.replace(b"80", b"81"),
                           content_type="application/json",
                           headers={"X-Caseload-Timestamp": ts, "X-Caseload-Signature": sig})
    elif case == "not_json":
        resp = moodle.post(client, "district-moodle", b"{not json")
    elif case == "deeply_nested":  # deeper than Python's JSON parser recurses (RecursionError, not ValueError)
        resp = moodle.post(client, "district-moodle", b"[" * 50_000 + b"]" * 50_000)
    elif case in ("nan_number", "nul_character", "lone_surrogate"):
        # Valid for Python's JSON parser, signed correctly, but not storable in PostgreSQL's jsonb.
        payload["note"] = {"nan_number": float("nan"), "nul_character": "a\x00b",
                           "lone_surrogate": "a\ud800b"}[case]
        resp = moodle.post(client, "district-moodle", json.dumps(payload).encode())
    else:
        if case == "wrong_schema":
            payload["schema"] = "something/2"
        elif case == "no_uid":
            payload.pop("event_uid")
        elif case == "bad_status":
            payload["enrolment"]["status"] = "maybe"
        else:
            payload["enrolment"]["roles"] = "student"
        resp = moodle.post(client, "district-moodle", payload)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert words in resp.get_json()["reason"]
    db_session.expire_all()
    assert list(db_session.scalars(select(InboundEvent))) == []
    assert rows(db_session, "80") == {}


def test_signature_with_prefix_and_unknown_platform(client, db_session, moodle, world):
    payload = moodle.event("user_enrolment_created", course_id=12, user_id=81, roles=["student"])
    body = json.dumps(payload).encode()
    ts = str(int(time.time()))
    from integrations.signed_payloads import hmac_signature

    resp = moodle.post(client, "district-moodle", body, signature="sha256=" + hmac_signature(SECRET, ts, body),
                       timestamp=int(ts))
    assert resp.status_code == 202
    resp = moodle.post(client, "elsewhere", payload)
    assert resp.status_code == 404


def test_platform_webhooks_command_rotates_the_secret_and_prints_the_url(app, client, runner, db_session, moodle,
                                                                       world):
    from lti_app.cli import main

    result = runner.invoke(main, ["platform", "webhooks", "--name", "district-moodle", "--new-secret"])
    assert result.exit_code == 0, result.output
    assert "/webhooks/moodle/district-moodle" in result.output
    new_secret = result.output.split("shown once; set it in the Moodle plugin): ")[1].split()[0]
    app.extensions.get("caseload.webhook_platforms", {}).clear()  # the 10 s settings cache, for the test
    payload = moodle.event("user_enrolment_created", course_id=12, user_id=90, roles=["student"])
    assert moodle.post(client, "district-moodle", payload).status_code == 401  # the old secret no longer works
    assert moodle.post(client, "district-moodle", payload, secret=new_secret).status_code == 202
    result = runner.invoke(main, ["platform", "webhooks", "--name", "nowhere", "--new-secret"])
    assert result.exit_code != 0 and "No platform named 'nowhere'" in result.output


# ------------------------------------------------------------------------ the plugin's "Test connection" (#14)
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_signed_test_connection_answers_which_platform_it_matched_and_stores_nothing(client, db_session, moodle,
                                                                                     world):
    ping = {"schema": "caseload.moodle-ping/1", "site": "https://moodle.district.test", "sent_at": int(time.time())}
    resp = moodle.post(client, "district-moodle", ping)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert (body["status"], body["platform"], body["lms"]) == ("ok", "district-moodle", "moodle")
    assert "matched platform 'district-moodle'" in body["message"] and "moodle.district.test" in body["message"]
    assert last_event(db_session) is None
    # The same test with a wrong secret is refused in words an administrator can act on.
    wrong = moodle.post(client, "district-moodle", ping, secret="not-the-secret-of-this-platform-000")
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == "Event refused: the signature was not accepted"
    assert "check the webhook secret" in wrong.get_json()["reason"]


def test_webhook_refusals_never_read_like_a_page_for_people(client, db_session, moodle, world):
    """Refusals are read in Moodle's task log: the title says the event was refused, never "open Caseload from
    your course" (the title a person in a page gets for a 401)."""
    event = moodle.event("user_enrolment_created", course_id=12, user_id=34, roles=["student"], when=at(0))
    for resp in (moodle.post(client, "district-moodle", event, timestamp=int(time.time()) - 3600),
                 moodle.post(client, "nowhere", event), client.post("/webhooks/moodle/district-moodle", data=b"{}")):
        error = resp.get_json()["error"]
        assert error.startswith("Event refused") and "open Caseload" not in error, error
    world["platform"].status = "disabled"
    db_session.commit()
    client.application.extensions.pop("caseload.webhook_platforms", None)
    disabled = moodle.post(client, "district-moodle", event)
    assert disabled.status_code == 403 and "disabled" in disabled.get_json()["reason"]
