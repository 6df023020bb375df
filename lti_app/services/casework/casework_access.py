"""Access to casework: the access policy decides (``Action.VIEW_CASEWORK``, ``EDIT_CASEWORK``, ``LOG_SERVICE``) and
the decision is written to the access log with its basis, allowed or refused.

Refusals differ from the student card's: a person the policy links to the student in some way (a teacher of the
student, support staff, a case manager of another caseload) is told plainly why with a 403; anybody else gets the
same 404 as a student id that does not exist, so the page does not reveal who has a record."""

from __future__ import annotations

import dataclasses
import logging
from typing import NoReturn

from flask import abort
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.domain.access import Action, Decision, StudentFacts, decide
from lti_app.models import Plan, Student
from lti_app.services.access import policy as access

log = logging.getLogger(__name__)

NOT_ON_CASELOAD = ("This student is not on your caseload, so their casework is not open to you. The student card "
                   "shows what the school support team may see; ask the student's case manager or an administrator "
                   "if you need more.")
TEACHERS = ("Casework (services, contacts, meetings, referrals) is for the student's case manager and support staff. "
            "The student card shows the accommodations and the notes you may read.")
READ_ONLY = ("Only the student's case manager can change casework; you may read it. Ask the case manager to record "
             "what you need.")
NOT_YOUR_SERVICE = ("You can log sessions only for services you provide. Ask the student's case manager to correct "
                    "the provider of this service if it is yours.")


def refuse(session: Session, viewer: Viewer, student_id: int, decision: Decision, action: Action) -> NoReturn:
    """Commit the refusal already recorded in the log, then answer 403 (with the reason) or 404."""
    session.commit()
    log.info("casework refused actor=%s student=%s action=%s", viewer.person_id, student_id, action.value)
    if decision.relationship == "none":
        abort(404, description=access.NOT_VISIBLE)
    if "not on your caseload" in decision.basis:
        abort(403, description=NOT_ON_CASELOAD)
    if decision.relationship == "teacher":
        abort(403, description=TEACHERS)
    abort(403, description=READ_ONLY)


def student_facts(session: Session, student_id: int) -> StudentFacts:
    """The access facts with the case managers of the student's *draft* plans too: before the first IEP is active,
    its case manager runs the initial evaluation — guardian contacts, the eligibility determination meeting
    (34 CFR 300.306) that starts the 30-day clock of the initial IEP meeting (300.323(c)(1)) — so casework opens
    to them as it does to the case manager of an active plan (the deadlines page and the plan editor do the same)."""
    facts = access.student_facts(session, student_id)
    drafting = frozenset(m for m in session.scalars(
        select(Plan.case_manager_id).where(Plan.student_id == student_id, Plan.status == "draft")) if m)
    return dataclasses.replace(facts, case_manager_ids=facts.case_manager_ids | drafting)


def authorize(session: Session, viewer: Viewer, student_id: int, action: Action, context: str) -> Decision:
    """Decide and log; refuse (403/404) unless allowed. The caller commits what it writes with the log row."""
    if session.get(Student, student_id) is None:
        decision = access.check(session, viewer, student_id, action, context)   # logs "no such student record"
    else:
        decision = decide(access.actor_facts(session, viewer), student_facts(session, student_id), action)
        access.record(session, viewer, student_id, action.value, decision.allowed, decision.basis, context)
    if not decision.allowed:
        refuse(session, viewer, student_id, decision, action)
    return decision


def refuse_not_provider(session: Session, viewer: Viewer, student_id: int, requirement_id: int) -> NoReturn:
    """A provider logging a session of a service someone else provides: logged as a refusal, then 403."""
    access.record(session, viewer, student_id, Action.LOG_SERVICE.value, False,
                  "provider of another service (not this one)", f"log session of service {requirement_id}")
    session.commit()
    log.info("casework refused actor=%s student=%s action=log_service (not the provider)", viewer.person_id, student_id)
    abort(403, description=NOT_YOUR_SERVICE)
