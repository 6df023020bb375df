"""Demo support plans: about 30 of the demo district's students get realistic, fictional plans with
operational accommodations a teacher can act on, some acknowledgements and notes. Idempotent."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.crypto import cipher
from lti_app.demo.common import DemoDistrict
from lti_app.domain.deadlines import add_years
from lti_app.domain.plan_rules import AccommodationFacts, contradictions
from lti_app.models import Accommodation, AppliedAccommodation, CaseNote, CaseNoteRevision, Plan, PlanVersion, Student
from lti_app.services.access.students import link_persons

ACCOMMODATIONS = [
    ("timing", "Tests and quizzes: 1.5x time", "tests", Decimal("1.5")),
    ("timing", "Tests and quizzes: double time (2x)", "tests", Decimal("2.0")),
    ("timing", "A 5-minute movement break when requested, up to twice per class", "classroom", None),
    ("setting", "Tests in a separate, quiet room", "tests", None),
    ("setting", "Seat near the front, away from the door and windows", "classroom", None),
    ("presentation", "Read test questions aloud on request (not for reading-comprehension items)", "tests", None),
    ("presentation", "Provide a copy of class notes or slides before the lesson", "classroom", None),
    ("presentation", "Directions given both orally and in writing", "all", None),
    ("response", "May use a calculator except where the skill being tested is computation", "all", None),
    ("response", "Reduced answer choices on multiple-choice items (3 instead of 4)", "tests", None),
    ("response", "May dictate longer written answers or use speech-to-text", "all", None),
    ("presentation", "Large-print (18 pt) copies of handouts and tests", "all", None),
    ("setting", "Access to a quiet corner when overwhelmed; check in privately afterwards", "classroom", None),
    ("timing", "Assignments due up to 2 school days late without penalty, on request", "classroom", None),
]
PLAN_MIX = ["IEP"] * 12 + ["504"] * 10 + ["ELL"] * 3 + ["health"] * 2 + ["behaviour"] * 2 + ["MTSS"]
NOTES = [("observation", "Worked well with the copy of slides; asked two questions in class."),
         ("academic_concern", "Missed two quizzes this week; extended time was not requested."),
         ("parent_contact", "Guardian called about upcoming tests; confirmed the separate-room arrangement.")]


def _consistent(chosen: list[tuple[str, str, str, Decimal | None]]) -> list[tuple[str, str, str, Decimal | None]]:
    """The sample without accommodations that contradict one already taken (1.5x and 2x on the same tests): the
    editor and the import refuse such plans, so the demo must not hold them."""
    kept: list[tuple[str, str, str, Decimal | None]] = []
    for item in chosen:
        facts = [AccommodationFacts(t, a, (), m) for _, t, a, m in [*kept, item]]
        if not contradictions(facts):
            kept.append(item)
    return kept


EXTRA_ATTEMPT = ("timing", "One extra attempt on quizzes that allow a limited number of attempts", "tests", None)


def _lms_rule(session: Session, version_id: int, kept: list[tuple[str, str, str, Decimal | None]], *,
              extra_attempt: bool, position: int) -> None:
    """The plan's structured rule for the LMS (issue #12): its extended time as the multiplier, and for some
    students one extra attempt (written into the plan as an accommodation too). Students without extended time get
    none: what a teacher does in class is not applied to quizzes."""
    multipliers = [m for *_, m in kept if m is not None]
    if not multipliers:
        return
    if extra_attempt:
        cat, text, applies, _ = EXTRA_ATTEMPT
        session.add(Accommodation(plan_version_id=version_id, category=cat, text=text, applies_to=applies,
                                  subjects=[], time_multiplier=None, position=position))
    session.add(AppliedAccommodation(plan_version_id=version_id, multiplier=max(multipliers),
                                     extra_attempts=1 if extra_attempt else None, reduce_choices=False,
                                     window_guard=False))


def seed(session: Session, district: DemoDistrict) -> None:
    if session.scalar(select(Plan.id).limit(1)) is not None:
        return
    rng = random.Random(42)  # noqa: S311 - deterministic demo data, not security
    today = clock.today()  # dates relative to the day the demo is seeded, so it never goes stale
    chosen = [p for i, p in enumerate(district.students) if i % 4 == 0][:len(PLAN_MIX)]
    for i, (person, plan_type) in enumerate(zip(chosen, PLAN_MIX, strict=False)):
        student = Student(sis_id=person.sis_id, given_name=person.given_name, family_name=person.family_name,
                          grade=str(9 + i % 4), school="Juniper Ridge High School",
                          date_of_birth=add_years(today, -(14 + i % 4)) - dt.timedelta(days=40 + 23 * i % 300))
        session.add(student)
        session.flush()
        manager = district.case_managers[i % len(district.case_managers)]
        start = today - dt.timedelta(days=30 + 11 * i)
        plan = Plan(student_id=student.id, plan_type=plan_type, status="active", case_manager_id=manager.id,
                    effective_on=start, end_on=start + dt.timedelta(days=365),
                    annual_review_due=start + dt.timedelta(days=365),
                    reevaluation_due=start + dt.timedelta(days=3 * 365) if plan_type == "IEP" else None)
        session.add(plan)
        session.flush()
        version = PlanVersion(plan_id=plan.id, version_no=1, status="active", summary="Initial plan",
                              created_by_id=manager.id, activated_by_id=manager.id,
                              activated_at=dt.datetime.combine(start, dt.time(9), dt.UTC))
        session.add(version)
        session.flush()
        kept = _consistent(rng.sample(ACCOMMODATIONS, 3 + i % 6))
        for pos, (cat, text, applies, mult) in enumerate(kept):
            session.add(Accommodation(plan_version_id=version.id, category=cat, text=text, applies_to=applies,
                                      subjects=[], time_multiplier=mult, position=pos))
        _lms_rule(session, version.id, kept, extra_attempt=(i % 3 == 1), position=len(kept))
        if i % 3 == 0:
            kind, text = NOTES[i % len(NOTES)]
            body = cipher().encrypt(text)
            note = CaseNote(student_id=student.id, author_id=manager.id, note_type=kind, visibility="team",
                            recorded_on=today - dt.timedelta(days=i), body_encrypted=body)
            session.add(note)
            session.flush()
            session.add(CaseNoteRevision(note_id=note.id, revision_no=1, body_encrypted=body, note_type=kind,
                                         visibility="team", recorded_on=note.recorded_on, edited_by_id=manager.id))
    session.flush()
    link_persons(session, [p.id for p in chosen])
