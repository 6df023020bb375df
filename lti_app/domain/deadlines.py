"""Compliance deadlines, derived from a plan's dates and the school calendar: never stored as a task list, so a
changed date or a new reporting period changes every deadline at once.

The rules (federal floor; a state may be stricter, which is what the settings are for):

- **Annual IEP review**: the IEP team reviews the IEP "periodically, but not less than annually"
  (IDEA 34 CFR 300.324(b)(1)(i)): due on the anniversary of the last IEP meeting (29 Feb -> 28 Feb).
- **Reevaluation**: at least once every 3 years from the last evaluation "unless the parent and the public agency
  agree that a reevaluation is unnecessary" (34 CFR 300.303(b)(2)). A waiver is that agreement, so it has a date;
  a waived reevaluation is reported as ``waived``, never as overdue.
- **Initial evaluation**: within 60 days of receiving parental consent, or the State's timeframe
  (34 CFR 300.301(c)(1)); some States count school days. School days are weekdays that are not in a closure.
- **504 review**: Section 504 (34 CFR 104.35(d)) asks for periodic reevaluation; districts review plans on a
  fixed cycle (default 12 months) from the last review.
- **Progress reports**: an IEP says when periodic reports on progress toward the annual goals are given
  (34 CFR 300.320(a)(3)(ii)), usually with report cards: one deadline per reporting period for plans with goals.

Pure: no Flask, no database. The services load the facts and call :func:`plan_deadlines`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class DeadlineKind(StrEnum):
    ANNUAL_REVIEW = "annual_review"
    REEVALUATION = "reevaluation"
    INITIAL_EVALUATION = "initial_evaluation"
    REVIEW_504 = "review_504"
    PROGRESS_REPORT = "progress_report"


class DeadlineStatus(StrEnum):
    OVERDUE = "overdue"
    UPCOMING = "upcoming"
    LATER = "later"
    WAIVED = "waived"
    DONE = "done"


KIND_LABELS = {
    DeadlineKind.ANNUAL_REVIEW: "annual review",
    DeadlineKind.REEVALUATION: "reevaluation",
    DeadlineKind.INITIAL_EVALUATION: "initial evaluation",
    DeadlineKind.REVIEW_504: "504 review",
    DeadlineKind.PROGRESS_REPORT: "progress report",
}

OPEN_STATUSES = frozenset({DeadlineStatus.OVERDUE, DeadlineStatus.UPCOMING, DeadlineStatus.LATER})


@dataclass(frozen=True)
class DeadlinePolicy:
    """The settings that shape the rules (``CASELOAD_INITIAL_EVALUATION_DAYS`` and friends)."""

    initial_evaluation_days: int = 60
    initial_evaluation_school_days: bool = False
    """Count the initial-evaluation days as school days (weekdays minus closures) instead of calendar days."""
    review_504_months: int = 12
    upcoming_window_days: int = 30


@dataclass(frozen=True)
class ReportingPeriod:
    id: int
    name: str
    starts_on: dt.date
    ends_on: dt.date
    report_due_on: dt.date


@dataclass(frozen=True)
class Closure:
    name: str
    starts_on: dt.date
    ends_on: dt.date
    """Inclusive."""


@dataclass(frozen=True)
class SchoolCalendar:
    """One school's reporting periods and closures (district-wide entries already merged in)."""

    periods: tuple[ReportingPeriod, ...] = ()
    closures: tuple[Closure, ...] = ()

    def is_school_day(self, day: dt.date) -> bool:
        if day.weekday() >= 5:
            return False
        return not any(c.starts_on <= day <= c.ends_on for c in self.closures)

    def add_school_days(self, start: dt.date, days: int) -> dt.date:
        """The ``days``-th school day after ``start`` (``start`` itself is not counted: consent received on a
        Monday starts the count on Tuesday)."""
        if days <= 0:
            return start
        # Closures as a sorted list lets us skip a long closure in one step instead of day by day.
        day, counted = start, 0
        spans = sorted(self.closures, key=lambda c: c.starts_on)
        while counted < days:
            day += dt.timedelta(days=1)
            if day.weekday() >= 5:
                continue
            closed = next((c for c in spans if c.starts_on <= day <= c.ends_on), None)
            if closed is not None:
                day = closed.ends_on
                continue
            counted += 1
        return day


