"""The durable inbox of pushed roster events, and the record of reconciliation runs."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, JSONType, UTCDateTime, utcnow


class InboundEvent(Base):
    """A webhook event, stored before it is acknowledged. ``dedupe_key`` makes redelivery a no-op."""

    __tablename__ = "inbound_events"
    __table_args__ = (
        Index("ix_inbound_events_status_next", "status", "next_attempt_at"),
        Index("ix_inbound_events_platform_received", "platform_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(20))
    event_type: Mapped[str] = mapped_column(String(100))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    event_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    payload: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SyncRun(Base):
    """One roster reconciliation (NRPS or OneRoster) and what it changed."""

    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_platform_started", "platform_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    """nrps | oneroster_full | oneroster_delta"""
    trigger: Mapped[str] = mapped_column(String(20), default="schedule")
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    cursor: Mapped[str | None] = mapped_column(String(100))
    """OneRoster: the dateLastModified watermark this run reached."""
