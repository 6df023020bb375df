"""Who holds which school role inside Caseload: grants are read live on every request, so a revoked grant
takes effect at once (they are never baked into the app token)."""

from __future__ import annotations

from sqlalchemy import Select, and_, select, union
from sqlalchemy.orm import Session

from lti_app.auth import Viewer
from lti_app.domain.vocab import GrantRole, LaunchRole
from lti_app.models import Person, Platform, RoleGrant, Student, StudentLink

ADMIN_GRANTS = frozenset({GrantRole.SCHOOL_ADMIN.value, GrantRole.DISTRICT_ADMIN.value})
SUPPORT_GRANTS = frozenset({GrantRole.CASE_MANAGER.value, GrantRole.COUNSELOR.value, GrantRole.PROVIDER.value})


def active_grants(session: Session, person_id: int) -> list[RoleGrant]:
    stmt = select(RoleGrant).where(RoleGrant.person_id == person_id, RoleGrant.revoked_at.is_(None))
    return list(session.scalars(stmt))


def grant_roles(session: Session, person_id: int) -> frozenset[str]:
    stmt = select(RoleGrant.role).where(RoleGrant.person_id == person_id, RoleGrant.revoked_at.is_(None))
    return frozenset(session.scalars(stmt))


def is_admin(session: Session, viewer: Viewer) -> bool:
    """LMS institution administrators (launch role) and school/district admin grants."""
    if viewer.has_role(LaunchRole.ADMIN.value):
        return True
    return bool(grant_roles(session, viewer.person_id) & ADMIN_GRANTS)


def is_district_admin(session: Session, person_id: int) -> bool:
    return GrantRole.DISTRICT_ADMIN.value in grant_roles(session, person_id)


def is_case_manager(session: Session, person_id: int) -> bool:
    return GrantRole.CASE_MANAGER.value in grant_roles(session, person_id)


def is_support_staff(session: Session, person_id: int) -> bool:
    """Case managers, counselors and related-service providers (the ``case_team`` tier)."""
    return bool(grant_roles(session, person_id) & SUPPORT_GRANTS)


def can_see_restricted(session: Session, person_id: int) -> bool:
    return any(g.can_see_restricted for g in active_grants(session, person_id))


def visible_platform_ids(session: Session, platform_id: int, person_id: int) -> list[int]:
    """District administrators see every platform of the installation; other admins their own platform."""
    if is_district_admin(session, person_id):
        return list(session.scalars(select(Platform.id).order_by(Platform.name)))
    return [platform_id]


def platform_student_ids(platform_id: int) -> Select:  # type: ignore[type-arg]
    """Ids of the support records with a person on this platform (an explicit link, or a SIS id not linked yet):
    the students an LMS or school administrator of that platform reaches (the policy's ``platform_ids`` rule)."""
    linked = (select(StudentLink.student_id.label("student_id")).join(Person, Person.id == StudentLink.person_id)
              .where(Person.platform_id == platform_id))
    by_sis = (select(Student.id.label("student_id"))
              .join(Person, and_(Person.sis_id == Student.sis_id, Person.sis_id.is_not(None), Person.sis_id != ""))
              .where(Person.platform_id == platform_id))
    ids = union(linked, by_sis).subquery("platform_students")
    return select(ids.c.student_id)
