"""Pushed roster events (Canvas Live Events, the Moodle companion plugin) parsed into roster commands.

Pure: no Flask, no database. The web handler parses an event to refuse malformed input before anything is
stored (400 with a reason); the inbox worker parses the stored payload again and applies the commands. Parsing
is deterministic, so both see the same thing.

Identities. Canvas events carry Canvas's numeric ids, often in their global form (``shard * 10**13 + local``);
they are normalised to local ids and matched with the ids Caseload captured from launches (custom fields) and
NRPS ``rlid`` messages (``Person.lms_user_id``, ``Course.lms_course_id``, ``Section.lms_section_id``). Moodle's
LTI ``sub`` and context id *are* its numeric user and course ids, so Moodle events name people and courses by
their LTI identities directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lti_app.domain.canvas import local_id
from lti_app.domain.vocab import EnrollmentRole, EnrollmentState

MAX_EVENT_AGE_DAYS = 400
"""An event_time further in the past than this, or more than a day in the future, is refused as malformed."""


class EventInvalid(ValueError):
    """The event cannot be understood; the message says why (safe to show the sender: no payload values)."""


# ---------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UserFacts:
    """What an event says about a person (only the fields it carries are set)."""

    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    sis_id: str | None = None


@dataclass(frozen=True)
class EnrollmentObserved:
    """One enrollment, as the LMS says it is now. ``section_ref`` None means the course-wide section."""

    course_ref: str
    user_ref: str
    role: str
    state: str
    section_ref: str | None = None
    lms_enrollment_id: str | None = None
    staff: bool = False
    user: UserFacts | None = None
    create_missing: bool = True
    """False: only change an existing row (a role the LMS says the person no longer has)."""


@dataclass(frozen=True)
class EnrollmentStateObserved:
    """Canvas ``enrollment_state_*``: the state of an enrollment known by its LMS id."""

    lms_enrollment_id: str
    state: str


@dataclass(frozen=True)
class UserEnrollmentsEnded:
    """Every enrollment of one person (in one course, or everywhere when ``course_ref`` is None) ends."""

    user_ref: str
    state: str
    course_ref: str | None = None


@dataclass(frozen=True)
class UserObserved:
    user_ref: str
    facts: UserFacts
    create: bool = False
    staff: bool = False


@dataclass(frozen=True)
class SectionObserved:
    course_ref: str
    section_ref: str
    name: str | None = None
    sis_id: str | None = None
    ended: bool = False


@dataclass(frozen=True)
class CourseObserved:
    course_ref: str
    title: str | None = None
    enrollments_state: str | None = None
    """When the course was deleted or concluded: the state every enrollment of the course takes."""


Command = (EnrollmentObserved | EnrollmentStateObserved | UserEnrollmentsEnded | UserObserved | SectionObserved
           | CourseObserved)


@dataclass(frozen=True)
class ParsedEvent:
    lms: str
    event_type: str
    event_time: dt.datetime
    dedupe_key: str
    commands: list[Command] = field(default_factory=list)
    ignored: str | None = None
    """Why the event changes nothing in Caseload (an event type it does not use); recorded, not applied."""


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------

def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise EventInvalid("an id or name field has the wrong type")
    text = str(value).strip()
    return text or None


def _id(value: Any, what: str, *, canvas: bool) -> str:
    text = _str(value)
    if text is None:
        raise EventInvalid(f"the event has no {what}")
    if canvas:
        if not (text.isascii() and text.isdigit()) or len(text) > 30:
            raise EventInvalid(f"the {what} is not a Canvas id")
        return local_id(text)
    if len(text) > 255:
        raise EventInvalid(f"the {what} is too long")
    return text


def _time(value: Any, now: dt.datetime) -> dt.datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            when = dt.datetime.fromtimestamp(float(value), tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise EventInvalid("the event time is not a valid time") from None
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise EventInvalid("the event time is not an ISO 8601 time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    else:
        raise EventInvalid("the event has no event time")
    when = when.astimezone(dt.UTC)
    if when > now + dt.timedelta(days=1) or when < now - dt.timedelta(days=MAX_EVENT_AGE_DAYS):
        raise EventInvalid("the event time is too far from now")
    return when


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EventInvalid(f"the event has no {what} object")
    return value


def canonical_digest(*parts: Any) -> str:
    """A stable digest of JSON values (sorted keys, no whitespace): redeliveries of one event hash alike."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Canvas Live Events (Caliper-free "Canvas" format)