@dataclass(frozen=True)
class PlanInputs:
    """What the rules need to know about one plan (loaded by the service in a few set-based queries)."""

    plan_id: int
    student_id: int
    student_name: str
    plan_type: str
    status: str = "active"
    school: str | None = None
    effective_on: dt.date | None = None
    end_on: dt.date | None = None
    evaluation_consent_on: dt.date | None = None
    last_evaluation_on: dt.date | None = None
    last_meeting_on: dt.date | None = None
    reevaluation_waived_on: dt.date | None = None
    last_504_review_on: dt.date | None = None
    annual_review_due: dt.date | None = None
    """Stored (imported or recomputed) date, used when the input it derives from is unknown."""
    reevaluation_due: dt.date | None = None
    has_goals: bool = False
    finalized_period_ids: frozenset[int] = field(default_factory=frozenset)
    """Reporting periods for which this plan's progress report is final."""


@dataclass(frozen=True)
class Deadline:
    kind: DeadlineKind
    due_on: dt.date
    plan_id: int
    student_id: int
    student_name: str
    plan_type: str
    status: DeadlineStatus
    label: str
    period_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def days_left(self, today: dt.date) -> int:
        return (self.due_on - today).days


def add_years(day: dt.date, years: int) -> dt.date:
    """Same day ``years`` later; 29 February becomes 28 February in a common year (never 1 March: "within one
    year" must not run past the anniversary)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later, clamped to the month's last day (31 Aug + 6 months = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def annual_review_due(last_meeting_on: dt.date) -> dt.date:
    return add_years(last_meeting_on, 1)


def reevaluation_due(last_evaluation_on: dt.date) -> dt.date:
    return add_years(last_evaluation_on, 3)


def review_504_due(last_review_on: dt.date, months: int) -> dt.date:
    return add_months(last_review_on, months)


def initial_evaluation_due(consent_on: dt.date, policy: DeadlinePolicy, school_calendar: SchoolCalendar) -> dt.date:
    if policy.initial_evaluation_school_days:
        return school_calendar.add_school_days(consent_on, policy.initial_evaluation_days)
    return consent_on + dt.timedelta(days=policy.initial_evaluation_days)


def status_for(due_on: dt.date, today: dt.date, window_days: int) -> DeadlineStatus:
    if due_on < today:
        return DeadlineStatus.OVERDUE
    if (due_on - today).days <= window_days:
        return DeadlineStatus.UPCOMING
    return DeadlineStatus.LATER


def _fmt(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def plan_deadlines(plan: PlanInputs, today: dt.date, policy: DeadlinePolicy,
                   school_calendar: SchoolCalendar | None = None) -> list[Deadline]:
    """Every deadline of one plan, soonest first. Ended plans have none."""
    if plan.status == "ended":
        return []
    cal = school_calendar or SchoolCalendar()
    out: list[Deadline] = []

    def add(kind: DeadlineKind, due: dt.date, status: DeadlineStatus | None = None, label: str = "",
            period_id: int | None = None) -> None:
        out.append(Deadline(kind, due, plan.plan_id, plan.student_id, plan.student_name, plan.plan_type,
                            status or status_for(due, today, policy.upcoming_window_days),
                            label or KIND_LABELS[kind], period_id))

    if plan.evaluation_consent_on is not None:
        due = initial_evaluation_due(plan.evaluation_consent_on, policy, cal)
        unit = "school days" if policy.initial_evaluation_school_days else "days"
        label = f"initial evaluation ({policy.initial_evaluation_days} {unit} from consent)"
        done = plan.last_evaluation_on is not None and plan.last_evaluation_on >= plan.evaluation_consent_on
        # An evaluation on or after the consent date is the one the consent asked for.
        add(DeadlineKind.INITIAL_EVALUATION, due, DeadlineStatus.DONE if done else None, label)

    if plan.plan_type == "IEP":
        if plan.last_meeting_on is not None:
            add(DeadlineKind.ANNUAL_REVIEW, annual_review_due(plan.last_meeting_on))
        elif plan.annual_review_due is not None:
            add(DeadlineKind.ANNUAL_REVIEW, plan.annual_review_due)
        reeval = (reevaluation_due(plan.last_evaluation_on) if plan.last_evaluation_on is not None
                  else plan.reevaluation_due)
        if reeval is not None:
            if plan.reevaluation_waived_on is not None:
                add(DeadlineKind.REEVALUATION, reeval, DeadlineStatus.WAIVED,
                    f"reevaluation waived by agreement on {_fmt(plan.reevaluation_waived_on)}")
            else:
                add(DeadlineKind.REEVALUATION, reeval)
    elif plan.plan_type == "504":
        review: dt.date | None
        if plan.last_504_review_on is not None:
            review = review_504_due(plan.last_504_review_on, policy.review_504_months)
        elif plan.annual_review_due is not None:
            review = plan.annual_review_due
        elif plan.effective_on is not None:
            review = review_504_due(plan.effective_on, policy.review_504_months)
        else:
            review = None
        if review is not None:
            add(DeadlineKind.REVIEW_504, review)
    elif plan.annual_review_due is not None:
        add(DeadlineKind.ANNUAL_REVIEW, plan.annual_review_due, label="plan review")

    if plan.has_goals:
        for period in cal.periods:
            if plan.effective_on is not None and period.ends_on < plan.effective_on:
                continue
            if plan.end_on is not None and period.starts_on > plan.end_on:
                continue
            done = period.id in plan.finalized_period_ids
            add(DeadlineKind.PROGRESS_REPORT, period.report_due_on, DeadlineStatus.DONE if done else None,
                f"progress report ({period.name})", period.id)
    return sorted(out, key=lambda d: (d.due_on, d.kind.value))


def all_deadlines(plans: Iterable[PlanInputs], today: dt.date, policy: DeadlinePolicy,
                  calendars: dict[str | None, SchoolCalendar] | None = None) -> list[Deadline]:
    """Deadlines of many plans, soonest first; ``calendars`` maps a school (``None``: unknown) to its calendar."""
    calendars = calendars or {}
    out: list[Deadline] = []
    for plan in plans:
        out.extend(plan_deadlines(plan, today, policy, calendars.get(plan.school) or calendars.get(None)))
    return sorted(out, key=lambda d: (d.due_on, d.student_name.lower(), d.kind.value))


def next_open(deadlines: Sequence[Deadline]) -> Deadline | None:
    """The soonest deadline still to meet (overdue ones first, since they are earliest)."""
    return min((d for d in deadlines if d.is_open), key=lambda d: d.due_on, default=None)


def merge_calendar(school: str | None, periods: Iterable[tuple[str | None, ReportingPeriod]],
                   closures: Iterable[tuple[str | None, Closure]]) -> SchoolCalendar:
    """A school's calendar from district-wide (``None``) and school entries: the school's own reporting periods
    replace the district's when it has any (schools on trimesters in a semester district); closures add up."""
    periods = list(periods)
    own = [p for s, p in periods if s is not None and s == school]
    chosen = own if own else [p for s, p in periods if s is None]
    shut = [c for s, c in closures if s is None or s == school]
    return SchoolCalendar(tuple(sorted(chosen, key=lambda p: (p.report_due_on, p.id))),
                          tuple(sorted(shut, key=lambda c: c.starts_on)))


