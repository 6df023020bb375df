"""Fixed vocabularies shared by the models, the rules and the views."""

from __future__ import annotations

from enum import StrEnum


class LmsFamily(StrEnum):
    CANVAS = "canvas"
    MOODLE = "moodle"
    GENERIC = "generic"


class PlatformStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"


class DeploymentStatus(StrEnum):
    ACTIVE = "active"
    PENDING = "pending"
    DISABLED = "disabled"


class KeyState(StrEnum):
    NEXT = "next"
    CURRENT = "current"
    RETIRED = "retired"


class PersonKind(StrEnum):
    STAFF = "staff"
    STUDENT = "student"


class EnrollmentRole(StrEnum):
    TEACHER = "teacher"
    TA = "ta"
    STUDENT = "student"
    OBSERVER = "observer"
    DESIGNER = "designer"


class EnrollmentState(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"


class RosterSource(StrEnum):
    LAUNCH = "launch"
    WEBHOOK = "webhook"
    NRPS = "nrps"
    ONEROSTER = "oneroster"
    DEMO = "demo"


class LaunchRole(StrEnum):
    """Coarse role of a person in one launch, mapped from LTI role URIs (LTI Core 1.3 §A.2)."""

    ADMIN = "admin"
    TEACHER = "teacher"
    TA = "ta"
    DESIGNER = "designer"
    STUDENT = "student"
    OBSERVER = "observer"


class GrantRole(StrEnum):
    """School roles Caseload grants itself (the LMS does not know them)."""

    CASE_MANAGER = "case_manager"
    COUNSELOR = "counselor"
    PROVIDER = "provider"  # related-service provider
    SCHOOL_ADMIN = "school_admin"
    DISTRICT_ADMIN = "district_admin"


class PlanType(StrEnum):
    IEP = "IEP"
    P504 = "504"
    ELL = "ELL"
    HEALTH = "health"
    BEHAVIOUR = "behaviour"
    MTSS = "MTSS"


class PlanStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ENDED = "ended"


class VersionStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    SUPERSEDED = "superseded"


class AccommodationCategory(StrEnum):
    PRESENTATION = "presentation"
    RESPONSE = "response"
    SETTING = "setting"
    TIMING = "timing"  # timing and scheduling


class AppliesTo(StrEnum):
    CLASSROOM = "classroom"
    TESTS = "tests"
    ALL = "all"


class NoteType(StrEnum):
    OBSERVATION = "observation"
    PARENT_CONTACT = "parent_contact"
    ACADEMIC_CONCERN = "academic_concern"
    BEHAVIOUR = "behaviour"
    OTHER = "other"


class NoteVisibility(StrEnum):
    TEAM = "team"  # the student's case manager and current teachers
    CASE_TEAM = "case_team"  # case managers and support staff only
    RESTRICTED = "restricted"  # only grants with can_see_restricted; redacted in lists


class QuestionStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class AccessAction(StrEnum):
    VIEW = "view"
    CREATE = "create"
    UPDATE = "update"
    EXPORT = "export"
    VIEW_RESTRICTED = "view_restricted"
    DENIED = "denied"


class InboundSource(StrEnum):
    CANVAS = "canvas"
    MOODLE = "moodle"


class InboundStatus(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"  # cannot be applied yet (unknown course/user); retried with backoff
    APPLIED = "applied"
    IGNORED = "ignored"
    FAILED = "failed"  # parked after the bounded number of attempts; visible to admins


class AdminAction(StrEnum):
    """What an ``AdminEvent`` records (the administrators' own change log)."""

    GRANT_ADD = "grant.add"
    GRANT_CHANGE = "grant.change"
    GRANT_REVOKE = "grant.revoke"
    IMPORT_APPLY = "import.apply"
    RETENTION_PURGE = "retention.purge"
    DEPLOYMENT_APPROVE = "deployment.approve"
    DEPLOYMENT_DISABLE = "deployment.disable"
