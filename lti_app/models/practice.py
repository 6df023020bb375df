"""The practice LMS's own quizzes and quiz overrides (dev/demo/test only; the tables stay empty in production).

The practice LMS (``lti_app.demo``) answers Caseload's Moodle web service calls for them, so a newcomer sees
accommodations applied in an "LMS". They are tables, not memory or a file: they survive restarts of the demo, belong
to the practice district's courses (deleted with them), and the threaded dev server's concurrent requests (Caseload
calling its own server over HTTP) get transactions and the one-override-per-user rule from the database.

Shapes as in Moodle 4.5 (``quiz``, ``quiz_overrides``): times are Unix seconds, ``timelimit`` 0 is no limit,
``attempts`` 0 unlimited, and an override's null field means "the quiz's own setting".
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lti_app.db import Base, UTCDateTime, utcnow


class PracticeQuiz(Base):
    """A quiz of a practice LMS course; its ``id`` is the quiz instance id the web service reports."""

    __tablename__ = "practice_quizzes"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    timelimit: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    timeopen: Mapped[int] = mapped_column(Integer, default=0)
    timeclose: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PracticeQuizOverride(Base):
    """A user or group override of a practice quiz: one per user (or group) per quiz, as Moodle enforces."""

    __tablename__ = "practice_quiz_overrides"
    __table_args__ = (UniqueConstraint("quiz_id", "userid"), UniqueConstraint("quiz_id", "groupid"))

    id: Mapped[int] = mapped_column(primary_key=True)
    quiz_id: Mapped[int] = mapped_column(ForeignKey("practice_quizzes.id", ondelete="CASCADE"))
    userid: Mapped[int | None] = mapped_column(Integer)
    """The LMS user id (``Person.lms_user_id`` of the practice platform)."""
    groupid: Mapped[int | None] = mapped_column(Integer)
    """A section of the course (the practice LMS's groups are its sections)."""
    timeopen: Mapped[int | None] = mapped_column(Integer)
    timeclose: Mapped[int | None] = mapped_column(Integer)
    timelimit: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int | None] = mapped_column(Integer)
    password: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


__all__ = ["PracticeQuiz", "PracticeQuizOverride"]
