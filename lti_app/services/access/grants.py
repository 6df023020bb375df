"""Role grants: Caseload's own school roles (case manager, counselor, related-service provider, school and
district administrator, and the can-see-restricted flag), given to staff Persons by administrators.

A grant is never edited or deleted: revoking stamps ``revoked_at``/``revoked_by_id`` and a change (another
school, the restricted flag) revokes the old grant and adds a new one, so the table itself is the history of who
could see what, and when. Every change also writes an ``AdminEvent``. Grants are read live on every request
(``services.roles``), so a revocation takes effect on the next page.

Who may grant what (decided here, documented in docs/readme/admin.md):
- district administrators and the command line: every role, the restricted flag, persons of every platform;
- LMS administrators (institution Administrator launch role): every role but district administrator, and the
  restricted flag, for persons of the platform they launched from;
- school administrators: case manager, counselor and provider, without the restricted flag, on their platform.

"Who may see records" (IDEA 34 CFR 300.623(d)) is computed here too, from grants, plans and live enrollments.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import and_, distinct, func, or_, select, union
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.selectable import Subquery

from lti_app import clock
from lti_app.auth import Viewer
from lti_app.db import utcnow
from lti_app.domain.vocab import AdminAction, GrantRole, LaunchRole, PersonKind
from lti_app.ids import parse_id
from lti_app.models import Course, Enrollment, Person, Plan, Platform, RoleGrant, Section, Student, StudentLink
from lti_app.services.access.audit_log import record_admin

log = logging.getLogger(__name__)

ROLE_LABELS = {
    GrantRole.CASE_MANAGER.value: "Case manager",
    GrantRole.COUNSELOR.value: "Counselor",
    GrantRole.PROVIDER.value: "Related-service provider",
    GrantRole.SCHOOL_ADMIN.value: "School administrator",
    GrantRole.DISTRICT_ADMIN.value: "District administrator",
}
ALL_ROLES = frozenset(ROLE_LABELS)
SUPPORT_ROLES = frozenset({GrantRole.CASE_MANAGER.value, GrantRole.COUNSELOR.value, GrantRole.PROVIDER.value})


class GrantInvalid(ValueError):
    """The change cannot be made; the message says why in an administrator's words."""


class GrantNotFound(LookupError):
    """No grant (or no active grant) with that id in the granter's reach."""


@dataclass(frozen=True)
class Granter:
    """Who is changing grants, and how far their authority reaches."""

    person_id: int | None
    via: str
    platform_ids: frozenset[int] | None
    """None: every platform."""
    roles: frozenset[str]
    may_set_restricted: bool

    def reaches(self, platform_id: int) -> bool:
        return self.platform_ids is None or platform_id in self.platform_ids


CLI_GRANTER = Granter(person_id=None, via="cli", platform_ids=None, roles=ALL_ROLES, may_set_restricted=True)


def granter_for(session: Session, viewer: Viewer) -> Granter | None:
    """The authority of an administrator launched into the admin pages; None for everyone else."""
    held = {g.role for g in session.scalars(select(RoleGrant).where(RoleGrant.person_id == viewer.person_id,
                                                                     RoleGrant.revoked_at.is_(None)))}
    if GrantRole.DISTRICT_ADMIN.value in held:
        return Granter(viewer.person_id, "web", None, ALL_ROLES, True)
    if viewer.has_role(LaunchRole.ADMIN.value):
        return Granter(viewer.person_id, "web", frozenset({viewer.platform_id}),
                       ALL_ROLES - {GrantRole.DISTRICT_ADMIN.value}, True)
    if GrantRole.SCHOOL_ADMIN.value in held:
        return Granter(viewer.person_id, "web", frozenset({viewer.platform_id}), SUPPORT_ROLES, False)
    return None


def _clean_school(school: str | None) -> str | None:
    school = " ".join((school or "").split())
    if len(school) > 255:
        raise GrantInvalid("The school name is limited to 255 characters.")
    return school or None


