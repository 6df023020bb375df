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
    STAFF = "staff"
    """Staff of the school without a teaching or admin role in this launch: institution Faculty, Staff or
    Instructor (Canvas account navigation), a course-level ``membership#Administrator``. Makes the person a staff
    Person (grants can be given to them); gives no access to any student by itself."""


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
    DISCARDED = "discarded"  # a draft the case manager abandoned; kept for the record, never shown to teachers


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
    PLAN_CASE_MANAGER = "plan.case_manager"  # an administrator assigned or changed a plan's case manager
    REGISTRATION_LINK = "platform.registration_link"  # a one-time Dynamic Registration link was created
    FRAME_ORIGIN_ADD = "platform.frame_origin.add"  # an administrator allowed an LMS page origin to frame Caseload
    FRAME_ORIGIN_REMOVE = "platform.frame_origin.remove"


class ServiceType(StrEnum):
    """Related services and specialised instruction on a plan (IDEA 34 CFR 300.34, 300.39)."""

    SPEECH_LANGUAGE = "speech_language"
    OCCUPATIONAL_THERAPY = "occupational_therapy"
    PHYSICAL_THERAPY = "physical_therapy"
    COUNSELING = "counseling"
    SPECIALIZED_INSTRUCTION = "specialized_instruction"
    TUTORING = "tutoring"
    OTHER = "other"


class ServicePeriod(StrEnum):
    WEEK = "week"
    MONTH = "month"


class Attendance(StrEnum):
    """How a scheduled service session went; only ``delivered`` counts towards the required minutes."""

    DELIVERED = "delivered"
    STUDENT_ABSENT = "student_absent"
    PROVIDER_ABSENT = "provider_absent"  # the school missed it: a make-up session is owed


class ContactMethod(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    IN_PERSON = "in_person"
    VIDEO = "video"
    LETTER = "letter"
    MESSAGE = "message"


class ContactDirection(StrEnum):
    IN = "in"  # the guardian contacted the school
    OUT = "out"  # the school contacted the guardian


class MeetingType(StrEnum):
    IEP_ANNUAL = "iep_annual"
    IEP_INITIAL = "iep_initial"
    IEP_AMENDMENT = "iep_amendment"
    REEVALUATION = "reevaluation"
    ELIGIBILITY = "eligibility"
    """The group determines eligibility on the completed initial evaluation (34 CFR 300.306); starts the 30 days to
    the initial IEP meeting (300.323(c)(1))."""
    PLAN_504 = "504_review"
    MANIFESTATION = "manifestation"
    PARENT_CONFERENCE = "parent_conference"
    OTHER = "other"


class MeetingStatus(StrEnum):
    SCHEDULED = "scheduled"
    HELD = "held"
    CANCELLED = "cancelled"


class ReferralType(StrEnum):
    COUNSELING = "counseling"
    THERAPY = "therapy"
    TUTORING = "tutoring"
    OUTSIDE_AGENCY = "outside_agency"
    EVALUATION = "evaluation"


class ReferralStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    DONE = "done"
