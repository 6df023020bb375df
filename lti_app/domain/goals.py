"""Goals and progress monitoring: vocabularies, who may do what with a student's goals, and the checks a goal,
a data point or a progress report must pass before anything is written.

Annual goals and periodic progress reports are parts of the IEP (IDEA 34 CFR 300.320(a)(2)-(3)). They are
casework in the access policy: the student's case manager keeps them (goals, report drafts, making a report
final); counselors and related-service providers who serve the student read them and record progress data;
administrators read them; teachers do not see or edit them here (their accommodations view is the panel).

Pure: the caller passes the access decisions (``domain.access``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from lti_app.domain.access import Decision
from lti_app.domain.dates import shown_day


class GoalArea(StrEnum):
    READING = "reading"
    WRITING = "writing"
    MATHEMATICS = "mathematics"
    COMMUNICATION = "communication"
    SOCIAL_EMOTIONAL = "social_emotional"
    BEHAVIOUR = "behaviour"
    ADAPTIVE = "adaptive"
    MOTOR = "motor"
    TRANSITION = "transition"
    OTHER = "other"


AREA_LABELS = {
    "reading": "Reading", "writing": "Writing", "mathematics": "Mathematics", "communication": "Communication",
    "social_emotional": "Social-emotional", "behaviour": "Behavior", "adaptive": "Adaptive / daily living",
    "motor": "Motor", "transition": "Transition", "other": "Other",
}


class GoalStatus(StrEnum):
    ACTIVE = "active"
    MET = "met"
    DISCONTINUED = "discontinued"


GOAL_STATUS_LABELS = {"active": "Active", "met": "Met", "discontinued": "Discontinued"}


class ProgressRating(StrEnum):
    ON_TRACK = "on_track"
    SOME_PROGRESS = "some_progress"
    INSUFFICIENT_PROGRESS = "insufficient_progress"
    MET = "met"
    NOT_ADDRESSED = "not_addressed"


RATING_LABELS = {
    "on_track": "On track to meet the goal", "some_progress": "Some progress",
    "insufficient_progress": "Insufficient progress to meet the goal", "met": "Goal met",
    "not_addressed": "Not addressed this period",
}


class ReportStatus(StrEnum):
    DRAFT = "draft"
    FINAL = "final"


MAX_DESCRIPTION = 2000
MAX_METHOD = 200
MAX_UNIT = 40
MAX_POINT_NOTE = 500
MAX_NARRATIVE = 5000
MAX_GOAL_COMMENT = 1000


@dataclass(frozen=True)
class GoalRights:
    view: bool = False
    edit: bool = False
    """Add and change goals and write report drafts: the student's case manager."""
    record: bool = False
    """Record progress data points: the case manager, and counselors/providers who serve the student."""
    finalize: bool = False
    """Make a progress report final: the student's case manager."""
    basis: str = ""
    refusal: str = ""
    """Why something is refused, in words for the person refused."""


def goal_rights(view: Decision, edit: Decision, record: Decision) -> GoalRights:
    """Goals are casework (``domain.access``): ``view`` is the decision for ``VIEW_CASEWORK``, ``edit`` for
    ``EDIT_CASEWORK`` and ``record`` for ``LOG_SERVICE`` — so teachers never see them and a case manager grant
    alone does not reach another caseload."""
    if not view.allowed:
        return GoalRights(basis=view.basis, refusal="Goals and progress are shown to the student's case manager, "
                          "the counselors and providers who serve the student, and administrators.")
    if edit.allowed:
        return GoalRights(True, True, True, edit.relationship == "case_manager", edit.basis)
    refusal = ("Goals are kept by the student's case manager; counselors and providers record progress data."
               if record.allowed else "You may read this student's goals; the case manager keeps them.")
    return GoalRights(True, False, record.allowed, False, view.basis, refusal)


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