# ---------------------------------------------------------------------------------------------------------------

CANVAS_ROLE = {
    "StudentEnrollment": EnrollmentRole.STUDENT,
    "TeacherEnrollment": EnrollmentRole.TEACHER,
    "TaEnrollment": EnrollmentRole.TA,
    "ObserverEnrollment": EnrollmentRole.OBSERVER,
    "DesignerEnrollment": EnrollmentRole.DESIGNER,
}
STAFF_ROLES = {EnrollmentRole.TEACHER.value, EnrollmentRole.TA.value, EnrollmentRole.DESIGNER.value}

# Canvas enrollment workflow states -> Caseload's. Only "active" gives access: an invited teacher who has not
# accepted, a concluded ("completed") or rejected enrollment does not.
CANVAS_ENROLLMENT_STATE = {
    "active": EnrollmentState.ACTIVE,
    "invited": EnrollmentState.INACTIVE,
    "creation_pending": EnrollmentState.INACTIVE,
    "inactive": EnrollmentState.INACTIVE,
    "completed": EnrollmentState.INACTIVE,
    "rejected": EnrollmentState.INACTIVE,
    "pending_active": EnrollmentState.INACTIVE,
    "pending_invited": EnrollmentState.INACTIVE,
    "deleted": EnrollmentState.DELETED,
}

CANVAS_EVENTS = frozenset({
    "enrollment_created", "enrollment_updated", "enrollment_state_created", "enrollment_state_updated",
    "user_created", "user_updated", "course_section_created", "course_section_updated", "course_created",
    "course_updated",
})


def parse_canvas(payload: Any, now: dt.datetime) -> ParsedEvent:
    """A verified Live Events payload (``{"metadata": {...}, "body": {...}}``) as commands."""
    event = _mapping(payload, "event")
    metadata = _mapping(event.get("metadata"), "metadata")
    body = _mapping(event.get("body"), "body")
    name = _str(metadata.get("event_name"))
    if name is None or not re.fullmatch(r"[a-z_]{1,100}", name):
        raise EventInvalid("the event has no valid metadata.event_name")
    when = _time(metadata.get("event_time"), now)
    key = "canvas:" + canonical_digest(name, metadata.get("event_time"), body)
    parsed = ParsedEvent(lms="canvas", event_type=name, event_time=when, dedupe_key=key)
    if name not in CANVAS_EVENTS:
        return _ignored(parsed, f"Caseload does not use '{name}' events")
    if name in ("enrollment_created", "enrollment_updated"):
        return _with(parsed, _canvas_enrollment(body, metadata))
    if name.startswith("enrollment_state_"):
        state = _str(body.get("state"))
        if state not in CANVAS_ENROLLMENT_STATE:
            raise EventInvalid("the enrollment state is missing or unknown")
        return _with(parsed, [EnrollmentStateObserved(
            lms_enrollment_id=_id(body.get("enrollment_id"), "enrollment_id", canvas=True),
            state=CANVAS_ENROLLMENT_STATE[state].value)])
    if name in ("user_created", "user_updated"):
        user_ref = _id(body.get("user_id"), "user_id", canvas=True)
        facts = UserFacts(name=_str(body.get("name")), sis_id=_str(body.get("user_sis_id")))
        commands: list[Command] = [UserObserved(user_ref=user_ref, facts=facts)]
        if _str(body.get("workflow_state")) == "deleted":
            commands.append(UserEnrollmentsEnded(user_ref=user_ref, state=EnrollmentState.DELETED.value))
        return _with(parsed, commands)
    if name.startswith("course_section_"):
        return _with(parsed, [SectionObserved(
            course_ref=_id(body.get("course_id"), "course_id", canvas=True),
            section_ref=_id(body.get("course_section_id"), "course_section_id", canvas=True),
            name=_str(body.get("name")), sis_id=_str(body.get("sis_source_id")),
            ended=_str(body.get("workflow_state")) == "deleted")])
    # course_created / course_updated
    workflow = _str(body.get("workflow_state"))
    ends = {"deleted": EnrollmentState.DELETED.value, "completed": EnrollmentState.INACTIVE.value}.get(workflow or "")
    return _with(parsed, [CourseObserved(course_ref=_id(body.get("course_id"), "course_id", canvas=True),
                                         title=_str(body.get("name")), enrollments_state=ends)])


