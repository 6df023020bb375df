"""Append-only audit: every read of a student record, and the FERPA disclosure ledger."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, JSONType, UTCDateTime, utcnow


class AccessEvent(Base):
    """One access (or refused access) to a student's record, with the basis the access policy gave.

    Append-only: the application never updates or deletes these rows (FERPA 34 CFR 99.32, IDEA 300.614)."""

    __tablename__ = "access_events"
    __table_args__ = (
        Index("ix_access_events_student_at", "student_id", "at"),
        Index("ix_access_events_actor_at", "actor_id", "at"),
        Index("ix_access_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(30))
    allowed: Mapped[bool] = mapped_column(default=True)
    basis: Mapped[str] = mapped_column(String(500))
    """Why the access was allowed (or refused): "teacher enrollment in Algebra I (Period 2)", "caseload"."""
    context: Mapped[str] = mapped_column(String(500), default="")
    """What was accessed: a page or record reference (never note text)."""
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Disclosure(Base):
    """A record that left the school (FERPA 34 CFR 99.32 record of disclosures)."""

    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int | None] = mapped_column(ForeignKey("students.id", ondelete="SET NULL"), index=True)
    disclosed_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    recipient: Mapped[str] = mapped_column(String(500))
    purpose: Mapped[str] = mapped_column(String(500))
    legal_basis: Mapped[str] = mapped_column(String(200))
    records: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AdminEvent(Base):
    """An administrative change (a grant given or revoked, an import applied, a retention purge, a deployment
    approved): who did it, through which door (web or CLI), to what, and the counts. Append-only, like the
    access log; it holds ids and counts, never note text or file contents."""

    __tablename__ = "admin_events"
    __table_args__ = (Index("ix_admin_events_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"), index=True)
    """The administrator (None for the command line, where the operator is the server's own user)."""
    via: Mapped[str] = mapped_column(String(10), default="web")
    action: Mapped[str] = mapped_column(String(40))
    """``AdminAction`` value: grant.add, grant.revoke, import.apply, retention.purge, deployment.approve..."""
    target_type: Mapped[str] = mapped_column(String(30), default="")
    target_id: Mapped[int | None] = mapped_column()
    summary: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
