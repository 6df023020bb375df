"""Casework: services and their sessions, guardian contacts, meetings, referrals and crisis entries.

Free text (summaries, outcomes, reasons, participants, crisis descriptions) is encrypted at rest with the data keys
like case notes (columns ending in ``_encrypted``). Every table holds ``student_id`` (or hangs from one that does
by a foreign key), which is how the record export and retention find them without a list to maintain."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, UTCDateTime, utcnow


class ServiceRequirement(Base):
    """A service the plan requires: so many minutes of a service type per week or month, by a provider."""

    __tablename__ = "service_requirements"
    __table_args__ = (
        CheckConstraint("minutes > 0", name="minutes_positive"),
        CheckConstraint("period IN ('week', 'month')", name="period"),
        Index("ix_service_requirements_student_id", "student_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="SET NULL"))
    service_type: Mapped[str] = mapped_column(String(30))
    """``ServiceType``: speech_language, occupational_therapy, physical_therapy, counseling, ..."""
    minutes: Mapped[int] = mapped_column(Integer)
    """Minutes required per ``period``."""
    period: Mapped[str] = mapped_column(String(10))
    """week (Monday to Sunday) | month (calendar month)."""
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"), index=True)
    """The provider as a Caseload person (may log sessions); or ``provider_name`` for someone outside the LMS."""
    provider_name: Mapped[str | None] = mapped_column(String(255))
    setting: Mapped[str] = mapped_column(String(100), default="")
    """Where it is delivered, as the plan says ("pull-out, speech room", "general education classroom")."""
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date | None] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    sessions: Mapped[list[ServiceSession]] = relationship(back_populates="requirement", passive_deletes=True,
                                                          order_by="ServiceSession.held_on")


class ServiceSession(Base):
    """One scheduled session of a service. Only ``delivered`` minutes count; ``provider_absent`` owes a make-up.
    Evidence: corrected by revisions (``EvidenceRevision``), removed only softly (``deleted_at``)."""

    __tablename__ = "service_sessions"
    __table_args__ = (
        CheckConstraint("minutes > 0", name="minutes_positive"),
        CheckConstraint("kind IN ('session', 'make_up')", name="kind"),
        Index("ix_service_sessions_requirement_held", "requirement_id", "held_on"),
        Index("ix_service_sessions_student_held", "student_id", "held_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    requirement_id: Mapped[int] = mapped_column(ForeignKey("service_requirements.id", ondelete="CASCADE"))
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    held_on: Mapped[dt.date] = mapped_column(Date)
    minutes: Mapped[int] = mapped_column(Integer)
    """Minutes delivered, or scheduled when the session did not take place."""
    attendance: Mapped[str] = mapped_column(String(20))
    """``Attendance``: delivered | student_absent | provider_absent."""
    note_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    logged_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(10), default="session", server_default="session")
    """session (counts in its week or month) | make_up (pays down minutes owed, ``domain/service_minutes``)."""
    revision_no: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Removed (soft): kept for the record, left out of the minutes; who and why are in its revisions."""

    requirement: Mapped[ServiceRequirement] = relationship(back_populates="sessions")


class Contact(Base):
    """A communication with the student's guardian (IDEA 34 CFR 300.322 expects attempts to be documented)."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_student_contacted", "student_id", "contacted_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    contacted_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(20))
    """``ContactMethod``: phone, email, in_person, video, letter, message."""
    direction: Mapped[str] = mapped_column(String(3))
    """in (the guardian reached out) | out (the school did)."""
    contact_with: Mapped[str] = mapped_column(String(255), default="")
    """Who was contacted, as the case manager writes it ("mother", "guardian")."""
    summary_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    follow_up_on: Mapped[dt.date | None] = mapped_column(Date)
    follow_up_done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision_no: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Removed (soft): kept for the record; who and why are in its revisions."""


class Meeting(Base):
    """A plan meeting (annual IEP, reevaluation, 504 review...), with the notice sent to the guardian."""

    __tablename__ = "meetings"
    __table_args__ = (Index("ix_meetings_student_meets", "student_id", "meets_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    meeting_type: Mapped[str] = mapped_column(String(30))
    meets_on: Mapped[dt.date] = mapped_column(Date)
    participants_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    notice_sent_on: Mapped[dt.date | None] = mapped_column(Date)
    """When the written notice went to the guardian (34 CFR 300.322(b), 300.503)."""
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    """scheduled | held | cancelled."""
    outcome_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision_no: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Removed (soft): kept for the record; who and why are in its revisions."""


class Referral(Base):
    """A referral to counseling, therapy, tutoring, an outside agency or an evaluation, with explicit states."""

    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_student_status", "student_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    referral_type: Mapped[str] = mapped_column(String(30))
    referred_to: Mapped[str] = mapped_column(String(255))
    """To whom (a service, agency or person, as written)."""
    reason_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    referred_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    """pending | accepted | declined | done; every change is in ``referral_status_changes``."""
    status_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    changes: Mapped[list[ReferralStatusChange]] = relationship(
        back_populates="referral", passive_deletes=True, order_by="ReferralStatusChange.id")


class ReferralStatusChange(Base):
    """The history of a referral's status (append-only), the first row being its creation as ``pending``."""

    __tablename__ = "referral_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    note_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    referral: Mapped[Referral] = relationship(back_populates="changes")


class CrisisEntry(Base):
    """A crisis or safety event (self-harm risk, threat, emergency removal). Restricted by default: only staff
    granted ``can_see_restricted`` read it, and only by an explicit, logged action."""

    __tablename__ = "crisis_entries"
    __table_args__ = (Index("ix_crisis_entries_student_occurred", "student_id", "occurred_on"),)

    restricted_tier = "visibility"
    """Read by the export: rows are included only for exporters whose tiers include the row's visibility."""

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    visibility: Mapped[str] = mapped_column(String(20), default="restricted")
    """restricted (default) | case_team."""
    description_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    actions_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    """What was done (who was called, safety plan)."""
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EvidenceRevision(Base):
    """Every saved state of a piece of evidence (a progress data point, a service session, a guardian contact, a
    meeting), copy-on-write like ``CaseNoteRevision``: a correction adds a revision with who, when and why; a removal
    adds a last revision (``action`` remove, with its reason) and stamps the row's ``deleted_at``. Nothing is
    overwritten without a trace and nothing is hard-deleted (FERPA 34 CFR 99.10 inspection covers the history).

    ``state`` is the entry's fields after the change, as encrypted JSON (it holds the same free text the entry
    encrypts). Revision 1 is the entry as first recorded; entries older than revisions get it written from their
    stored state at their first correction."""

    __tablename__ = "evidence_revisions"
    __table_args__ = (
        UniqueConstraint("entity", "entity_id", "revision_no"),
        CheckConstraint("entity IN ('progress_point', 'service_session', 'contact', 'meeting')", name="entity"),
        CheckConstraint("action IN ('create', 'edit', 'remove')", name="action"),
        Index("ix_evidence_revisions_student_id", "student_id"),
    )

    json_columns = ("state",)
    """Read by the export: these decrypted columns are JSON and are exported as objects."""

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(20))
    """progress_point | service_session | contact | meeting."""
    entity_id: Mapped[int] = mapped_column(Integer)
    revision_no: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))
    """create | edit | remove."""
    state_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    reason_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Why it was corrected or removed (required for edit and remove)."""
    edited_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    edited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
