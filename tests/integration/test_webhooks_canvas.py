"""Canvas Live Events at POST /webhooks/canvas/<platform>: every handled event type, duplicates (also in parallel),
out-of-order delivery, waiting for unknown courses and users, and every kind of bad input."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from typing import Any

import jwt
import pytest
from sqlalchemy import create_engine, func, select

from lti_app.models import Course, Enrollment, InboundEvent, Person, Section
from lti_app.services.roster import inbox
from tests.support import factories as f
from tests.support.lms_events import CanvasLiveEvents, gid
from tests.support.lti_platform import new_rsa_key

T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


@pytest.fixture
def canvas() -> Any:
    sender = CanvasLiveEvents().start()
    yield sender
    sender.stop()


@pytest.fixture
def world(db_session: Any, canvas: CanvasLiveEvents) -> dict[str, Any]:
    plat = f.platform(db_session, name="district-canvas", lms="canvas", live_events_keyset_url=canvas.keyset_url,
                      canvas_root_account_uuid=canvas.root_account_uuid)
    course = f.course(db_session, plat, "Biology 9", lms_course_id="565")
    section = f.section(db_session, course, "4811", "Period 2")
    teacher = f.person(db_session, plat, "Tamsin Vale", kind="staff", lms_user_id="20064")
    student = f.person(db_session, plat, "Orrin Pell", lms_user_id="30071")
    db_session.commit()
    return {"platform": plat, "course": course, "section": section, "teacher": teacher, "student": student}


def post(client: Any, canvas: CanvasLiveEvents, payload: dict[str, Any], platform: str = "district-canvas") -> Any:
    return client.post(f"/webhooks/canvas/{platform}", data=canvas.sign(payload), content_type="application/jwt")


def enrollments(db_session: Any, person: Person) -> list[Enrollment]:
    db_session.expire_all()
    return list(db_session.scalars(select(Enrollment).where(Enrollment.person_id == person.id)
                                   .order_by(Enrollment.id)))


def events(db_session: Any) -> list[InboundEvent]:
    db_session.expire_all()
    return list(db_session.scalars(select(InboundEvent).order_by(InboundEvent.id)))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_enrollment_created_is_stored_acknowledged_and_applied(client, db_session, canvas, world):
    payload = canvas.enrollment("enrollment_created", enrollment_id=9001, course_id=565, user_id=30071,
                                section_id=4811, when=T0)
    resp = post(client, canvas, payload)
    assert resp.status_code == 202, resp.get_data(as_text=True)
    assert resp.get_json()["status"] == "accepted"
    [row] = enrollments(db_session, world["student"])
    assert (row.role, row.state, row.source, row.section_id) == ("student", "active", "webhook", world["section"].id)
    assert row.lms_enrollment_id == "9001"
    assert row.source_time == T0.replace(microsecond=0)
    [event] = events(db_session)
    assert (event.status, event.event_type, event.attempts) == ("applied", "enrollment_created", 1)


def test_teacher_enrollment_makes_staff_and_states_map(client, db_session, canvas, world):
    new_teacher = f.person(db_session, world["platform"], "Ilse Marr", lms_user_id="20099")
    db_session.commit()
    post(client, canvas, canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=20099,
                                           section_id=4811, role="TeacherEnrollment", when=T0))
    [row] = enrollments(db_session, new_teacher)
    assert (row.role, row.state) == ("teacher", "active")
    db_session.refresh(new_teacher)
    assert new_teacher.kind == "staff"
    for i, (state, expected) in enumerate([("completed", "inactive"), ("active", "active"), ("inactive", "inactive"),
                                           ("invited", "inactive"), ("deleted", "deleted")], start=1):
        post(client, canvas, canvas.enrollment("enrollment_updated", enrollment_id=1, course_id=565, user_id=20099,
                                               section_id=4811, role="TeacherEnrollment", state=state,
                                               when=T0 + dt.timedelta(minutes=i)))
        [row] = enrollments(db_session, new_teacher)
        assert row.state == expected, state


def test_every_role_type_maps_and_the_test_student_is_ignored(client, db_session, canvas, world):
    plat = world["platform"]
    people = {kind: f.person(db_session, plat, f"{kind} Person", lms_user_id=str(40000 + i))
              for i, kind in enumerate(["TaEnrollment", "ObserverEnrollment", "DesignerEnrollment",
                                        "StudentViewEnrollment"])}
    db_session.commit()
    for i, (kind, person) in enumerate(people.items()):
        resp = post(client, canvas, canvas.enrollment("enrollment_created", enrollment_id=500 + i, course_id=565,
                                                      user_id=int(person.lms_user_id), section_id=4811, role=kind,
                                                      when=T0))
        assert resp.status_code == 202
    assert [e.role for e in enrollments(db_session, people["TaEnrollment"])] == ["ta"]
    assert [e.role for e in enrollments(db_session, people["ObserverEnrollment"])] == ["observer"]
    assert [e.role for e in enrollments(db_session, people["DesignerEnrollment"])] == ["designer"]
    assert enrollments(db_session, people["StudentViewEnrollment"]) == []
    assert events(db_session)[-1].status == "ignored"


def test_enrollment_state_event_changes_the_enrollment_it_names(client, db_session, canvas, world):
    post(client, canvas, canvas.enrollment("enrollment_created", enrollment_id=77, course_id=565, user_id=30071,
                                           section_id=4811, when=T0))
    state_event = canvas.event("enrollment_state_updated", {
        "enrollment_id": gid(77), "state": "inactive", "state_is_current": True, "restricted_access": False,
        "access_is_current": True, "state_valid_until": None}, T0 + dt.timedelta(minutes=5))
    assert post(client, canvas, state_event).status_code == 202
    [row] = enrollments(db_session, world["student"])
    assert row.state == "inactive"
    # An enrollment nobody told Caseload about waits rather than being lost.
    unknown = canvas.event("enrollment_state_created", {"enrollment_id": gid(78), "state": "active"}, T0)
    post(client, canvas, unknown)
    assert events(db_session)[-1].status == "waiting"
    assert "enrollment 78" in events(db_session)[-1].last_error


def test_user_events_update_names_and_a_deleted_user_loses_every_enrollment(client, db_session, canvas, world):
    f.enroll(db_session, world["student"], world["course"], sec=world["section"], when=T0 - dt.timedelta(days=1))
    db_session.commit()
    post(client, canvas, canvas.event("user_updated", {"user_id": gid(30071), "name": "Orrin Pell-Ashby",
                                                        "short_name": "Orrin", "workflow_state": "registered",
                                                        "user_sis_id": "S-3007"}, T0))
    db_session.expire_all()
    student = db_session.get(Person, world["student"].id)
    assert (student.name, student.sis_id) == ("Orrin Pell-Ashby", "S-3007")
    post(client, canvas, canvas.event("user_updated", {"user_id": gid(30071), "name": "Orrin Pell-Ashby",
                                                        "workflow_state": "deleted"}, T0 + dt.timedelta(minutes=1)))
    assert [e.state for e in enrollments(db_session, world["student"])] == ["deleted"]
    # A user Caseload has never seen: nothing to update, recorded as applied (no roster effect).
    post(client, canvas, canvas.event("user_created", {"user_id": gid(99999), "name": "New Person",
                                                        "workflow_state": "registered"}, T0))
    assert events(db_session)[-1].status == "applied"
    assert db_session.scalar(select(func.count()).select_from(Person)) == 2


def test_section_events_create_rename_and_end_a_section(client, db_session, canvas, world):
    post(client, canvas, canvas.event("course_section_created", {
        "course_section_id": gid(4900), "course_id": gid(565), "name": "Period 5", "sis_source_id": "BIO9-05",
        "workflow_state": "active"}, T0))
    db_session.expire_all()
    section = db_session.scalars(select(Section).where(Section.lms_section_id == "4900")).one()
    assert (section.name, section.sis_id) == ("Period 5", "BIO9-05")
    f.enroll(db_session, world["student"], world["course"], sec=section, when=T0)
    db_session.commit()
    post(client, canvas, canvas.event("course_section_updated", {
        "course_section_id": gid(4900), "course_id": gid(565), "name": "Period 5 (moved)",
        "workflow_state": "deleted"}, T0 + dt.timedelta(minutes=2)))
    db_session.expire_all()
    assert db_session.get(Section, section.id).name == "Period 5 (moved)"
    assert [e.state for e in enrollments(db_session, world["student"])] == ["deleted"]


def test_course_events_rename_and_conclude_or_delete_a_course(client, db_session, canvas, world):
    f.enroll(db_session, world["student"], world["course"], sec=world["section"], when=T0)
    f.enroll(db_session, world["teacher"], world["course"], role="teacher", sec=world["section"], when=T0)
    db_session.commit()
    post(client, canvas, canvas.event("course_updated", {"course_id": gid(565), "name": "Biology 9 (Honors)",
                                                          "workflow_state": "available"}, T0 + dt.timedelta(minutes=1)))
    db_session.expire_all()
    assert db_session.get(Course, world["course"].id).title == "Biology 9 (Honors)"
    post(client, canvas, canvas.event("course_updated", {"course_id": gid(565), "workflow_state": "completed"},
                                      T0 + dt.timedelta(minutes=2)))
    assert {e.state for e in enrollments(db_session, world["teacher"])} == {"inactive"}
    post(client, canvas, canvas.event("course_updated", {"course_id": gid(565), "workflow_state": "deleted"},
                                      T0 + dt.timedelta(minutes=3)))
    assert {e.state for e in enrollments(db_session, world["student"])} == {"deleted"}
    # A course nobody launched Caseload in: applied, nothing stored about it.
    post(client, canvas, canvas.event("course_created", {"course_id": gid(777), "name": "Elsewhere",
                                                          "workflow_state": "claimed"}, T0))
    assert events(db_session)[-1].status == "applied"


def test_redelivery_is_a_no_op(client, db_session, canvas, world):
    payload = canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071,
                                section_id=4811, when=T0)
    assert post(client, canvas, payload).get_json()["status"] == "accepted"
    # Canvas signs again on redelivery; the key is derived from the event, not the signature or request id.
    payload["metadata"]["request_id"] = "another-request"
    second = post(client, canvas, payload)
    assert (second.status_code, second.get_json()["status"]) == (202, "duplicate")
    assert len(events(db_session)) == 1
    assert len(enrollments(db_session, world["student"])) == 1


def test_parallel_duplicates_are_stored_and_applied_exactly_once(app, db_session, canvas, world):
    payload = canvas.enrollment("enrollment_created", enrollment_id=5, course_id=565, user_id=30071,
                                section_id=4811, when=T0)
    token = canvas.sign(payload)
    statuses: list[str] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        client = app.test_client()
        barrier.wait()
        resp = client.post("/webhooks/canvas/district-canvas", data=token, content_type="application/jwt")
        statuses.append(f"{resp.status_code} {resp.get_json()['status']}")

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == ["202 accepted"] + ["202 duplicate"] * 7
    [event] = events(db_session)
    assert (event.status, event.attempts) == ("applied", 1)
    assert len(enrollments(db_session, world["student"])) == 1


def test_delete_before_create_leaves_the_enrollment_deleted(client, db_session, canvas, world):
    created = canvas.enrollment("enrollment_created", enrollment_id=8, course_id=565, user_id=30071,
                                section_id=4811, when=T0)
    deleted = canvas.enrollment("enrollment_updated", enrollment_id=8, course_id=565, user_id=30071,
                                section_id=4811, state="deleted", when=T0 + dt.timedelta(seconds=30))
    post(client, canvas, deleted)
    post(client, canvas, created)
    [row] = enrollments(db_session, world["student"])
    assert row.state == "deleted"
    assert row.source_time == T0 + dt.timedelta(seconds=30)
    assert [e.status for e in events(db_session)] == ["applied", "applied"]


def test_event_for_an_unknown_course_waits_and_applies_once_the_course_appears(app, client, db_session, canvas,
                                                                               world):
    payload = canvas.enrollment("enrollment_created", enrollment_id=12, course_id=888, user_id=30071,
                                section_id=9100, when=T0)
    assert post(client, canvas, payload).status_code == 202
    [event] = events(db_session)
    assert (event.status, event.attempts) == ("waiting", 1)
    assert "Canvas course 888 is not known" in event.last_error
    assert event.next_attempt_at > event.received_at
    # Not due yet: draining now changes nothing.
    assert inbox.drain(db_session).total == 0
    # The course becomes known (a teacher launches Caseload in it), and the retry applies the event.
    f.course(db_session, world["platform"], "Chemistry 10", lms_course_id="888")
    db_session.commit()
    result = inbox.drain(db_session, now=event.next_attempt_at + dt.timedelta(seconds=1))
    assert result.applied == 1
    [row] = enrollments(db_session, world["student"])
    assert row.state == "active"
    assert events(db_session)[0].status == "applied"


def test_event_for_an_unknown_user_asks_for_a_roster_sync_and_parks_after_bounded_attempts(
        app, client, db_session, canvas, world, monkeypatch):
    requested: list[tuple[int, str]] = []
    monkeypatch.setattr("lti_app.services.roster.reconcile.request_course_sync",
                        lambda course_id, trigger="launch": requested.append((course_id, trigger)))
    world["course"].nrps_url = "https://canvas.example.test/api/lti/courses/565/names_and_roles"
    db_session.commit()
    post(client, canvas, canvas.enrollment("enrollment_created", enrollment_id=13, course_id=565, user_id=55555,
                                           section_id=4811, when=T0))
    assert requested == [(world["course"].id, "webhook")]
    [event] = events(db_session)
    assert event.status == "waiting" and "Canvas user 55555" in event.last_error
    attempts = app.config["CASELOAD"].inbox_max_attempts
    moment = dt.datetime.now(dt.UTC)
    for _ in range(attempts):
        moment += dt.timedelta(hours=2)
        inbox.drain(db_session, now=moment)
    [event] = events(db_session)
    assert (event.status, event.attempts) == ("failed", attempts)
    # The administrator's retry puts it back; once the user is known it applies.
    f.person(db_session, world["platform"], "Late Arrival", lms_user_id="55555")
    db_session.commit()
    assert inbox.retry_event(db_session, event.id)
    assert inbox.drain(db_session).applied == 1


def test_access_follows_a_pushed_removal(client, db_session, canvas, world):
    """A teacher's access to a student ends the moment Canvas says the student left the section."""
    from lti_app.auth import Viewer
    from lti_app.domain.access import Action
    from lti_app.models import Student, StudentLink
    from lti_app.services.access import policy as access

    course, section = world["course"], world["section"]
    f.enroll(db_session, world["teacher"], course, role="teacher", sec=section, when=T0)
    record = Student(given_name="Orrin", family_name="Pell", sis_id="S-3007")
    db_session.add(record)
    db_session.flush()
    db_session.add(StudentLink(student_id=record.id, person_id=world["student"].id))
    db_session.commit()
    post(client, canvas, canvas.enrollment("enrollment_created", enrollment_id=21, course_id=565, user_id=30071,
                                           section_id=4811, when=T0))
    viewer = Viewer(person_id=world["teacher"].id, platform_id=world["platform"].id, course_id=course.id,
                    roles=("teacher",))
    db_session.expire_all()
    assert access.check(db_session, viewer, record.id, Action.VIEW_RECORD, "test").allowed
    post(client, canvas, canvas.enrollment("enrollment_updated", enrollment_id=21, course_id=565, user_id=30071,
                                           section_id=4811, state="deleted", when=T0 + dt.timedelta(minutes=1)))
    db_session.expire_all()
    assert not access.check(db_session, viewer, record.id, Action.VIEW_RECORD, "test").allowed


