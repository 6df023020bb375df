"""Case notes (bodies encrypted at rest, copy-on-write revisions) and teachers' questions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, UTCDateTime, utcnow


class CaseNote(Base):
    __tablename__ = "case_notes"
    __table_args__ = (Index("ix_case_notes_student_recorded", "student_id", "recorded_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    note_type: Mapped[str] = mapped_column(String(30))
    recorded_on: Mapped[dt.date] = mapped_column(Date)
    visibility: Mapped[str] = mapped_column(String(20))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"))
    body_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    """The current text, encrypted with the data keys (MultiFernet). Never stored or logged in clear."""
    revision_no: Mapped[int] = mapped_column(Integer, default=1)
    retracted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    """Notes are never deleted; a retracted note is hidden from lists but kept for the record."""
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    revisions: Mapped[list[CaseNoteRevision]] = relationship(
        back_populates="note", cascade="all, delete-orphan", order_by="CaseNoteRevision.revision_no"
    )


class CaseNoteRevision(Base):
    """Every saved state of a note, copy-on-write: editing adds a revision, nothing is overwritten."""

    __tablename__ = "case_note_revisions"
    __table_args__ = (UniqueConstraint("note_id", "revision_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("case_notes.id", ondelete="CASCADE"))
    revision_no: Mapped[int] = mapped_column(Integer)
    body_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    note_type: Mapped[str] = mapped_column(String(30))
    visibility: Mapped[str] = mapped_column(String(20))
    recorded_on: Mapped[dt.date] = mapped_column(Date)
    edited_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    edited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    note: Mapped[CaseNote] = relationship(back_populates="revisions")


class NoteDraft(Base):
    """An unsaved note, kept server-side (encrypted) so it survives a reload of the LMS frame."""

    __tablename__ = "note_drafts"
    __table_args__ = (UniqueConstraint("author_id", "student_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"))
    body_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Question(Base):
    """"Ask the case manager": a teacher's question about a student, in the case manager's queue."""

    __tablename__ = "questions"
    __table_args__ = (Index("ix_questions_case_manager_status", "case_manager_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("students.id", ondelete="CASCADE"), index=True)
    asked_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    case_manager_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="SET NULL"))
    body_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default="open")
    answer_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
