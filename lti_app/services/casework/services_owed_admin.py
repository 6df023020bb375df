"""Services owed for administrators (issue #11, "a caseload-wide services owed view and CSV", for the district): the
case manager's *Services owed* (``service_minutes.services_owed``) across every student an administrator may see.

Reach follows the deadlines pages' rule (``deadlines.admin_schools`` / ``admin_platform``): a district administrator
reaches every student; an LMS or school administrator the students with an account on the platform they launched
from, and a school administrator grant with a school only that school's. Within that reach, every student with a
service is decided by the access policy (``view_casework``, deny by default) and every decision, allowed or refused,
is written to the access log with its basis in one insert; only the allowed ones are shown. A fixed number of
statements whatever the number of students (the ledgers are ``service_minutes.ledger_summaries``)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.domain.access import Action
from lti_app.models import ServiceRequirement, Student
from lti_app.services.access import policy as access
from lti_app.services.access import roles
from lti_app.services.casework import deadlines
from lti_app.services.casework.service_minutes import OwedView, owed_view

log = logging.getLogger(__name__)


def admin_services_owed(session: Session, viewer: Viewer, today: dt.date, *, every_service: bool = False,
                        context: str = "services owed (administration)") -> OwedView:
    """Every service of every student within the administrator's reach whom the policy lets them see, with its
    running ledger from the service's first day; owing services only unless ``every_service``; most owed first."""
    stmt = (select(Student.id, Student.given_name, Student.family_name, Student.preferred_name, Student.school)
            .where(Student.purged_at.is_(None),
                   Student.id.in_(select(ServiceRequirement.student_id).distinct())))
    schools = deadlines.admin_schools(session, viewer)
    if schools is not None:
        stmt = stmt.where(Student.school.in_(schools or [""]))
    platform_id = deadlines.admin_platform(session, viewer)
    if platform_id is not None:
        stmt = stmt.where(Student.id.in_(roles.platform_student_ids(platform_id)))
    students = session.execute(stmt).all()
    decisions = access.check_many(session, viewer, access.casework_facts(session, [s.id for s in students]),
                                  Action.VIEW_CASEWORK, context)
    allowed = [sid for sid, d in decisions.items() if d.allowed]
    view = owed_view(session, students, allowed, today, every_service=every_service)
    log.info("services owed (administration) actor=%s students=%s refused=%s", viewer.person_id, len(allowed),
             len(decisions) - len(allowed))
    return view