# ---------------------------------------------------------------------------------------------------------------
# Bad input: a reason, nothing stored
# ---------------------------------------------------------------------------------------------------------------

def _refused(resp: Any, status: int, words: str, db_session: Any) -> None:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert words in body["reason"], body
    assert events(db_session) == []


def test_a_header_nested_too_deep_to_parse_is_refused(client, db_session, canvas, world):
    token = canvas.sign(canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071,
                                          section_id=4811))
    header = base64.urlsafe_b64encode(b"[" * 50_000 + b"]" * 50_000).rstrip(b"=").decode()
    forged = ".".join([header, *token.split(".")[1:]])
    _refused(client.post("/webhooks/canvas/district-canvas", data=forged), 401, "not a signed JWT", db_session)


def test_unsigned_json_is_refused(client, db_session, canvas, world):
    payload = canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071, section_id=4811)
    resp = client.post("/webhooks/canvas/district-canvas", data=json.dumps(payload), content_type="application/json")
    _refused(resp, 401, "Sign Payload", db_session)


@pytest.mark.parametrize("case", ["other_key", "unknown_kid", "hs256", "none", "garbage", "expired", "tampered"])
def test_forged_signatures_are_refused(client, db_session, canvas, world, case):
    payload = canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071, section_id=4811)
    if case == "other_key":
        _, pem, _ = new_rsa_key()
        token = canvas.sign(payload, key_pem=pem)
        words = "does not verify"
    elif case == "unknown_kid":
        _, pem, _ = new_rsa_key()
        token = canvas.sign(payload, key_pem=pem, kid="made-up-kid")
        words = "kid"
    elif case == "hs256":
        token = jwt.encode(payload, "shared-secret-guess-long-enough-0123456789", algorithm="HS256",
                           headers={"kid": canvas.keys[0][1]["kid"]})
        words = "not accepted"
    elif case == "none":
        token = jwt.encode(payload, None, algorithm="none")
        words = "not accepted"
    elif case == "garbage":
        token = "not.a.jwt"
        words = "not a signed JWT"
    elif case == "expired":
        token = canvas.sign({**payload, "exp": int(dt.datetime.now(dt.UTC).timestamp()) - 3600})
        words = "expired"
    else:
        good = canvas.sign(payload)
        head, _, sig = good.split(".")
        other = canvas.sign({**payload, "body": {**payload["body"], "user_id": gid(20064)}})
        token = f"{head}.{other.split('.')[1]}.{sig}"
        words = "does not verify"
    resp = client.post("/webhooks/canvas/district-canvas", data=token, content_type="application/jwt")
    _refused(resp, 401, words, db_session)


