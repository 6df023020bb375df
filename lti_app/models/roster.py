"""People and rosters as Caseload believes them, from launches, webhooks, NRPS and OneRoster."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_app.db import Base, UTCDateTime, utcnow


class Person(Base):
    """A user of one platform. The same human on two platforms is two Persons (linked through Student or
    by sis_id); identity never crosses a platform boundary implicitly."""

    __tablename__ = "persons"
    __table_args__ = (
        UniqueConstraint("platform_id", "lti_sub"),
        Index("ix_persons_platform_lms_user", "platform_id", "lms_user_id"),
        Index("ix_persons_platform_sis", "platform_id", "sis_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    lti_sub: Mapped[str] = mapped_column(String(255))
    """The id_token ``sub`` (LTI Core 1.3 §5.3.6): stable, opaque per platform."""
    lms_user_id: Mapped[str | None] = mapped_column(String(255))
    """The LMS's own numeric user id (Canvas ``$Canvas.user.id``, Moodle user id) used by webhooks."""
    sis_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    given_name: Mapped[str] = mapped_column(String(255), default="")
    family_name: Mapped[str] = mapped_column(String(255), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(20), default="student")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def display_name(self) -> str:
        return self.name or f"{self.given_name} {self.family_name}".strip() or f"User {self.id}"


class Course(Base):
    __tablename__ = "courses"
    __table_args__ = (
        UniqueConstraint("platform_id", "lti_context_id"),
        Index("ix_courses_platform_lms_course", "platform_id", "lms_course_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platforms.id", ondelete="CASCADE"))
    lti_context_id: Mapped[str] = mapped_column(String(255))
    """The context claim id (LTI Core 1.3 §5.4.1)."""
    lms_course_id: Mapped[str | None] = mapped_column(String(255))
    """The LMS's numeric course id (``$Canvas.course.id``; Moodle course id), used by webhooks."""
    sis_id: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    label: Mapped[str] = mapped_column(String(255), default="")
    nrps_url: Mapped[str | None] = mapped_column(String(1000))
    """context_memberships_url from the NRPS claim (NRPS 2.0 §3.6.1)."""
    last_roster_sync_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    sections: Mapped[list[Section]] = relationship(back_populates="course")


class Section(Base):
    """A section of a course. Every course has one *course-wide* section (``lms_section_id`` = "") that holds
    enrollments whose section the LMS did not tell us (Moodle launches, NRPS)."""

    __tablename__ = "sections"
    __table_args__ = (UniqueConstraint("course_id", "lms_section_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    lms_section_id: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(500), default="")
    sis_id: Mapped[str | None] = mapped_column(String(255))

    course: Mapped[Course] = relationship(back_populates="sections")

    @property
    def course_wide(self) -> bool:
        return self.lms_section_id == ""


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("person_id", "section_id", "role"),
        Index("ix_enrollments_course_state", "course_id", "state"),
        Index("ix_enrollments_course_role_state", "course_id", "role", "state"),  # current teachers of a course
        Index("ix_enrollments_person_state", "person_id", "state"),
        Index("ix_enrollments_lms_enrollment_id", "lms_enrollment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    section_id: Mapped[int] = mapped_column(ForeignKey("sections.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    """teacher | ta | student | observer | designer (``EnrollmentRole``)."""
    state: Mapped[str] = mapped_column(String(20), default="active")
    """active | inactive | deleted. Only ``active`` grants access."""
    source: Mapped[str] = mapped_column(String(20))
    source_time: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    """The newest event time applied to this row; older events change nothing."""
    lms_enrollment_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    person: Mapped[Person] = relationship()
    section: Mapped[Section] = relationship()
    course: Mapped[Course] = relationship()


class RoleGrant(Base):
    """A school role granted inside Caseload (case manager, counselor, ...). Revoked grants are kept."""

    __tablename__ = "role_grants"
    __table_args__ = (Index("ix_role_grants_person_active", "person_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(30))
    can_see_restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    school: Mapped[str | None] = mapped_column(String(255))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="SET NULL"))

    person: Mapped[Person] = relationship(foreign_keys=[person_id])
