"""LTI role URIs -> Caseload's coarse launch roles (LTI Core 1.3 §A.2 role vocabularies).

Who is an LMS administrator: only the *institution* and *system* Administrator roles (LTI Core §A.2.1 system
roles, §A.2.2 institution roles; Canvas account admins, Moodle site admins). The *context* role
``membership#Administrator`` (§A.2.3) names an administrator *of the course* — course staff, not the district's
LMS administrator — so it makes the person staff and gives no administration and no student access by itself.

Moodle sends coarse roles: every teacher (editing or not) is ``membership#Instructor`` and site admins add
``institution/person#Administrator`` and ``system/person#Administrator``. Institution roles Faculty, Staff and
Instructor (Canvas sends them from account navigation, where no course role exists) make the person staff.
NRPS (and some platforms) use short names (``Instructor``), which LTI Core §A.2.3.1 allows for context roles;
both forms are accepted.
"""

from __future__ import annotations

from collections.abc import Iterable

from lti_app.domain.vocab import LaunchRole

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
INSTITUTION = LIS + "institution/person#"
SYSTEM = LIS + "system/person#"

_ADMIN = {
    INSTITUTION + "Administrator",
    SYSTEM + "Administrator",
    SYSTEM + "SysAdmin",
}
_INSTITUTION_STAFF = {"Faculty", "Staff", "Instructor"}
"""Institution roles (LTI Core §A.2.2) of school employees: staff Persons, no course access by themselves."""
_SUFFIX = {
    "Instructor": LaunchRole.TEACHER,
    "Instructor#TeachingAssistant": LaunchRole.TA,
    "TeachingAssistant": LaunchRole.TA,
    "ContentDeveloper": LaunchRole.DESIGNER,
    "Learner": LaunchRole.STUDENT,
    "Mentor": LaunchRole.OBSERVER,
    "Administrator": LaunchRole.STAFF,
}
"""Context (membership) roles. ``Administrator`` here is the course's administrator: course staff."""


def map_role(uri: str) -> LaunchRole | None:
    uri = uri.strip()
    if uri in _ADMIN:
        return LaunchRole.ADMIN
    if uri.startswith(INSTITUTION):
        # Institution roles other than Administrator: staff for Faculty, Staff and Instructor; Student, Guest,
        # Mentor, Alumni... give nothing.
        return LaunchRole.STAFF if uri[len(INSTITUTION):] in _INSTITUTION_STAFF else None
    if uri.startswith(SYSTEM):
        return None  # system roles other than Administrator/SysAdmin (User, None, Creator...) give nothing
    if uri.startswith(LIS + "membership/Instructor#TeachingAssistant"):
        return LaunchRole.TA
    for prefix in (LIS + "membership#", LIS + "membership/"):
        if uri.startswith(prefix):
            uri = uri[len(prefix):]
            break
    if uri.startswith("Learner#"):
        return LaunchRole.STUDENT
    if uri.startswith("Mentor#"):
        return LaunchRole.OBSERVER
    if uri.startswith("Administrator#"):
        return LaunchRole.STAFF  # membership/Administrator sub-roles (Developer, Support...): course staff
    return _SUFFIX.get(uri)


def map_roles(uris: Iterable[str]) -> tuple[str, ...]:
    """Distinct coarse roles in a stable order (admin, teacher, ta, designer, student, observer, staff)."""
    found = {r for r in (map_role(u) for u in uris) if r is not None}
    return tuple(r.value for r in LaunchRole if r in found)
