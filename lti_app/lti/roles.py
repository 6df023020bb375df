"""LTI role URIs -> Caseload's coarse launch roles (LTI Core 1.3 §A.2 role vocabularies).

Moodle sends coarse roles: every teacher (editing or not) is ``membership#Instructor`` and site admins add
``institution/person#Administrator``. NRPS (and some platforms) use short names (``Instructor``), which LTI
Core §A.2.3.1 allows for context roles; both forms are accepted.
"""

from __future__ import annotations

from collections.abc import Iterable

from lti_app.domain.vocab import LaunchRole

_ADMIN = {
    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
    "http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin",
}
_SUFFIX = {
    "Instructor": LaunchRole.TEACHER,
    "Instructor#TeachingAssistant": LaunchRole.TA,
    "TeachingAssistant": LaunchRole.TA,
    "ContentDeveloper": LaunchRole.DESIGNER,
    "Learner": LaunchRole.STUDENT,
    "Mentor": LaunchRole.OBSERVER,
    "Administrator": LaunchRole.ADMIN,
}


def map_role(uri: str) -> LaunchRole | None:
    uri = uri.strip()
    if uri in _ADMIN:
        return LaunchRole.ADMIN
    if uri.startswith("http://purl.imsglobal.org/vocab/lis/v2/institution/person#"):
        # Institution roles other than Administrator (Faculty, Staff, Student...) do not grant course access.
        return None
    if uri.startswith("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"):
        return LaunchRole.TA
    for prefix in ("http://purl.imsglobal.org/vocab/lis/v2/membership#", "http://purl.imsglobal.org/vocab/lis/v2/membership/"):
        if uri.startswith(prefix):
            uri = uri[len(prefix):]
            break
    if uri.startswith("Learner#"):
        return LaunchRole.STUDENT
    if uri.startswith("Mentor#"):
        return LaunchRole.OBSERVER
    return _SUFFIX.get(uri)


def map_roles(uris: Iterable[str]) -> tuple[str, ...]:
    """Distinct coarse roles in a stable order (admin, teacher, ta, designer, student, observer)."""
    found = {r for r in (map_role(u) for u in uris) if r is not None}
    return tuple(r.value for r in LaunchRole if r in found)
