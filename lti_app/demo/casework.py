"""Demo casework for the practice district: services with sessions over the last weeks (some students short of
their minutes, one make-up owed), guardian contacts with follow-ups, meetings, referrals in several states and one
crisis entry. All fictional; dates are relative to the day the demo is seeded so the caseload home always has a
recent week to show. Idempotent: nothing is added when casework already exists."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app import clock
from lti_app.crypto import cipher
from lti_app.demo.common import DemoDistrict
from lti_app.demo.goals import closed_days, school_day
from lti_app.domain.vocab import PersonKind
from lti_app.models import (
    Contact,
    CrisisEntry,
    Meeting,
    Plan,
    Referral,
    ReferralStatusChange,
    RoleGrant,
    ServiceRequirement,
    ServiceSession,
)
from lti_app.services.roster import primitives as roster

PROVIDER = ("demo-provider-1", "Oriel Brightwater")
SERVICES = [  # (type, minutes, period, setting, provider is the demo provider)
    ("speech_language", 60, "week", "pull-out, speech room", True),
    ("specialized_instruction", 120, "week", "resource room", False),
    ("occupational_therapy", 120, "month", "push-in, classroom", False),
    ("counseling", 30, "week", "counselor's office", False),
]
CONTACTS = [("phone", "out", "guardian", "Shared the new reading accommodations; guardian will check the planner "
                                         "nightly.", 7),
            ("email", "in", "parent", "Parent asked how extended time works on the unit test.", None),
            ("in_person", "out", "grandmother", "Pick-up conversation about the upcoming annual review.", -3)]
REFERRALS = [("counseling", "School counselor", "Test anxiety reported by two teachers.", "accepted"),
             ("evaluation", "School psychologist", "Reading fluency well below grade level despite support.", "pending"),
             ("tutoring", "Peer tutoring club", "Algebra homework completion.", "done")]


def _provider(session: Session, district: DemoDistrict) -> int:
    sub, name = PROVIDER
    given, _, family = name.partition(" ")
    person = roster.upsert_person(session, district.platform.id, sub, name=name, given_name=given, family_name=family,
                                  email=f"{given.lower()}.{family.lower()}@staff.example.test",
                                  kind=PersonKind.STAFF.value, sis_id="STAFF-PROVIDER-1")
    session.flush()
    if session.scalar(select(RoleGrant.id).where(RoleGrant.person_id == person.id, RoleGrant.role == "provider",
                                                 RoleGrant.revoked_at.is_(None))) is None:
        session.add(RoleGrant(person_id=person.id, role="provider", school="Juniper Ridge High School"))
    return person.id


def seed(session: Session, district: DemoDistrict) -> None:
    if session.scalar(select(ServiceRequirement.id).limit(1)) is not None:
        return
    plans = list(session.scalars(select(Plan).where(Plan.status == "active", Plan.plan_type.in_(["IEP", "504"]))
                                 .order_by(Plan.id)))
    if not plans:
        return
    enc = cipher().encrypt
    provider_id = _provider(session, district)
    today = clock.today()
    monday = today - dt.timedelta(days=today.weekday())
    closed = closed_days()
    for i, plan in enumerate(plans[:16]):
        manager = plan.case_manager_id
        kind, minutes, period, setting, by_provider = SERVICES[i % len(SERVICES)]
        req = ServiceRequirement(student_id=plan.student_id, plan_id=plan.id, service_type=kind, minutes=minutes,
                                 period=period, provider_id=provider_id if by_provider else None,
                                 provider_name=None if by_provider else "Juniper Ridge special education staff",
                                 setting=setting, starts_on=max(today - dt.timedelta(days=90), plan.effective_on or today),
                                 created_by_id=manager)
        session.add(req)
        session.flush()
        # Sessions since the service began, two per week; every third student misses some (a shortfall), every
        # fifth has a provider absence last week (minutes owed), made up this Monday for every tenth.
        per_session = max(15, minutes // 2) if period == "week" else max(15, minutes // 8)
        if i % 10 == 0:
            session.add(ServiceSession(requirement_id=req.id, student_id=plan.student_id, held_on=monday,
                                       minutes=per_session, attendance="delivered", kind="make_up",
                                       logged_by_id=provider_id if by_provider else manager))
        for week in range(1, 14):
            start = monday - dt.timedelta(weeks=week)
            for day in (1, 3):
                if start + dt.timedelta(days=day) < req.starts_on or start + dt.timedelta(days=day) in closed:
                    continue  # no session before the service (and its plan) began, nor on a day school is closed
                attendance = "delivered"
                if i % 3 == 0 and week in (1, 3) and day == 3:
                    attendance = "student_absent"
                if i % 5 == 0 and week == 1 and day == 1:
                    attendance = "provider_absent"
                session.add(ServiceSession(requirement_id=req.id, student_id=plan.student_id,
                                           held_on=start + dt.timedelta(days=day), minutes=per_session,
                                           attendance=attendance, logged_by_id=provider_id if by_provider else manager))
        if i < len(CONTACTS) * 2:
            method, direction, who, text, follow = CONTACTS[i % len(CONTACTS)]
            contacted = school_day(today - dt.timedelta(days=10 + i), later=False)
            session.add(Contact(student_id=plan.student_id, contacted_on=contacted, method=method, direction=direction,
                                contact_with=who, summary_encrypted=enc(text),
                                follow_up_on=(contacted + dt.timedelta(days=follow + 10)) if follow is not None else None,
                                recorded_by_id=manager))
        if i < 6:
            held = i % 2 == 0
            # A held meeting in the past, a scheduled one ahead, both on a school weekday.
            meets_on = (school_day(today - dt.timedelta(days=20 - i), later=False) if held
                        else school_day(today + dt.timedelta(days=14 + i), later=True))
            session.add(Meeting(student_id=plan.student_id,
                                meeting_type="iep_annual" if plan.plan_type == "IEP" else "504_review",
                                meets_on=meets_on, participants_encrypted=enc("Guardian, case manager, general "
                                                                              "education teacher, provider"),
                                notice_sent_on=meets_on - dt.timedelta(days=12) if held or i % 3 else None,
                                status="held" if held else "scheduled",
                                outcome_encrypted=enc("Services continued; one goal revised.") if held else None,
                                recorded_by_id=manager))
        if i < len(REFERRALS):
            kind_r, to, reason, status = REFERRALS[i]
            ref = Referral(student_id=plan.student_id, referral_type=kind_r, referred_to=to, reason_encrypted=enc(reason),
                           referred_on=today - dt.timedelta(days=30), status=status, created_by_id=manager)
            session.add(ref)
            session.flush()
            session.add(ReferralStatusChange(referral_id=ref.id, status="pending", changed_by_id=manager))
            if status != "pending":
                if status == "done":
                    session.add(ReferralStatusChange(referral_id=ref.id, status="accepted", changed_by_id=manager))
                session.add(ReferralStatusChange(referral_id=ref.id, status=status, changed_by_id=manager))
    first = plans[0]
    session.add(CrisisEntry(student_id=first.student_id, occurred_on=today - dt.timedelta(days=12),
                            visibility="restricted",
                            description_encrypted=enc("Student left class distressed and asked to talk to an adult; "
                                                      "stayed with the counselor for the period."),
                            actions_encrypted=enc("Counselor followed the safety protocol; guardian and school "
                                                  "administrator informed the same day."),
                            recorded_by_id=first.case_manager_id))
    session.flush()
