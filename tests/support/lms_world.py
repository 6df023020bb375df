"""A small fictional district wired to the fake Canvas or fake Moodle for the LMS-actions tests: one course, plan
students (with an LMS rule on their active plan version), a student without a plan, and an enabled connection."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from lti_app.models import AppliedAccommodation, Plan, PlanVersion, Student, StudentLink
from lti_app.services.lms_actions import connections
from tests.support import factories as f


def plan_student(s: Any, plat: Any, course: Any, name: str, lms_user_id: str, *, multiplier: str | None = "1.5",
                 extra_minutes: int | None = None, extra_attempts: int | None = None, reduce_choices: bool = False,
                 sis: str | None = None) -> dict[str, Any]:
    person = f.person(s, plat, name, lms_user_id=lms_user_id, sis_id=sis or f"S-{lms_user_id}")
    f.enroll(s, person, course, "student")
    given, _, family = name.partition(" ")
    student = Student(sis_id=sis or f"S-{lms_user_id}", given_name=given, family_name=family)
    s.add(student)
    s.flush()
    s.add(StudentLink(student_id=student.id, person_id=person.id))
    plan = Plan(student_id=student.id, plan_type="IEP", status="active")
    s.add(plan)
    s.flush()
    version = PlanVersion(plan_id=plan.id, version_no=1, status="active", summary="Initial plan")
    s.add(version)
    s.flush()
    rule = AppliedAccommodation(plan_version_id=version.id, multiplier=Decimal(multiplier) if multiplier else None,
                                extra_minutes=extra_minutes, extra_attempts=extra_attempts,
                                reduce_choices=reduce_choices, window_guard=False)
    s.add(rule)
    s.flush()
    return {"person": person, "student": student, "plan": plan, "version": version, "rule": rule}


def canvas_world(s: Any, canvas: Any, *, enabled: bool = True) -> dict[str, Any]:
    plat = f.platform(s, name="willow-canvas", lms="canvas")
    course = f.course(s, plat, "Biology", lms_course_id="501")
    canvas.add_course("501", ["9001", "9002", "9003"])
    w: dict[str, Any] = {"platform": plat, "course": course}
    w["ava"] = plan_student(s, plat, course, "Ava Quinlan", "9001", multiplier="1.5")
    w["ben"] = plan_student(s, plat, course, "Ben Hollis", "9002", multiplier=None, extra_minutes=10,
                            extra_attempts=1)
    w["cleo"] = f.person(s, plat, "Cleo Marsh", lms_user_id="9003")
    f.enroll(s, w["cleo"], course, "student")
    conn = connections.save_canvas(s, plat, canvas.base_url, canvas.client_id, canvas.client_secret,
                                   canvas.refresh_token)
    connections.set_enabled(s, conn, enabled, None)
    w["connection"] = conn
    s.commit()
    return w


def moodle_world(s: Any, moodle: Any, *, enabled: bool = True) -> dict[str, Any]:
    plat = f.platform(s, name="willow-moodle", lms="moodle")
    course = f.course(s, plat, "Chemistry", lms_course_id="7")
    moodle.enrol(7, 31, 32, 33)
    w: dict[str, Any] = {"platform": plat, "course": course}
    w["ava"] = plan_student(s, plat, course, "Ava Quinlan", "31", multiplier="1.5")
    w["ben"] = plan_student(s, plat, course, "Ben Hollis", "32", multiplier="2", extra_attempts=1)
    w["cleo"] = f.person(s, plat, "Cleo Marsh", lms_user_id="33")
    f.enroll(s, w["cleo"], course, "student")
    conn = connections.save_moodle(s, plat, moodle.base_url, moodle.token)
    connections.set_enabled(s, conn, enabled, None)
    w["connection"] = conn
    s.commit()
    return w