def test_unknown_platform_wrong_family_and_missing_keyset_are_refused(client, db_session, canvas, world):
    token = canvas.sign(canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071,
                                          section_id=4811))
    resp = client.post("/webhooks/canvas/nowhere", data=token, content_type="application/jwt")
    _refused(resp, 404, "No platform named 'nowhere'", db_session)
    f.platform(db_session, name="district-moodle", lms="moodle")
    f.platform(db_session, name="canvas-no-keys", lms="canvas")
    db_session.commit()
    _refused(client.post("/webhooks/canvas/district-moodle", data=token), 404, "not registered as a Canvas",
             db_session)
    _refused(client.post("/webhooks/canvas/canvas-no-keys", data=token), 409, "live-events-keyset-url", db_session)
    world["platform"].status = "disabled"
    db_session.commit()
    _refused(client.post("/webhooks/canvas/district-canvas", data=token), 403, "disabled", db_session)


@pytest.mark.parametrize("mutate, words", [
    (lambda p: p["metadata"].pop("event_time"), "no event time"),
    (lambda p: p["metadata"].update(event_time="yesterday"), "ISO 8601"),
    (lambda p: p["metadata"].update(event_time="1999-01-01T00:00:00Z"), "too far"),
    (lambda p: p.pop("body"), "no body"),
    (lambda p: p["body"].update(type="PrincipalEnrollment"), "enrollment type"),
    (lambda p: p["body"].update(workflow_state="sideways"), "workflow_state"),
    (lambda p: p["body"].update(user_id="abc"), "not a Canvas id"),
    (lambda p: p["body"].update(user_id=None), "no user_id"),
    (lambda p: p["metadata"].update(event_name="Enrollment Created!"), "event_name"),
    (lambda p: p["body"].update(user_name="Orrin\x00Pell"), "NUL character"),
])
def test_malformed_events_are_refused_with_a_reason(client, db_session, canvas, world, mutate, words):
    payload = canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071, section_id=4811)
    mutate(payload)
    _refused(post(client, canvas, payload), 400, words, db_session)


