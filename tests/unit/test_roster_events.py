"""Parsing pushed roster events (pure rules, no database) and verifying their signatures."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from integrations.signed_payloads import SignatureInvalid, hmac_signature, verify_hmac
from lti_app.domain import roster_events as ev

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
G = 2107 * 10**13


def canvas(name: str, body: dict, when: str = "2026-12-03T11:59:00.123Z") -> dict:
    return {"metadata": {"event_name": name, "event_time": when, "context_id": str(G + 565)}, "body": body}


def enrollment_body(**kw: object) -> dict:
    return {"enrollment_id": str(G + 9), "course_id": str(G + 565), "user_id": str(G + 30071),
            "course_section_id": str(G + 4811), "type": "StudentEnrollment", "workflow_state": "active", **kw}


def test_canvas_enrollment_normalises_global_ids_and_keeps_event_time():
    parsed = ev.parse_canvas(canvas("enrollment_created", enrollment_body()), NOW)
    [cmd] = parsed.commands
    assert isinstance(cmd, ev.EnrollmentObserved)
    assert (cmd.course_ref, cmd.user_ref, cmd.section_ref, cmd.lms_enrollment_id) == ("565", "30071", "4811", "9")
    assert (cmd.role, cmd.state, cmd.staff) == ("student", "active", False)
    assert parsed.event_time == dt.datetime(2026, 12, 3, 11, 59, 0, 123000, tzinfo=dt.UTC)


def test_canvas_local_ids_are_accepted_as_they_are():
    parsed = ev.parse_canvas(canvas("enrollment_created", enrollment_body(user_id="42", course_id=565)), NOW)
    assert (parsed.commands[0].user_ref, parsed.commands[0].course_ref) == ("42", "565")


@pytest.mark.parametrize("state, expected", [("active", "active"), ("invited", "inactive"),
                                             ("creation_pending", "inactive"), ("inactive", "inactive"),
                                             ("completed", "inactive"), ("rejected", "inactive"),
                                             ("deleted", "deleted")])
def test_canvas_workflow_states(state, expected):
    parsed = ev.parse_canvas(canvas("enrollment_updated", enrollment_body(workflow_state=state)), NOW)
    assert parsed.commands[0].state == expected


@pytest.mark.parametrize("kind, role, staff", [("TeacherEnrollment", "teacher", True), ("TaEnrollment", "ta", True),
                                               ("DesignerEnrollment", "designer", True),
                                               ("ObserverEnrollment", "observer", False)])
def test_canvas_roles(kind, role, staff):
    cmd = ev.parse_canvas(canvas("enrollment_created", enrollment_body(type=kind)), NOW).commands[0]
    assert (cmd.role, cmd.staff) == (role, staff)


def test_dedupe_key_is_stable_across_redelivery_and_distinct_between_events():
    a = canvas("enrollment_created", enrollment_body())
    b = canvas("enrollment_created", dict(reversed(list(enrollment_body().items()))))
    b["metadata"]["request_id"] = "redelivered"
    assert ev.parse_canvas(a, NOW).dedupe_key == ev.parse_canvas(b, NOW).dedupe_key
    later = canvas("enrollment_created", enrollment_body(), when="2026-12-03T11:59:01Z")
    other = canvas("enrollment_updated", enrollment_body())
    keys = {ev.parse_canvas(x, NOW).dedupe_key for x in (a, later, other)}
    assert len(keys) == 3


def test_unknown_types_and_the_test_student_are_ignored_with_a_reason():
    parsed = ev.parse_canvas(canvas("grade_change", {"submission_id": "1"}), NOW)
    assert parsed.commands == [] and "does not use 'grade_change'" in (parsed.ignored or "")
    parsed = ev.parse_canvas(canvas("enrollment_created", enrollment_body(type="StudentViewEnrollment")), NOW)
    assert parsed.ignored


def test_canvas_user_course_and_section_events():
    user = ev.parse_canvas(canvas("user_updated", {"user_id": str(G + 5), "name": "A B", "workflow_state": "deleted"}),
                           NOW)
    assert [type(c).__name__ for c in user.commands] == ["UserObserved", "UserEnrollmentsEnded"]
    course = ev.parse_canvas(canvas("course_updated", {"course_id": str(G + 565), "workflow_state": "completed"}), NOW)
    assert course.commands[0].enrollments_state == "inactive"
    section = ev.parse_canvas(canvas("course_section_updated", {"course_section_id": "4811", "course_id": "565",
                                                                 "workflow_state": "deleted"}), NOW)
    assert section.commands[0].ended
    state = ev.parse_canvas(canvas("enrollment_state_updated", {"enrollment_id": str(G + 9), "state": "completed"}),
                            NOW)
    assert state.commands == [ev.EnrollmentStateObserved(lms_enrollment_id="9", state="inactive")]


@pytest.mark.parametrize("payload, words", [
    ("not an object", "no event object"),
    ({"metadata": {}, "body": {}}, "event_name"),
    (canvas("enrollment_created", enrollment_body(), when="2020-01-01T00:00:00Z"), "too far"),
    (canvas("enrollment_created", enrollment_body(), when="2026-12-05T00:00:00Z"), "too far"),
    (canvas("enrollment_created", enrollment_body(user_id=True)), "wrong type"),
    (canvas("enrollment_created", enrollment_body(course_id="12a")), "not a Canvas id"),
    (canvas("enrollment_state_updated", {"enrollment_id": "9", "state": "floating"}), "state"),
])
def test_malformed_canvas_events(payload, words):
    with pytest.raises(ev.EventInvalid, match=words):
        ev.parse_canvas(payload, NOW)


def moodle(name: str, **kw: object) -> dict:
    payload = {"schema": ev.MOODLE_SCHEMA, "event_uid": "site-1234567890", "event_name": f"\\core\\event\\{name}",
               "event_time": "2026-12-03T11:00:00.5Z", "course": {"id": "12"},
               "user": {"id": "34", "firstname": "Rowan", "lastname": "Ash", "email": "r@example.org",
                        "idnumber": "S-34"},
               "enrolment": {"status": "active", "roles": ["student"]}}
    payload.update(kw)
    return payload


def test_moodle_enrolment_snapshot_becomes_person_and_role_commands():
    parsed = ev.parse_moodle(moodle("user_enrolment_created"), NOW)
    assert parsed.dedupe_key == "moodle:site-1234567890"
    kinds = [(type(c).__name__, getattr(c, "role", None), getattr(c, "state", None)) for c in parsed.commands]
    assert kinds[0] == ("UserObserved", None, None)
    assert ("EnrollmentObserved", "student", "active") in kinds
    # Roles the user does not hold are ended where they exist, never created.
    removed = [c for c in parsed.commands if isinstance(c, ev.EnrollmentObserved) and c.state == "deleted"]
    assert {c.role for c in removed} == {"teacher", "ta", "observer", "designer"}
    assert not any(c.create_missing for c in removed)


def test_moodle_role_unassigned_records_the_removed_role():
    parsed = ev.parse_moodle(moodle("role_unassigned", enrolment={"status": "active", "roles": []},
                                    role={"archetype": "editingteacher"}), NOW)
    teacher = [c for c in parsed.commands if isinstance(c, ev.EnrollmentObserved) and c.role == "teacher"]
    assert teacher[0].state == "deleted" and teacher[0].create_missing


def test_moodle_unmapped_role_and_unknown_event_are_ignored():
    parsed = ev.parse_moodle(moodle("role_assigned", enrolment={"status": "active", "roles": []},
                                    role={"archetype": "guest"}), NOW)
    assert parsed.ignored
    assert ev.parse_moodle(moodle("course_viewed"), NOW).ignored


def test_hmac_verification():
    body = b'{"a":1}'
    ts = str(int(time.time()))
    sig = hmac_signature("s3cret", ts, body)
    verify_hmac("s3cret", ts, sig, body, now=time.time())
    verify_hmac("s3cret", ts, "sha256=" + sig, body, now=time.time())
    for args in [("s3cret", ts, sig, b'{"a":2}'), ("other", ts, sig, body), ("s3cret", None, sig, body),
                 ("s3cret", "12x", sig, body)]:
        with pytest.raises(SignatureInvalid):
            verify_hmac(*args, now=time.time())
    with pytest.raises(SignatureInvalid, match="minutes"):
        verify_hmac("s3cret", ts, sig, body, now=time.time() + 400)
