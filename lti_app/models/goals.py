"""Goals and progress monitoring (annual goals, data points, progress reports per reporting period), and the
school calendar the deadlines are computed from (reporting periods, closures).

Free text written about a student (data-point notes, report narratives and comments) is encrypted at rest with
the data keys, as case notes are. Goal wording is part of the plan and stays readable, like accommodations.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, UTCDateTime, utcnow


class ReportingPeriod(Base):
    """A marking period of a school's reporting calendar; IEP progress reports are due on ``report_due_on``
    (34 CFR 300.320(a)(3)(ii): "concurrent with the issuance of report cards")."""

    __tablename__ = "reporting_periods"
    __table_args__ = (UniqueConstraint("school", "name", "starts_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school: Mapped[str] = mapped_column(String(255), default="")
    """``Student.school`` this period belongs to; empty = district-wide. A school with periods of its own uses
    those instead of the district's."""
    name: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    report_due_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SchoolClosure(Base):
    """Days without school (breaks, holidays, staff days): not counted when deadlines are in school days."""

    __tablename__ = "school_closures"
    __table_args__ = (UniqueConstraint("school", "name", "starts_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school: Mapped[str] = mapped_column(String(255), default="")
    """Empty = district-wide; otherwise only that school is closed."""
    name: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    """Inclusive."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Goal(Base):
    """A measurable annual goal of a plan (34 CFR 300.320(a)(2)): baseline and target on one scale, so progress
    can be charted against the aim line."""

    __tablename__ = "goals"
    __table_args__ = (Index("ix_goals_plan_status", "plan_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    area: Mapped[str] = mapped_column(String(30))
    """``GoalArea``: reading, writing, mathematics, communication, ..."""
    description: Mapped[str] = mapped_column(Text)
    baseline: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    target: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    unit: Mapped[str] = mapped_column(String(40), default="")
    measurement_method: Mapped[str] = mapped_column(String(200))
    baseline_on: Mapped[dt.date] = mapped_column(Date)
    target_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="active")
    """active | met | discontinued (``GoalStatus``)."""
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    points: Mapped[list[ProgressPoint]] = relationship(back_populates="goal", cascade="all, delete-orphan")


class ProgressPoint(Base):
    """One measurement toward a goal."""

    __tablename__ = "progress_points"
    __table_args__ = (Index("ix_progress_points_goal_measured", "goal_id", "measured_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"))
    measured_on: Mapped[dt.date] = mapped_column(Date)
    value: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    note_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    """An optional short note ("probe given after a fire drill"), encrypted with the data keys."""
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision_no: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Removed (soft): kept for the record, left out of charts; who and why are in its ``EvidenceRevision`` rows."""

    goal: Mapped[Goal] = relationship(back_populates="points")


class ProgressReport(Base):
    """The periodic report to parents on a plan's goals for one reporting period: a draft until the case
    manager makes it final; a final report is not changed again."""

    __tablename__ = "progress_reports"
    __table_args__ = (UniqueConstraint("plan_id", "period_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"))
    period_id: Mapped[int] = mapped_column(ForeignKey("reporting_periods.id", ondelete="RESTRICT"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    """draft | final (``ReportStatus``)."""
    narrative_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finalized_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    finalized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    entries: Mapped[list[ProgressReportGoal]] = relationship(back_populates="report", cascade="all, delete-orphan")


class ProgressReportGoal(Base):
    """A report's rating of one goal (``ProgressRating``) with an optional comment (encrypted)."""

    __tablename__ = "progress_report_goals"
    __table_args__ = (UniqueConstraint("report_id", "goal_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("progress_reports.id", ondelete="CASCADE"))
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"), index=True)
    rating: Mapped[str | None] = mapped_column(String(30))
    comment_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)

    report: Mapped[ProgressReport] = relationship(back_populates="entries")
