"""Support records: the student, their plans, plan versions, accommodations and acknowledgements."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, JSONType, UTCDateTime, utcnow


class Student(Base):
    """The support record of one student, independent of any LMS. Linked to LMS Persons (one per platform)
    through StudentLink, matched by SIS id where the LMS provides one."""

    __tablename__ = "students"

    id: Mapped[int] = mapped_column(primary_key=True)
    sis_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    given_name: Mapped[str] = mapped_column(String(255))
    family_name: Mapped[str] = mapped_column(String(255))
    preferred_name: Mapped[str | None] = mapped_column(String(255))
    grade: Mapped[str | None] = mapped_column(String(20))
    school: Mapped[str | None] = mapped_column(String(255))
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    departed_on: Mapped[dt.date | None] = mapped_column(Date)
    """Set when the student leaves the district; drives retention."""
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Set when retention purged the record's detail (notes, accommodations, casework); identity, plan types
    and dates, the access log and the disclosure ledger are kept (``services/retention.py``)."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    links: Mapped[list[StudentLink]] = relationship(back_populates="student", cascade="all, delete-orphan")
    plans: Mapped[list[Plan]] = relationship(back_populates="student", cascade="all, delete-orphan")

    @property
    def display_name(self) -> str:
        return f"{self.preferred_name or self.given_name} {self.family_name}".strip()


class StudentLink(Base):
    """Links a support record to an LMS person. A person is linked to at most one student."""

    __tablename__ = "student_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), unique=True)
    linked_by: Mapped[str] = mapped_column(String(20), default="sis_id")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    student: Mapped[Student] = relationship(back_populates="links")


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (Index("ix_plans_student_status", "student_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    plan_type: Mapped[str] = mapped_column(String(20))
    """IEP | 504 | ELL | health | behaviour | MTSS (``PlanType``)."""
    status: Mapped[str] = mapped_column(String(20), default="draft")
    case_manager_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"), index=True)
    effective_on: Mapped[dt.date | None] = mapped_column(Date)
    end_on: Mapped[dt.date | None] = mapped_column(Date)
    annual_review_due: Mapped[dt.date | None] = mapped_column(Date)
    reevaluation_due: Mapped[dt.date | None] = mapped_column(Date)
    """``annual_review_due`` and ``reevaluation_due`` are set by the import, and recomputed from the deadline
    inputs below whenever those change (``services/deadlines.py``; rules in ``domain/deadlines.py``)."""
    evaluation_consent_on: Mapped[dt.date | None] = mapped_column(Date)
    """Parental consent to the initial evaluation received (34 CFR 300.301(c)(1) clock starts)."""
    last_evaluation_on: Mapped[dt.date | None] = mapped_column(Date)
    last_meeting_on: Mapped[dt.date | None] = mapped_column(Date)
    """The last IEP meeting (annual review) held."""
    reevaluation_waived_on: Mapped[dt.date | None] = mapped_column(Date)
    """Parent and district agreed a reevaluation is unnecessary (34 CFR 300.303(b)(2)); the agreement date."""
    last_504_review_on: Mapped[dt.date | None] = mapped_column(Date)
    reevaluation_waiver_covers: Mapped[dt.date | None] = mapped_column(Date)
    """The due date of the one reevaluation the waiver agreement covers; the next is due three years after it
    (``domain.deadlines.reevaluation_schedule``)."""
    eligibility_determined_on: Mapped[dt.date | None] = mapped_column(Date)
    """The child was determined eligible (needs special education): the initial IEP meeting is due within 30 days
    (34 CFR 300.323(c)(1))."""
    transition_plan_on: Mapped[dt.date | None] = mapped_column(Date)
    """The IEP meeting that adopted measurable postsecondary goals and transition services (34 CFR 300.320(b))."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    student: Mapped[Student] = relationship(back_populates="plans")
    versions: Mapped[list[PlanVersion]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="PlanVersion.version_no"
    )