def _canvas_enrollment(body: Mapping[str, Any], metadata: Mapping[str, Any]) -> list[Command]:
    kind = _str(body.get("type"))
    if kind == "StudentViewEnrollment":
        return []  # Canvas's "test student": not a person Caseload tracks
    if kind not in CANVAS_ROLE:
        raise EventInvalid("the enrollment type is missing or unknown")
    workflow = _str(body.get("workflow_state"))
    if workflow not in CANVAS_ENROLLMENT_STATE:
        raise EventInvalid("the enrollment workflow_state is missing or unknown")
    role = CANVAS_ROLE[kind].value
    section = body.get("course_section_id")
    return [EnrollmentObserved(
        course_ref=_id(body.get("course_id") or metadata.get("context_id"), "course_id", canvas=True),
        user_ref=_id(body.get("user_id"), "user_id", canvas=True),
        section_ref=_id(section, "course_section_id", canvas=True) if section not in (None, "") else None,
        role=role, state=CANVAS_ENROLLMENT_STATE[workflow].value,
        lms_enrollment_id=_id(body.get("enrollment_id"), "enrollment_id", canvas=True)
        if body.get("enrollment_id") not in (None, "") else None,
        staff=role in STAFF_ROLES,
        user=UserFacts(name=_str(body.get("user_name"))))]


# ---------------------------------------------------------------------------------------------------------------
# Moodle companion plugin (integrations/moodle/local_caseload), format caseload.moodle-event/1
# ---------------------------------------------------------------------------------------------------------------

MOODLE_SCHEMA = "caseload.moodle-event/1"
# Moodle role archetypes -> Caseload roles ("teacher" is Moodle's non-editing teacher).
MOODLE_ROLE = {
    "editingteacher": EnrollmentRole.TEACHER,
    "teacher": EnrollmentRole.TA,
    "student": EnrollmentRole.STUDENT,
    "manager": EnrollmentRole.DESIGNER,
    "coursecreator": EnrollmentRole.DESIGNER,
}
MOODLE_EVENTS = {
    "\\core\\event\\user_enrolment_created": "user_enrolment_created",
    "\\core\\event\\user_enrolment_updated": "user_enrolment_updated",
    "\\core\\event\\user_enrolment_deleted": "user_enrolment_deleted",
    "\\core\\event\\role_assigned": "role_assigned",
    "\\core\\event\\role_unassigned": "role_unassigned",
    "\\core\\event\\user_updated": "user_updated",
    "\\core\\event\\user_deleted": "user_deleted",
    "\\core\\event\\course_deleted": "course_deleted",
}


def _moodle_user(value: Any) -> tuple[str, UserFacts]:
    user = _mapping(value, "user")
    ref = _id(user.get("id"), "user id", canvas=False)
    first, last = _str(user.get("firstname")), _str(user.get("lastname"))
    name = " ".join(p for p in (first, last) if p) or None
    return ref, UserFacts(name=name, given_name=first, family_name=last, email=_str(user.get("email")),
                          sis_id=_str(user.get("idnumber")))


def _moodle_roles(value: Any) -> set[str]:
    if value is None:
        return set()
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise EventInvalid("enrolment.roles must be a list of role archetypes")
    return {MOODLE_ROLE[r].value for r in value if r in MOODLE_ROLE}