def _staff_person(session: Session, granter: Granter, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None or not granter.reaches(person.platform_id):
        raise GrantNotFound("There is no staff member with this id that you may give grants to.")
    if person.kind != PersonKind.STAFF.value:
        raise GrantInvalid("Grants are for school staff; this person is known to Caseload as a student.")
    return person


def _check_role(granter: Granter, role: str, can_see_restricted: bool) -> None:
    if role not in ALL_ROLES:
        raise GrantInvalid(f"Unknown role {role[:40]!r}: choose one of {', '.join(sorted(ALL_ROLES))}.")
    if role not in granter.roles:
        raise GrantInvalid(f"You may not give or remove the {ROLE_LABELS[role].lower()} role. "
                           "Ask a district administrator.")
    if can_see_restricted and not granter.may_set_restricted:
        raise GrantInvalid("Only district and LMS administrators may allow access to restricted notes.")


def add_grant(session: Session, granter: Granter, person_id: int, role: str, *, can_see_restricted: bool = False,
              school: str | None = None) -> RoleGrant:
    """Give ``role`` to a staff person (or change the school / restricted flag of the grant they hold), commit,
    and log it. Refuses a grant the person already holds exactly."""
    _check_role(granter, role, can_see_restricted)
    school = _clean_school(school)
    person = _staff_person(session, granter, person_id)
    same = [g for g in session.scalars(select(RoleGrant).where(
        RoleGrant.person_id == person.id, RoleGrant.role == role, RoleGrant.revoked_at.is_(None)))
        if (g.school or None) == school]
    if any(g.can_see_restricted == can_see_restricted for g in same):
        raise GrantInvalid(f"{person.display_name} already holds the {ROLE_LABELS[role].lower()} role"
                           + (f" at {school}" if school else "") + ".")
    now = utcnow()
    for old in same:
        old.revoked_at, old.revoked_by_id = now, granter.person_id
    grant = RoleGrant(person_id=person.id, role=role, can_see_restricted=can_see_restricted, school=school,
                      granted_by_id=granter.person_id, granted_at=now)
    session.add(grant)
    session.flush()
    action = AdminAction.GRANT_CHANGE if same else AdminAction.GRANT_ADD
    what = ROLE_LABELS[role] + (" with restricted-note access" if can_see_restricted else "")
    record_admin(session, granter.person_id, granter.via, action.value, target_type="person", target_id=person.id,
                 summary=f"{what} {'changed for' if same else 'granted to'} person {person.id}",
                 details={"grant_id": grant.id, "role": role, "can_see_restricted": can_see_restricted,
                          "school": school, "replaces": [g.id for g in same]})
    session.commit()
    return grant


def revoke_grant(session: Session, granter: Granter, grant_id: int) -> RoleGrant:
    """Revoke an active grant (kept, with who revoked it and when), commit and log it."""
    grant = session.get(RoleGrant, grant_id)
    if grant is None or grant.revoked_at is not None or not granter.reaches(grant.person.platform_id):
        raise GrantNotFound("There is no active grant with this id that you may revoke.")
    _check_role(granter, grant.role, False)
    grant.revoked_at, grant.revoked_by_id = utcnow(), granter.person_id
    record_admin(session, granter.person_id, granter.via, AdminAction.GRANT_REVOKE.value, target_type="person",
                 target_id=grant.person_id, summary=f"{ROLE_LABELS.get(grant.role, grant.role)} revoked from person "
                                                    f"{grant.person_id}",
                 details={"grant_id": grant.id, "role": grant.role, "school": grant.school})
    session.commit()
    return grant


def set_restricted(session: Session, granter: Granter, grant_id: int, allowed: bool) -> RoleGrant:
    """Turn restricted-note access on or off for an active grant (a new grant replaces the old one)."""
    grant = session.get(RoleGrant, grant_id)
    if grant is None or grant.revoked_at is not None or not granter.reaches(grant.person.platform_id):
        raise GrantNotFound("There is no active grant with this id that you may change.")
    if grant.can_see_restricted == allowed:
        raise GrantInvalid("The grant already has this setting.")
    if not granter.may_set_restricted:
        raise GrantInvalid("Only district and LMS administrators may change access to restricted notes.")
    return add_grant(session, granter, grant.person_id, grant.role, can_see_restricted=allowed, school=grant.school)


@dataclass(frozen=True)
class GrantRow:
    id: int
    person_id: int
    person: str
    email: str | None
    platform: str
    role: str
    role_label: str
    school: str | None
    can_see_restricted: bool
    granted_at: dt.datetime
    granted_by: str | None
    revoked_at: dt.datetime | None
    revoked_by: str | None


def list_grants(session: Session, platform_ids: frozenset[int] | None = None, *, active: bool = True,
                person_id: int | None = None, limit: int = 500) -> list[GrantRow]:
    """Active grants (by person name), or the revoked ones (newest revocation first) when ``active`` is False."""
    granted_by, revoked_by = aliased(Person), aliased(Person)
    stmt = (select(RoleGrant, Person, Platform.name, granted_by.name, revoked_by.name)
            .join(Person, Person.id == RoleGrant.person_id).join(Platform, Platform.id == Person.platform_id)
            .outerjoin(granted_by, granted_by.id == RoleGrant.granted_by_id)
            .outerjoin(revoked_by, revoked_by.id == RoleGrant.revoked_by_id))
    if active:
        stmt = stmt.where(RoleGrant.revoked_at.is_(None)).order_by(Person.name, RoleGrant.role, RoleGrant.id)
    else:
        stmt = stmt.where(RoleGrant.revoked_at.is_not(None)).order_by(RoleGrant.revoked_at.desc(), RoleGrant.id.desc())
    if platform_ids is not None:
        stmt = stmt.where(Person.platform_id.in_(sorted(platform_ids)))
    if person_id is not None:
        stmt = stmt.where(RoleGrant.person_id == person_id)
    return [GrantRow(g.id, p.id, p.display_name, p.email, plat, g.role, ROLE_LABELS.get(g.role, g.role), g.school,
                     g.can_see_restricted, g.granted_at, by, g.revoked_at, rby)
            for g, p, plat, by, rby in session.execute(stmt.limit(limit))]


def search_staff(session: Session, query: str, platform_ids: frozenset[int] | None = None,
                 limit: int = 25) -> list[tuple[Person, str]]:
    """Staff persons whose name or email contains ``query`` (case-insensitive), with their platform's name."""
    query = query.strip()[:100]
    if not query:
        return []
    pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = (select(Person, Platform.name).join(Platform, Platform.id == Person.platform_id)
            .where(Person.kind == PersonKind.STAFF.value,
                   or_(func.lower(Person.name).like(pattern, escape="\\"),
                       func.lower(func.coalesce(Person.email, "")).like(pattern, escape="\\")))
            .order_by(Person.name, Person.id).limit(limit))
    if platform_ids is not None:
        stmt = stmt.where(Person.platform_id.in_(sorted(platform_ids)))
    return [(p, plat) for p, plat in session.execute(stmt)]


def find_person(session: Session, ident: str, platform: str | None = None) -> Person:
    """A staff person by email, SIS id, LMS user id or ``#id`` (for the CLI); refuses an ambiguous match."""
    ident = ident.strip()
    stmt = select(Person).where(Person.kind == PersonKind.STAFF.value)
    if platform:
        stmt = stmt.join(Platform, Platform.id == Person.platform_id).where(Platform.name == platform)
    if ident.startswith("#") and (person_id := parse_id(ident[1:])) is not None:
        stmt = stmt.where(Person.id == person_id)
    else:
        stmt = stmt.where(or_(func.lower(Person.email) == ident.lower(), Person.sis_id == ident,
                              Person.lms_user_id == ident))
    found = list(session.scalars(stmt.limit(5)))
    if not found:
        raise GrantNotFound(f"No staff member matches {ident!r}" + (f" on platform {platform!r}" if platform else "")
                            + " (use their email, SIS id, LMS user id or #id; they must have launched Caseload or "
                              "come from a roster).")
    if len(found) > 1:
        raise GrantInvalid(f"{len(found)} staff members match {ident!r}; add --platform NAME or use #id "
                           f"(ids: {', '.join(str(p.id) for p in found)}).")
    return found[0]


@dataclass
class WhoMaySee:
    """One line of the listing required by IDEA 34 CFR 300.623(d): a name, positions, and the basis."""

    person_id: int
    name: str
    email: str | None
    platform: str
    positions: list[str] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)


