"""The shape of the demo district, shared by the demo seeders (roster, plans, casework)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lti_app.models import Course, Person, Platform, Section


@dataclass
class DemoDistrict:
    """What ``caseload demo`` created for the practice LMS: all fictional."""

    platform: Platform
    courses: list[Course] = field(default_factory=list)
    sections: dict[int, list[Section]] = field(default_factory=dict)
    """course id -> its sections (the course-wide one first)."""
    teachers: list[Person] = field(default_factory=list)
    case_managers: list[Person] = field(default_factory=list)
    admins: list[Person] = field(default_factory=list)
    students: list[Person] = field(default_factory=list)