def parse_moodle(payload: Any, now: dt.datetime) -> ParsedEvent:
    event = _mapping(payload, "event")
    if event.get("schema") != MOODLE_SCHEMA:
        raise EventInvalid(f"the event is not in the {MOODLE_SCHEMA} format")
    uid = _str(event.get("event_uid"))
    if uid is None or not re.fullmatch(r"[A-Za-z0-9._:-]{8,100}", uid):
        raise EventInvalid("the event has no valid event_uid")
    raw_name = _str(event.get("event_name"))
    if raw_name is None or len(raw_name) > 100:
        raise EventInvalid("the event has no event_name")
    when = _time(event.get("event_time"), now)
    short = MOODLE_EVENTS.get(raw_name)
    parsed = ParsedEvent(lms="moodle", event_type=short or raw_name.rsplit("\\", 1)[-1][:100], event_time=when,
                         dedupe_key="moodle:" + uid)
    if short is None:
        return _ignored(parsed, f"Caseload does not use '{raw_name}' events")
    if short == "course_deleted":
        course = _mapping(event.get("course"), "course")
        return _with(parsed, [CourseObserved(course_ref=_id(course.get("id"), "course id", canvas=False),
                                             enrollments_state=EnrollmentState.DELETED.value)])
    user_ref, facts = _moodle_user(event.get("user"))
    if short == "user_updated":
        return _with(parsed, [UserObserved(user_ref=user_ref, facts=facts)])
    if short == "user_deleted":
        return _with(parsed, [UserEnrollmentsEnded(user_ref=user_ref, state=EnrollmentState.DELETED.value)])
    course_ref = _id(_mapping(event.get("course"), "course").get("id"), "course id", canvas=False)
    enrolment = _mapping(event.get("enrolment"), "enrolment")
    status = _str(enrolment.get("status"))
    if status not in ("active", "suspended", "none"):
        raise EventInvalid("enrolment.status must be active, suspended or none")
    roles = _moodle_roles(enrolment.get("roles"))
    changed_role = None
    if short in ("role_assigned", "role_unassigned"):
        archetype = _str(_mapping(event.get("role"), "role").get("archetype"))
        changed_role = MOODLE_ROLE[archetype].value if archetype in MOODLE_ROLE else None
        if changed_role is None and not roles:
            return _ignored(parsed, "the role is not one Caseload maps (teacher, non-editing teacher, student, manager)")
    if status == "none" or short == "user_enrolment_deleted":
        commands: list[Command] = [UserEnrollmentsEnded(user_ref=user_ref, course_ref=course_ref,
                                                        state=EnrollmentState.DELETED.value)]
        if changed_role is not None:
            # Record the removal even if the enrolment was never seen (delete before create).
            commands.append(EnrollmentObserved(course_ref=course_ref, user_ref=user_ref, role=changed_role,
                                               state=EnrollmentState.DELETED.value,
                                               staff=changed_role in STAFF_ROLES))
        return _with(parsed, commands)
    state = EnrollmentState.ACTIVE.value if status == "active" else EnrollmentState.INACTIVE.value
    commands = []
    staff = bool(roles & STAFF_ROLES)
    if roles:
        commands.append(UserObserved(user_ref=user_ref, facts=facts, create=True, staff=staff))
    for role in sorted(roles):
        commands.append(EnrollmentObserved(course_ref=course_ref, user_ref=user_ref, role=role, state=state,
                                           staff=role in STAFF_ROLES))
    gone = {r.value for r in EnrollmentRole} - roles
    if changed_role is not None and changed_role not in roles:
        commands.append(EnrollmentObserved(course_ref=course_ref, user_ref=user_ref, role=changed_role,
                                           state=EnrollmentState.DELETED.value, staff=changed_role in STAFF_ROLES))
        gone.discard(changed_role)
    for role in sorted(gone):
        commands.append(EnrollmentObserved(course_ref=course_ref, user_ref=user_ref, role=role,
                                           state=EnrollmentState.DELETED.value, create_missing=False))
    return _with(parsed, commands)


def _with(parsed: ParsedEvent, commands: list[Command]) -> ParsedEvent:
    if not commands:
        return _ignored(parsed, "the event concerns nobody Caseload tracks")
    return ParsedEvent(lms=parsed.lms, event_type=parsed.event_type, event_time=parsed.event_time,
                       dedupe_key=parsed.dedupe_key, commands=commands)


def _ignored(parsed: ParsedEvent, reason: str) -> ParsedEvent:
    return ParsedEvent(lms=parsed.lms, event_type=parsed.event_type, event_time=parsed.event_time,
                       dedupe_key=parsed.dedupe_key, ignored=reason)