class Invalid(ValueError):
    """One or more fields are wrong; nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems

    @property
    def fields(self) -> dict[str, str]:
        return {p.field: p.message for p in self.problems}


def parse_date(raw: str | None, field: str, label: str, problems: list[Problem], required: bool = False) -> dt.date | None:
    text = (raw or "").strip()
    if not text:
        if required:
            problems.append(Problem(field, f"Enter the {label} (YYYY-MM-DD)."))
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(Problem(field, f"The {label} is not a date: use YYYY-MM-DD (for example 2026-09-14)."))
        return None


def parse_number(raw: str | None, field: str, label: str, problems: list[Problem]) -> Decimal | None:
    text = (raw or "").strip().replace(",", "")
    if not text:
        problems.append(Problem(field, f"Enter the {label} as a number."))
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        problems.append(Problem(field, f"The {label} must be a number (for example 45 or 0.8)."))
        return None
    if not value.is_finite() or abs(value) >= Decimal("1e9"):
        problems.append(Problem(field, f"The {label} is out of range."))
        return None
    return value.quantize(Decimal("0.001"))


@dataclass(frozen=True)
class GoalFields:
    area: str
    description: str
    baseline: Decimal
    target: Decimal
    unit: str
    measurement_method: str
    baseline_on: dt.date
    target_on: dt.date
    status: str


def check_goal(form: dict[str, str], today: dt.date) -> GoalFields:
    problems: list[Problem] = []
    area = form.get("area", "")
    if area not in AREA_LABELS:
        problems.append(Problem("area", "Choose the area of need the goal addresses."))
    description = " ".join(form.get("description", "").split())
    if not description:
        problems.append(Problem("description", "Describe the goal: what the student will do, under what conditions, "
                                "to what level."))
    elif len(description) > MAX_DESCRIPTION:
        problems.append(Problem("description", f"The description is limited to {MAX_DESCRIPTION:,} characters."))
    baseline = parse_number(form.get("baseline"), "baseline", "baseline", problems)
    target = parse_number(form.get("target"), "target", "target", problems)
    if baseline is not None and target is not None and baseline == target:
        problems.append(Problem("target", "The target is the same as the baseline: a goal asks for a change."))
    unit = " ".join(form.get("unit", "").split())
    if len(unit) > MAX_UNIT:
        problems.append(Problem("unit", f"The unit is limited to {MAX_UNIT} characters (for example \"words per "
                                "minute\" or \"% of opportunities\")."))
    method = " ".join(form.get("measurement_method", "").split())
    if not method:
        problems.append(Problem("measurement_method", "Say how progress is measured (for example \"weekly 1-minute "
                                "oral reading probe\")."))
    elif len(method) > MAX_METHOD:
        problems.append(Problem("measurement_method", f"The measurement method is limited to {MAX_METHOD} characters."))
    baseline_on = parse_date(form.get("baseline_on"), "baseline_on", "baseline date", problems, required=True)
    target_on = parse_date(form.get("target_on"), "target_on", "target date", problems, required=True)
    if baseline_on and baseline_on > today:
        problems.append(Problem("baseline_on", "The baseline date is in the future: a baseline is measured first."))
    if baseline_on and target_on and target_on <= baseline_on:
        problems.append(Problem("target_on", "The target date must be after the baseline date."))
    status = form.get("status") or GoalStatus.ACTIVE.value
    if status not in GOAL_STATUS_LABELS:
        problems.append(Problem("status", "Choose the goal's status."))
    if problems:
        raise Invalid(problems)
    assert baseline is not None and target is not None and baseline_on and target_on
    return GoalFields(area, description, baseline, target, unit, method, baseline_on, target_on, status)


@dataclass(frozen=True)
class PointFields:
    measured_on: dt.date
    value: Decimal
    note: str


def check_point(form: dict[str, str], baseline_on: dt.date, today: dt.date) -> PointFields:
    problems: list[Problem] = []
    day = parse_date(form.get("measured_on"), "measured_on", "date of the measurement", problems, required=True)
    value = parse_number(form.get("value"), "value", "value", problems)
    note = " ".join(form.get("note", "").split())
    if day and day > today:
        problems.append(Problem("measured_on", "The measurement date is in the future."))
    if day and day < baseline_on:
        problems.append(Problem("measured_on", f"The measurement is dated before the goal's baseline "
                                f"({shown_day(baseline_on)})."))
    if len(note) > MAX_POINT_NOTE:
        problems.append(Problem("note", f"The note is limited to {MAX_POINT_NOTE} characters."))
    if problems:
        raise Invalid(problems)
    assert day and value is not None
    return PointFields(day, value, note)


@dataclass(frozen=True)
class ReportFields:
    narrative: str
    ratings: dict[int, str]
    comments: dict[int, str]


def check_report(form_ratings: dict[int, str], form_comments: dict[int, str], narrative: str, final: bool) -> ReportFields:
    """A draft may leave goals unrated; a final report rates every goal it covers."""
    problems: list[Problem] = []
    ratings: dict[int, str] = {}
    for goal_id, rating in form_ratings.items():
        if rating and rating not in RATING_LABELS:
            problems.append(Problem(f"rating-{goal_id}", "Choose a progress rating from the list."))
        elif rating:
            ratings[goal_id] = rating
        elif final:
            problems.append(Problem(f"rating-{goal_id}", "Rate the progress on every goal before making the report "
                                    "final."))
    comments = {gid: c.strip() for gid, c in form_comments.items() if c.strip()}
    for gid, comment in comments.items():
        if len(comment) > MAX_GOAL_COMMENT:
            problems.append(Problem(f"comment-{gid}", f"A goal's comment is limited to {MAX_GOAL_COMMENT:,} characters."))
    text = narrative.strip()
    if len(text) > MAX_NARRATIVE:
        problems.append(Problem("narrative", f"The narrative is limited to {MAX_NARRATIVE:,} characters."))
    if final and not text:
        problems.append(Problem("narrative", "Write the narrative for parents before making the report final."))
    if problems:
        raise Invalid(problems)
    return ReportFields(text, ratings, comments)
