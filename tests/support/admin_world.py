"""A small fictional district for the administration tests (grants, logs, listing, export, retention)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from lti_app.models import (
    Accommodation,
    Acknowledgement,
    CaseNote,
    CaseNoteRevision,
    Plan,
    PlanVersion,
    Question,
    RoleGrant,
    Student,
    StudentLink,
)
from tests.support import factories as f


def build(s: Any) -> dict[str, Any]:
    """Algebra I Period 1: teacher Rowan Ellery, student Ava Quinlan (IEP, case manager Tamsin Larkspur, two
    versions, three notes of each tier, a question, an acknowledgement). Biology: teacher Sable Whitlock and Ben
    Hollis (no plan). Admins: Marlo Vance (LMS admin by launch), Oriel Banks (district admin grant, restricted),
    Fen Adair (school admin grant). Ines Corvo is staff on a second platform."""
    from lti_app.crypto import cipher

    plat = f.platform(s, name="moodle-district")
    other = f.platform(s, name="canvas-district", lms="canvas")
    alg = f.course(s, plat, "Algebra I")
    bio = f.course(s, plat, "Biology")
    p1 = f.section(s, alg, "101", "Period 1")
    people = {
        "lms_admin": f.person(s, plat, "Marlo Vance", kind="staff", email="m.vance@example.org"),
        "district_admin": f.person(s, plat, "Oriel Banks", kind="staff", email="o.banks@example.org"),
        "school_admin": f.person(s, plat, "Fen Adair", kind="staff", email="f.adair@example.org"),
        "teacher": f.person(s, plat, "Rowan Ellery", kind="staff", email="r.ellery@example.org"),
        "teacher2": f.person(s, plat, "Sable Whitlock", kind="staff", email="s.whitlock@example.org"),
        "cm": f.person(s, plat, "Tamsin Larkspur", kind="staff", email="t.larkspur@example.org"),
        "other_staff": f.person(s, other, "Ines Corvo", kind="staff", email="i.corvo@example.org"),
        "ava_person": f.person(s, plat, "Ava Quinlan", sis_id="S-1"),
        "ben_person": f.person(s, plat, "Ben Hollis", sis_id="S-2"),
    }
    s.add_all([RoleGrant(person_id=people["district_admin"].id, role="district_admin", can_see_restricted=True),
               RoleGrant(person_id=people["school_admin"].id, role="school_admin", school="Juniper Ridge"),
               RoleGrant(person_id=people["cm"].id, role="case_manager", can_see_restricted=True)])
    f.enroll(s, people["teacher"], alg, "teacher", p1)
    f.enroll(s, people["ava_person"], alg, "student", p1)
    f.enroll(s, people["teacher2"], bio, "teacher")
    f.enroll(s, people["ben_person"], bio, "student")

    ava = Student(sis_id="S-1", given_name="Ava", family_name="Quinlan", date_of_birth=dt.date(2010, 4, 17), grade="10",
                  school="Juniper Ridge")
    ben = Student(sis_id="S-2", given_name="Ben", family_name="Hollis", date_of_birth=dt.date(2011, 2, 3), grade="9")
    s.add_all([ava, ben])
    s.flush()
    s.add(StudentLink(student_id=ava.id, person_id=people["ava_person"].id))
    plan = Plan(student_id=ava.id, plan_type="IEP", status="active", case_manager_id=people["cm"].id,
                effective_on=dt.date(2026, 9, 1), annual_review_due=dt.date(2027, 8, 31))
    s.add(plan)
    s.flush()
    v1 = PlanVersion(plan_id=plan.id, version_no=1, status="superseded", summary="Initial plan")
    v2 = PlanVersion(plan_id=plan.id, version_no=2, status="active", summary="Added a reader",
                     activated_at=dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC))
    s.add_all([v1, v2])
    s.flush()
    s.add_all([
        Accommodation(plan_version_id=v1.id, category="timing", text="Tests: 1.5x time", applies_to="tests",
                      subjects=[], time_multiplier=Decimal("1.5"), position=0),
        Accommodation(plan_version_id=v2.id, category="timing", text="Tests: 1.5x time", applies_to="tests",
                      subjects=[], time_multiplier=Decimal("1.5"), position=0),
        Accommodation(plan_version_id=v2.id, category="presentation", text="Read test questions aloud on request",
                      applies_to="tests", subjects=["Mathematics"], position=1),
    ])
    notes = {}
    for tier, text in [("team", "Worked well with the slides copy."),
                       ("case_team", "Guardian asked about the reevaluation timeline."),
                       ("restricted", "Private family circumstance discussed with the counselor.")]:
        body = cipher().encrypt(text)
        note = CaseNote(student_id=ava.id, author_id=people["cm"].id, note_type="observation",
                        recorded_on=dt.date(2026, 11, 2), visibility=tier, body_encrypted=body)
        s.add(note)
        s.flush()
        s.add(CaseNoteRevision(note_id=note.id, revision_no=1, body_encrypted=body, note_type="observation",
                               visibility=tier, recorded_on=note.recorded_on, edited_by_id=people["cm"].id))
        notes[tier] = note
    s.add(Question(student_id=ava.id, asked_by_id=people["teacher"].id, case_manager_id=people["cm"].id,
                   course_id=alg.id, body_encrypted=cipher().encrypt("Does the reader apply to homework quizzes?")))
    s.add(Acknowledgement(staff_person_id=people["teacher"].id, student_id=ava.id, plan_version_id=v2.id,
                          section_id=p1.id))
    s.commit()
    return {"platform": plat, "other": other, "algebra": alg, "biology": bio, "ava": ava, "ben": ben, "plan": plan,
            "v1": v1, "v2": v2, "notes": notes, **people}


def csrf_for(app: Any, token: str) -> str:
    """The CSRF value a page rendered for ``token`` would carry."""
    from lti_app.auth import csrf_token, read_token

    with app.test_request_context():
        return csrf_token(read_token(token))
