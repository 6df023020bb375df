"""Accommodations applied in the LMS (issue #12): the plan's LMS rule, the connection to the LMS's API, the quizzes
Caseload has seen, the per-student state the last reconcile found, and the append-only ledger of every change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from lti_app.db import Base, JSONType, UTCDateTime, utcnow
from lti_app.domain.lms_actions import LmsRule
from lti_app.models.plans import PlanVersion


class AppliedAccommodation(Base):
    """The structured rule of one plan version that Caseload applies in the LMS (``domain.lms_actions.LmsRule``).

    One per plan version at most; like the version's accommodations it is copied into a new draft and immutable
    once the version is active. Extra time is *either* a multiplier *or* minutes."""

    __tablename__ = "lms_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id", ondelete="CASCADE"), unique=True)
    multiplier: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    extra_minutes: Mapped[int | None] = mapped_column(Integer)
    extra_attempts: Mapped[int | None] = mapped_column(Integer)
    reduce_choices: Mapped[bool] = mapped_column(Boolean, default=False)
    """New Quizzes only: one wrong option removed from multiple choice questions with four or more options."""
    window_guard: Mapped[bool] = mapped_column(Boolean, default=False)
    """Extend the student's own availability window when it closes before they could use their time."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    version: Mapped[PlanVersion] = relationship(backref=backref("lms_rule", uselist=False, passive_deletes=True))
    """``PlanVersion.lms_rule`` (the backref) lets the plan pages show the rule next to the accommodations."""

    @property
    def rule(self) -> LmsRule:
        return LmsRule(self.multiplier, self.extra_minutes, self.extra_attempts, bool(self.reduce_choices),
                       bool(self.window_guard))