def _student_persons() -> Subquery:
    """(person_id, student_id) for every LMS person linked to a support record: explicit links, or a SIS id match
    not linked yet (links are made lazily)."""
    return union(
        select(StudentLink.person_id.label("person_id"), StudentLink.student_id.label("student_id")),
        select(Person.id.label("person_id"), Student.id.label("student_id"))
        .join(Student, and_(Student.sis_id == Person.sis_id, Person.sis_id.is_not(None), Person.sis_id != "")),
    ).subquery("student_persons")


def who_may_see(session: Session) -> list[WhoMaySee]:
    """Every person who may currently see records, with their positions and basis: active grants, case managers
    named on active plans, and teachers/TAs whose active enrollment links them to a student with an active plan
    (the same rule as ``domain.access.teaching_link``). LMS administrators are not listed: the LMS keeps that list."""
    entries: dict[int, WhoMaySee] = {}

    def entry(person: Person, platform: str) -> WhoMaySee:
        if person.id not in entries:
            entries[person.id] = WhoMaySee(person.id, person.display_name, person.email, platform)
        return entries[person.id]

    for grant, person, platform in session.execute(
            select(RoleGrant, Person, Platform.name).join(Person, Person.id == RoleGrant.person_id)
            .join(Platform, Platform.id == Person.platform_id).where(RoleGrant.revoked_at.is_(None))
            .order_by(RoleGrant.granted_at)):
        e = entry(person, platform)
        label = ROLE_LABELS.get(grant.role, grant.role)
        if label not in e.positions:
            e.positions.append(label)
        e.bases.append(f"{label.lower()} grant" + (f" at {grant.school}" if grant.school else "")
                       + (", including restricted notes" if grant.can_see_restricted else "")
                       + f" (since {clock.local_date(grant.granted_at)})")

    for person, platform, count in session.execute(
            select(Person, Platform.name, func.count(distinct(Plan.student_id)))
            .join(Plan, Plan.case_manager_id == Person.id).join(Platform, Platform.id == Person.platform_id)
            .where(Plan.status == "active").group_by(Person.id, Platform.name)):
        e = entry(person, platform)
        if "Case manager" not in e.positions:
            e.positions.append("Case manager")
        e.bases.append(f"named case manager on the active plans of {count} student{'s' if count != 1 else ''}")

    pairs = _student_persons()
    t, st = aliased(Enrollment), aliased(Enrollment)
    tsec, ssec = aliased(Section), aliased(Section)
    linked = (select(t.person_id.label("teacher_id"), t.role.label("role"), t.course_id.label("course_id"),
                     tsec.id.label("section_id"), Plan.student_id.label("student_id"))
              .join(tsec, tsec.id == t.section_id)
              .join(st, and_(st.course_id == t.course_id, st.role == "student", st.state == "active"))
              .join(ssec, ssec.id == st.section_id)
              .join(pairs, pairs.c.person_id == st.person_id)
              .join(Plan, and_(Plan.student_id == pairs.c.student_id, Plan.status == "active"))
              .where(t.role.in_(("teacher", "ta")), t.state == "active",
                     or_(t.section_id == st.section_id, tsec.lms_section_id == "", ssec.lms_section_id == ""))
              ).subquery("linked")
    per_section = session.execute(
        select(linked.c.teacher_id, linked.c.role, Course.title, Section.name, Section.lms_section_id,
               func.count(distinct(linked.c.student_id)))
        .join(Course, Course.id == linked.c.course_id).join(Section, Section.id == linked.c.section_id)
        .group_by(linked.c.teacher_id, linked.c.role, Course.id, Course.title, Section.id, Section.name,
                  Section.lms_section_id)
        .order_by(Course.title, Section.name)).all()
    teacher_ids = sorted({row[0] for row in per_section})
    people = {p.id: (p, plat) for p, plat in session.execute(
        select(Person, Platform.name).join(Platform, Platform.id == Person.platform_id)
        .where(Person.id.in_(teacher_ids or [-1])))}
    for teacher_id, role, title, section_name, lms_section_id, count in per_section:
        person, platform = people[teacher_id]
        e = entry(person, platform)
        label = "Teacher" if role == "teacher" else "Teaching assistant"
        if label not in e.positions:
            e.positions.append(label)
        where = title + (f" ({section_name})" if lms_section_id and section_name else "")
        e.bases.append(f"{label.lower()} enrollment in {where}: {count} student{'s' if count != 1 else ''} with a plan")
    return sorted(entries.values(), key=lambda e: (e.name.lower(), e.person_id))
