"""The launch use case: validate, upsert the roster from the claims, issue the app token, route.

Everything is written in one transaction together with the single-use nonce: a refused launch writes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.domain.vocab import EnrollmentRole, EnrollmentState, LaunchRole, PersonKind, RosterSource
from lti_app.lti.context import LaunchContext
from lti_app.services.access import roles
from lti_app.services.launch import roster_writes as launch_roster
from lti_app.services.platforms import canvas_account
from lti_app.services.roster import primitives as roster

log = logging.getLogger(__name__)

_ENROLLMENT_ROLE = {
    LaunchRole.TEACHER.value: EnrollmentRole.TEACHER.value,
    LaunchRole.TA.value: EnrollmentRole.TA.value,
    LaunchRole.DESIGNER.value: EnrollmentRole.DESIGNER.value,
    LaunchRole.STUDENT.value: EnrollmentRole.STUDENT.value,
    LaunchRole.OBSERVER.value: EnrollmentRole.OBSERVER.value,
}
STAFF_ROLES = (LaunchRole.ADMIN.value, LaunchRole.TEACHER.value, LaunchRole.TA.value, LaunchRole.DESIGNER.value,
               LaunchRole.STAFF.value)
"""Launch roles that make the person a staff Person (a student Person cannot be given a grant). ``staff`` covers
institution Faculty/Staff/Instructor and a course's ``membership#Administrator`` (``lti.roles``): staff who only
ever launch from account navigation can be given a grant before they launch from a course."""


@dataclass(frozen=True)
class LaunchOutcome:
    viewer: Viewer
    destination: str
    """panel | student_card | casework | admin | designer | staff_only"""
    course_id: int | None


def record_launch(session: Session, ctx: LaunchContext, now: dt.datetime | None = None) -> LaunchOutcome:
    """Upsert person, course, sections and enrollments from a validated launch; decide where it goes."""
    now = now or dt.datetime.now(dt.UTC)
    staff = ctx.has_role(*STAFF_ROLES)
    person = launch_roster.upsert_person(
        session, ctx.platform_id, ctx.sub, lms_user_id=ctx.canvas_user_id or (ctx.sub if ctx.lms_family == "moodle"
                                                                             else None),
        sis_id=ctx.user_sis_id, name=ctx.name or None, given_name=ctx.given_name or None,
        family_name=ctx.family_name or None, email=ctx.email,
        kind=PersonKind.STAFF.value if staff else PersonKind.STUDENT.value)
    person_id = person.id
    course_id = None
    if ctx.context_id:
        course = launch_roster.upsert_course_ids(
            session, ctx.platform_id, ctx.context_id,
            lms_course_id=ctx.canvas_course_id or (ctx.context_id if ctx.lms_family == "moodle" else None),
            title=ctx.context_title or None, label=ctx.context_label or None, nrps_url=ctx.nrps_url,
            sis_id=ctx.course_sis_id)
        course_id = course.id
        section_ids = [launch_roster.ensure_section_id(session, course.id, sid) for sid in ctx.canvas_section_ids
                       ] or [course.course_wide_section_id]
        for role in ctx.roles:
            enrollment_role = _ENROLLMENT_ROLE.get(role)
            if enrollment_role is None:
                continue
            for section_id in section_ids:
                launch_roster.apply_enrollment_ids(
                    session, person_id=person_id, course_id=course.id, section_id=section_id, role=enrollment_role,
                    state=EnrollmentState.ACTIVE.value, source=RosterSource.LAUNCH.value, source_time=now)
    canvas_account.learn_from_launch(session, ctx.platform_id, ctx.lms_family, ctx.custom)
    student_person_id = None
    if ctx.student_lms_user_id:
        student = roster.find_person_by_lms_user_id(session, ctx.platform_id, ctx.student_lms_user_id)
        student_person_id = student.id if student else None
    viewer = Viewer(person_id=person_id, platform_id=ctx.platform_id, course_id=course_id,
                    roles=ctx.roles, placement=ctx.placement, student_person_id=student_person_id)
    destination = _destination(viewer, ctx, person.grants)
    log.info("launch person=%s course=%s roles=%s -> %s", person_id, viewer.course_id, ",".join(ctx.roles),
             destination)
    return LaunchOutcome(viewer=viewer, destination=destination, course_id=viewer.course_id)


def _destination(viewer: Viewer, ctx: LaunchContext, grants: frozenset[str]) -> str:
    teaching = ctx.has_role(LaunchRole.TEACHER.value, LaunchRole.TA.value)
    if ctx.placement == "student_context_card" and (teaching or grants):
        return "student_card"
    if viewer.course_id is not None and teaching:
        return "panel"
    if grants & roles.SUPPORT_GRANTS:
        return "casework"
    if ctx.has_role(LaunchRole.ADMIN.value) or grants & roles.ADMIN_GRANTS:
        return "admin"
    if ctx.has_role(LaunchRole.DESIGNER.value):
        return "designer"
    return "staff_only"