class LmsConnection(Base):
    """Caseload's access to one platform's API (Canvas REST through an OAuth2 developer key authorized by an
    admin; Moodle web services through a token of the companion plugin's service). Secrets are encrypted with
    the data keys. ``enabled`` is the administrator's switch: nothing is written to the LMS while it is off."""

    __tablename__ = "lms_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    """canvas_oauth | moodle_token."""
    api_base_url: Mapped[str] = mapped_column(String(1000))
    """Canvas: https://district.instructure.com; Moodle: the site's wwwroot."""
    client_id: Mapped[str | None] = mapped_column(String(255))
    """Canvas: the API developer key's client id."""
    client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Canvas: the refresh token; Moodle: the web service token."""
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    scopes: Mapped[list] = mapped_column(JSONType, default=list)
    """Scopes (Canvas) or functions (Moodle) granted, as last reported."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    enabled_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    health: Mapped[str] = mapped_column(String(20), default="unknown")
    """unknown | ok | reauthorize (401: an admin must authorize again) | down (unreachable or 5xx)."""
    health_detail: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    enrollments_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Student enrollments changed after this instant have not been looked at yet (``triggers.new_enrollments``)."""
    events_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Quiz events (Canvas Live Events, the Moodle plugin) received after this instant are not handled yet."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LmsQuiz(Base):
    """A quiz as the LMS last reported it. ``gone_at`` is set when a reconcile no longer finds it."""

    __tablename__ = "lms_quizzes"
    __table_args__ = (UniqueConstraint("course_id", "kind", "lms_quiz_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    """classic | new | moodle (``QuizKind``)."""
    lms_quiz_id: Mapped[str] = mapped_column(String(255))
    """Canvas quiz id (Classic), assignment id (New Quizzes), Moodle quiz instance id."""
    assignment_id: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    time_limit_seconds: Mapped[int | None] = mapped_column(Integer)
    allowed_attempts: Mapped[int | None] = mapped_column(Integer)
    opens_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closes_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    gone_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LmsQuizState(Base):
    """For one plan student on one quiz: what the plan requires and what the LMS reported at the last reconcile
    (the verification report reads this). ``status``: ok | gap | failed | teacher (a teacher's setting is at least
    as generous) | unverified (the LMS cannot be read back: New Quizzes)."""

    __tablename__ = "lms_quiz_states"
    __table_args__ = (UniqueConstraint("quiz_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("lms_quizzes.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    required: Mapped[dict] = mapped_column(JSONType, default=dict)
    lms: Mapped[dict] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LmsActionLedger(Base):
    """Every change Caseload made, declined or failed to make in an LMS. Append-only: rows are never updated or
    deleted (ids stay when the course, quiz or person is later removed, through the copied LMS ids)."""

    __tablename__ = "lms_action_ledger"
    __table_args__ = (
        Index("ix_lms_action_ledger_quiz_person_field", "quiz_id", "person_id", "field"),
        Index("ix_lms_action_ledger_student_at", "student_id", "at"),
        Index("ix_lms_action_ledger_course_at", "course_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"))
    lms_course_id: Mapped[str] = mapped_column(String(255), default="")
    quiz_id: Mapped[int | None] = mapped_column(ForeignKey("lms_quizzes.id", ondelete="SET NULL"))
    lms_quiz_id: Mapped[str] = mapped_column(String(255), default="")
    quiz_title: Mapped[str] = mapped_column(String(500), default="")
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    lms_user_id: Mapped[str] = mapped_column(String(255), default="")
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="SET NULL"))
    field: Mapped[str] = mapped_column(String(30))
    before: Mapped[dict] = mapped_column(JSONType, default=dict)
    """``{"value": ...}`` so that null (nothing set) is distinguishable from a missing row."""
    after: Mapped[dict] = mapped_column(JSONType, default=dict)
    outcome: Mapped[str] = mapped_column(String(20))
    """applied | kept | withdrawn | failed (``Outcome``)."""
    reason: Mapped[str] = mapped_column(String(30))
    """plan | enrollment | quiz | sweep | manual: what started the reconcile."""
    plan_version_id: Mapped[int | None] = mapped_column(ForeignKey("plan_versions.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(255), default="")
    request_id: Mapped[str] = mapped_column(String(64), default="")
    """Caseload's id for the LMS call (sent as X-Request-Id), shared by every row one call wrote."""
    lms_status: Mapped[int | None] = mapped_column(Integer)
    lms_answer: Mapped[str] = mapped_column(Text, default="")
    """The LMS's answer for this student (truncated), e.g. a New Quizzes ``failed[]`` error."""
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LmsLedgerIntent(Base):
    """A change Caseload is about to send to the LMS, committed before the call and removed in the same transaction
    as the ledger row that records the LMS's answer. One left behind means the caller died (or the LMS stopped
    answering) between the call and that commit: the next reconcile reads the LMS, and when the LMS has exactly this
    value it appends the ledger row then (the change is Caseload's, not a teacher's); otherwise the write did not
    land and it is decided again. Not the ledger: rows here are removed once settled; the ledger stays append-only."""

    __tablename__ = "lms_ledger_intents"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("lms_quizzes.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(30))
    before: Mapped[dict] = mapped_column(JSONType, default=dict)
    after: Mapped[dict] = mapped_column(JSONType, default=dict)
    outcome: Mapped[str] = mapped_column(String(20))
    """applied | withdrawn: what the ledger row will say once the LMS has the value."""
    reason: Mapped[str] = mapped_column(String(30))
    plan_version_id: Mapped[int | None] = mapped_column(ForeignKey("plan_versions.id", ondelete="SET NULL"))
    event: Mapped[str] = mapped_column(String(255), default="")
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LmsCourseBacklog(Base):
    """The LMS work of one course as the last reconcile left it, for the sync health page: waiting (the LMS was
    down or refused Caseload's authorization: the task retries with backoff, the nightly sweep repeats it) since
    when, failing (the LMS answered but refused some students' changes) since when, and the last reconcile that ran
    through. One row per course, updated in place (the ledger keeps every change; this is only the backlog)."""

    __tablename__ = "lms_course_backlog"
    __table_args__ = (Index("ix_lms_course_backlog_platform", "platform_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), unique=True)
    waiting_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """The first attempt that could not reach the LMS (or was refused its authorization) in the current run of
    them; None once a reconcile ran through."""
    waiting_reason: Mapped[str] = mapped_column(String(20), default="")
    """down | reauthorize."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts since ``waiting_since``."""
    failing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """The first reconcile in a row whose changes the LMS refused for some students."""
    failed_changes: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    """In words, without tokens or URLs' query strings (``services/lms_actions/backlog.in_words``)."""
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """The last reconcile that ran through (it read the course and wrote what was missing)."""
    requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    """Work asked for this course and not done yet (``services/lms_actions/requests``), kept here as well as in the
    Celery message so that a Redis that loses its data loses no work: the 5-minute beat job queues again a request
    older than a few minutes. When it is due (the nightly sweep's spread puts it up to two hours ahead); the newest
    request's. Cleared by the reconcile that does it, unless a newer request arrived meanwhile."""
    requested_reason: Mapped[str] = mapped_column(String(30), default="")
    """plan | enrollment | quiz | sweep | manual: the ledger's reason when the request is queued again."""
    requested_person_ids: Mapped[list | None] = mapped_column(JSONType)
    """The students the pending requests are for; None: the whole course."""


__all__ = ["AppliedAccommodation", "LmsActionLedger", "LmsConnection", "LmsCourseBacklog", "LmsQuiz",
           "LmsQuizState"]