@dataclass(frozen=True)
class InputProblem:
    field: str
    message: str


def check_inputs(values: dict[str, dt.date | None], waived: bool, today: dt.date) -> list[InputProblem]:
    """Validate the deadline inputs of one plan before anything is written. ``values`` holds the dates
    (``None`` = unknown): evaluation_consent_on, last_evaluation_on, last_meeting_on, reevaluation_waived_on,
    last_504_review_on."""
    problems: list[InputProblem] = []
    for name, day in values.items():
        if day is not None and day > today:
            problems.append(InputProblem(name, "This date is in the future: record dates once they have happened."))
    consent = values.get("evaluation_consent_on")
    evaluation = values.get("last_evaluation_on")
    meeting = values.get("last_meeting_on")
    waiver = values.get("reevaluation_waived_on")
    if waived and waiver is None:
        problems.append(InputProblem("reevaluation_waived_on", "A waived reevaluation needs the date the parent and "
                                     "the district agreed to it (34 CFR 300.303(b)(2)). Enter the agreement date, or "
                                     "untick \"reevaluation waived\"."))
    if not waived and waiver is not None:
        problems.append(InputProblem("reevaluation_waived_on", "An agreement date was entered but \"reevaluation "
                                     "waived\" is not ticked. Tick it, or clear the date."))
    if consent and evaluation and evaluation < consent:
        problems.append(InputProblem("last_evaluation_on", "The evaluation is dated before the parent's consent to "
                                     "evaluate. Check both dates."))
    if consent and meeting and meeting < consent:
        problems.append(InputProblem("last_meeting_on", "The IEP meeting is dated before the consent to evaluate. "
                                     "Check both dates."))
    if waived and waiver and evaluation and waiver < evaluation:
        problems.append(InputProblem("reevaluation_waived_on", "The waiver is dated before the last evaluation; a "
                                     "waiver covers the reevaluation that follows an evaluation. Check both dates."))
    return problems
