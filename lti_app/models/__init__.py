"""All mapped classes, imported here so that ``Base.metadata`` is complete (Alembic, tests)."""

from lti_app.models.alerts import Alert, AlertPlacement, AlertPreference, AlertState, AlertWatch
from lti_app.models.audit import AccessEvent, AdminEvent, Disclosure
from lti_app.models.casework import (
    Contact,
    CrisisEntry,
    EvidenceRevision,
    Meeting,
    Referral,
    ReferralStatusChange,
    ServiceRequirement,
    ServiceSession,
)
from lti_app.models.goals import Goal, ProgressPoint, ProgressReport, ProgressReportGoal, ReportingPeriod, SchoolClosure
from lti_app.models.inbox import InboundEvent, SyncRun
from lti_app.models.lms_actions import (
    AppliedAccommodation,
    LmsActionLedger,
    LmsConnection,
    LmsCourseBacklog,
    LmsLedgerIntent,
    LmsQuiz,
    LmsQuizState,
)
from lti_app.models.notes import CaseNote, CaseNoteRevision, NoteDraft, Question
from lti_app.models.plans import (
    Accommodation,
    Acknowledgement,
    DeadlineCompletion,
    MeetingPlanDate,
    Plan,
    PlanVersion,
    Student,
    StudentLink,
)
from lti_app.models.practice import PracticeQuiz, PracticeQuizOverride
from lti_app.models.roster import Course, Enrollment, Person, RoleGrant, Section
from lti_app.models.tenancy import (
    Deployment,
    LaunchStateEntry,
    Platform,
    PlatformFrameOrigin,
    PlatformKeysetCache,
    RegistrationInvite,
    ToolKey,
    UsedNonce,
)

__all__ = [
    "Alert", "AlertPlacement", "AlertPreference", "AlertState", "AlertWatch",
    "AccessEvent", "Accommodation", "Acknowledgement", "CaseNote", "CaseNoteRevision", "Course", "Deployment",
    "DeadlineCompletion", "MeetingPlanDate",
    "Disclosure", "Enrollment", "InboundEvent", "LaunchStateEntry", "NoteDraft", "Person", "Plan", "PlanVersion",
    "Platform", "PlatformFrameOrigin", "PlatformKeysetCache", "Question", "RegistrationInvite", "RoleGrant", "Section",
    "Student",
    "StudentLink", "SyncRun", "ToolKey", "UsedNonce", "AdminEvent",
    "Contact", "CrisisEntry", "EvidenceRevision", "Meeting", "Referral", "ReferralStatusChange", "ServiceRequirement",
    "ServiceSession",
    "Goal", "ProgressPoint", "ProgressReport", "ProgressReportGoal", "ReportingPeriod", "SchoolClosure",
    "AppliedAccommodation", "LmsActionLedger", "LmsConnection", "LmsCourseBacklog", "LmsLedgerIntent", "LmsQuiz",
    "LmsQuizState",
    "PracticeQuiz", "PracticeQuizOverride",
]