def test_oversized_body_is_refused(client, db_session, canvas, world):
    resp = client.post("/webhooks/canvas/district-canvas", data=b"x" * 1_000_001, content_type="application/jwt")
    _refused(resp, 413, "larger than", db_session)


def test_unknown_event_types_are_acknowledged_recorded_and_ignored(client, db_session, canvas, world):
    resp = post(client, canvas, canvas.event("submission_created", {"submission_id": gid(1)}, T0))
    assert resp.status_code == 202
    assert resp.get_json()["status"] == "ignored"
    [event] = events(db_session)
    assert (event.status, event.event_type) == ("ignored", "submission_created")
    assert "does not use" in event.last_error


def test_key_set_is_fetched_once_per_cache_period_and_again_on_rotation(app, client, db_session, canvas, world):
    from integrations.signed_payloads import KeysetVerifier

    clock = [1000.0]
    app.extensions["caseload.keyset_verifier"] = KeysetVerifier(cache_seconds=600, clock=lambda: clock[0])
    for i in range(3):
        post(client, canvas, canvas.enrollment("enrollment_created", enrollment_id=100 + i, course_id=565,
                                               user_id=30071, section_id=4811, when=T0 + dt.timedelta(seconds=i)))
    assert canvas.fetches == 1
    canvas.rotate()
    clock[0] += 10  # a new kid refetches the set (at most once every few seconds)
    resp = post(client, canvas, canvas.enrollment("enrollment_updated", enrollment_id=100, course_id=565,
                                                  user_id=30071, section_id=4811, when=T0 + dt.timedelta(minutes=1)))
    assert resp.status_code == 202
    assert canvas.fetches == 2
    clock[0] += 601  # and the cache period ends
    post(client, canvas, canvas.enrollment("enrollment_updated", enrollment_id=101, course_id=565, user_id=30071,
                                           section_id=4811, when=T0 + dt.timedelta(minutes=2)))
    assert canvas.fetches == 3