class PlanVersion(Base):
    """A version of a plan. Immutable once active: changes are made in a new draft version."""

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    version_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    summary: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    activated_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))

    plan: Mapped[Plan] = relationship(back_populates="versions")
    accommodations: Mapped[list[Accommodation]] = relationship(
        back_populates="version", cascade="all, delete-orphan", order_by="Accommodation.position"
    )


class Accommodation(Base):
    __tablename__ = "accommodations"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(20))
    """presentation | response | setting | timing (``AccommodationCategory``)."""
    text: Mapped[str] = mapped_column(Text)
    """Operational wording a teacher can act on ("Tests: 1.5x time, in a separate room")."""
    applies_to: Mapped[str] = mapped_column(String(20), default="all")
    subjects: Mapped[list] = mapped_column(JSONType, default=list)
    time_multiplier: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    extra_attempts: Mapped[int | None] = mapped_column(Integer)
    catalogue_code: Mapped[str | None] = mapped_column(String(50))
    position: Mapped[int] = mapped_column(Integer, default=0)

    version: Mapped[PlanVersion] = relationship(back_populates="accommodations")


class Acknowledgement(Base):
    """Evidence that a teacher was informed of a student's accommodations (IDEA 34 CFR 300.323(d)).

    Keyed by plan version and section: a new version or a new section enrollment re-opens it."""

    __tablename__ = "acknowledgements"
    __table_args__ = (UniqueConstraint("staff_person_id", "plan_version_id", "section_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    plan_version_id: Mapped[int] = mapped_column(ForeignKey("plan_versions.id", ondelete="CASCADE"), index=True)
    """Indexed: the caseload home counts the acknowledgements of the versions in force (migration 0020)."""
    section_id: Mapped[int] = mapped_column(ForeignKey("sections.id", ondelete="CASCADE"))
    acknowledged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeadlineCompletion(Base):
    """How one compliance deadline was met: due on, held on, days late and why. Kept per occurrence and never
    overwritten by the next one, so a district can report timeliness (SPP/APR Indicator 11 for initial evaluations,
    34 CFR 300.301(d) exceptions) years later. Written by ``services/casework/deadlines.py`` when a date is recorded
    or a meeting is marked held."""

    __tablename__ = "deadline_completions"
    __table_args__ = (
        CheckConstraint("days_late >= 0", name="days_late_not_negative"),
        CheckConstraint("days_late = 0 OR late_reason IS NOT NULL", name="late_has_reason"),
        Index("ix_deadline_completions_plan_kind", "plan_id", "kind"),
        Index("ix_deadline_completions_student_id", "student_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    """``DeadlineKind``: initial_evaluation, annual_review, reevaluation, initial_iep_meeting, review_504..."""
    due_on: Mapped[dt.date] = mapped_column(Date)
    completed_on: Mapped[dt.date] = mapped_column(Date)
    days_late: Mapped[int] = mapped_column(Integer, default=0)
    """Calendar days after ``due_on`` (0: on time)."""
    late_reason: Mapped[str | None] = mapped_column(String(40))
    """``LateReason`` code, required when late."""
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id", ondelete="SET NULL"))
    """The meeting whose "held" recorded it (None: entered as a date on the deadlines page)."""
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Set when the meeting that recorded it was removed, no longer held, or its date corrected: kept in the
    history, no longer counted as meeting the deadline."""


class MeetingPlanDate(Base):
    """One plan date a held meeting set (one entry, not two): the field, its value before and after. Removing the
    meeting, correcting its date or marking it not held undoes it (``undone_at``) and puts back the date the plan
    had, unless something set the date again since. Dates only: no text, no PII."""

    __tablename__ = "meeting_plan_dates"
    __table_args__ = (Index("ix_meeting_plan_dates_meeting", "meeting_id"),
                      Index("ix_meeting_plan_dates_plan_field", "plan_id", "field"))

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(40))
    before_on: Mapped[dt.date | None] = mapped_column(Date)
    after_on: Mapped[dt.date | None] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
