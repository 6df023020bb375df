"""Alerts and reminders: what Caseload tells a person (schedule changes, deadlines, answered questions), how each
person wants to hear it, and the roster snapshot that schedule changes are detected against.

Schedule changes are found by comparing each plan student's active placements (course, section) with the snapshot
the alerts job stored the last time it ran (``AlertPlacement``), not by hooks in the roster writers: every source
(Canvas Live Events, the Moodle plugin, NRPS, OneRoster, a launch, including the launch's one-statement PostgreSQL
path) ends up in ``enrollments``, so one comparison sees them all, and the same change seen from two sources is one
difference. See ``services/alerts/detect.py``."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, JSONType, UTCDateTime, utcnow


class Alert(Base):
    """One thing one person should know. Unique on (recipient, dedupe key): the job can run again, or twice at
    once, and the person is still told once."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("recipient_id", "dedupe_key"),
        Index("ix_alerts_recipient_read", "recipient_id", "read_at"),
        Index("ix_alerts_email_status", "email_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    """schedule_change | deadline | question_answered | lms_gap (``AlertKind``)."""
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"))
    section_id: Mapped[int | None] = mapped_column(ForeignKey("sections.id", ondelete="SET NULL"))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    """What the alert is about, e.g. ``schedule:12:40:3:joined`` (student, section, placement generation,
    change) or ``deadline:2026-12-07`` (one reminder per district day)."""
    title: Mapped[str] = mapped_column(String(500))
    """Names of the change only ("Sam Alder joined Biology — Period 3"): never note text or accommodation detail,
    because the title is what goes into e-mail."""
    lines: Mapped[list] = mapped_column(JSONType, default=list)
    """Further short lines of the same kind (who has not acknowledged yet, each deadline)."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_status: Mapped[str] = mapped_column(String(10), default="pending")
    """pending | sending | sent | skipped. ``sending`` is claimed (and committed) before the SMTP conversation, so
    a crash after the send leaves it there and no later run sends it again (at most once)."""
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AlertPreference(Base):
    """What one person wants. No row: the defaults (everything in the inbox, e-mail immediately in one message
    per run of the job)."""

    __tablename__ = "alert_preferences"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True)
    email_mode: Mapped[str] = mapped_column(String(10), default="immediate")
    """immediate (one message per run of the job that found something) | daily (one digest a day at
    ``CASELOAD_ALERTS_DAILY_HOUR`` district time)."""
    schedule_change: Mapped[str] = mapped_column(String(10), default="email")
    """email (inbox and e-mail) | inbox (inbox only) | off. The same three values for each kind below."""
    deadline: Mapped[str] = mapped_column(String(10), default="email")
    question_answered: Mapped[str] = mapped_column(String(10), default="email")
    last_digest_on: Mapped[dt.date | None] = mapped_column(Date)
    """The district day the last daily digest went out."""
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AlertWatch(Base):
    """A student whose placements the alerts job follows (they have an active plan). A student seen for the first
    time is a baseline, not a change: their current classes are recorded silently."""

    __tablename__ = "alert_watches"

    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), primary_key=True)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AlertPlacement(Base):
    """The snapshot: a watched student's placement in a section as the alerts job last saw it. A placement in a
    course-wide section stands for "in the course, section unknown" and is only kept while the student has no
    specific section of that course."""

    __tablename__ = "alert_placements"
    __table_args__ = (UniqueConstraint("student_id", "section_id"),
                      Index("ix_alert_placements_course", "course_id", "left_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    section_id: Mapped[int] = mapped_column(ForeignKey("sections.id", ondelete="CASCADE"))
    joined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """When the job saw the student join; None for a placement recorded as the baseline. A joined placement marks
    the student *new* on the section teachers' panels until they acknowledge."""
    left_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    """Counts joins of this (student, section): part of the dedupe key, so leaving and re-joining alerts again."""


class AlertState(Base):
    """One row: when alerting began (the baseline), the last run, and the district day reminders were made."""

    __tablename__ = "alert_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminders_on: Mapped[dt.date | None] = mapped_column(Date)