@pytest.mark.parametrize("settings_cached", [False, True], ids=["platform-lookup", "store"])
def test_database_unavailable_answers_503_so_canvas_retries(app, client, db_session, canvas, world, settings_cached):
    if settings_cached:  # the platform's settings are cached: the failure comes when the event is stored
        assert post(client, canvas, canvas.enrollment("enrollment_created", enrollment_id=2, course_id=565,
                                                      user_id=30071, section_id=4811)).status_code == 202
    stored_before = len(events(db_session))
    broken = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    working = app.extensions["caseload.engine"]
    app.extensions["caseload.sessionmaker"].configure(bind=broken)
    app.extensions["caseload.engine"] = broken
    try:
        resp = post(client, canvas, canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565,
                                                      user_id=30071, section_id=4811))
    finally:
        app.extensions["caseload.engine"] = working
        app.extensions["caseload.sessionmaker"].configure(bind=working)
        broken.dispose()
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert len(events(db_session)) == stored_before


# ------------------------------------------------------------------------------ root account and freshness (#14)
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_a_signed_event_from_another_canvas_root_account_is_refused(client, db_session, canvas, world):
    """Instructure-hosted Canvas instances may share the signing key set: the signature verifies, but the event
    names another district's root account, so nothing is stored."""
    payload = canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071, section_id=4811)
    payload["metadata"]["root_account_uuid"] = "OtherDistrictRootAccount0000000000000000"
    _refused(post(client, canvas, payload), 403, "another Canvas root account", db_session)
    assert client.post("/webhooks/canvas/district-canvas", data=canvas.sign(payload)).get_json()["error"].startswith(
        "Event refused")
    payload["metadata"].pop("root_account_uuid")
    _refused(post(client, canvas, payload), 403, "names no Canvas root account", db_session)


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_events_wait_for_the_root_account_to_be_known_then_are_accepted(client, db_session, canvas, world):
    world["platform"].canvas_root_account_uuid = None
    db_session.commit()
    payload = canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071, section_id=4811)
    _refused(post(client, canvas, payload), 409, "--canvas-root-account-uuid", db_session)
    from lti_app.services.platforms.canvas_account import learn_from_launch

    learn_from_launch(db_session, world["platform"].id, "canvas",
                      {"canvas_root_account_uuid": canvas.root_account_uuid})
    learn_from_launch(db_session, world["platform"].id, "canvas",  # a later launch never replaces it
                      {"canvas_root_account_uuid": "OtherDistrictRootAccount0000000000000000"})
    db_session.commit()
    client.application.extensions.pop("caseload.webhook_platforms", None)  # the per-process settings cache
    assert post(client, canvas, payload).status_code == 202
    db_session.expire_all()
    assert db_session.get(type(world["platform"]), world["platform"].id).canvas_root_account_uuid == \
        canvas.root_account_uuid


def test_stale_and_expired_signed_events_are_refused(client, db_session, canvas, world):
    payload = canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071, section_id=4811)
    now = int(dt.datetime.now(dt.UTC).timestamp())
    _refused(post(client, canvas, {**payload, "iat": now - 2 * 24 * 3600}), 401, "stale", db_session)
    _refused(post(client, canvas, {**payload, "iat": now - 600, "exp": now - 300}), 401, "expired", db_session)
    old = canvas.enrollment("enrollment_created", enrollment_id=1, course_id=565, user_id=30071, section_id=4811,
                            when=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))
    _refused(post(client, canvas, old), 401, "stale", db_session)
    assert post(client, canvas, {**payload, "iat": now - 60, "exp": now + 300}).status_code == 202
