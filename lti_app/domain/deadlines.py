"""Compliance deadlines, derived from a plan's dates and the school calendar: never stored as a task list, so a
changed date or a new reporting period changes every deadline at once.

The rules (federal floor; a state may be stricter, which is what the settings are for):

- **Annual IEP review**: the IEP team reviews the IEP "periodically, but not less than annually"
  (IDEA 34 CFR 300.324(b)(1)(i)): due on the anniversary of the last IEP meeting (29 Feb -> 28 Feb).
- **Reevaluation**: at least once every 3 years from the last evaluation "unless the parent and the public agency
  agree that a reevaluation is unnecessary" (34 CFR 300.303(b)(2)). A waiver is that agreement, so it has a date,
  and it covers that one reevaluation: the waived one is reported as ``waived`` (never overdue) and the three-year
  clock starts again from the date the waived reevaluation *would have been due* (``reevaluation_schedule``). We
  restart from the due date rather than from the agreement so that the cycle stays fixed: an agreement signed late
  cannot push the next reevaluation later, and one signed early does not shorten the interval the regulation sets.
- **Initial IEP meeting**: within 30 days of the determination that the child needs special education
  (34 CFR 300.323(c)(1)); done once an IEP meeting on or after the determination is recorded.
- **Transition plan**: the IEP in effect when the child turns 16 (or younger, by State rule: the
  ``transition_age`` setting) must include measurable postsecondary goals and transition services
  (34 CFR 300.320(b)). So the IEP meeting before that birthday must address them: due at the last annual review
  date before the birthday (the IEP from that meeting is the one in effect on it), or the day before the birthday
  when no annual review falls before it; done when the plan records the date the transition plan was adopted.
- **Initial evaluation**: within 60 days of receiving parental consent, or the State's timeframe
  (34 CFR 300.301(c)(1)); some States count school days. School days are weekdays that are not in a closure.
- **504 review**: districts review 504 plans on a fixed cycle (default 12 months) from the last review.
- **504 reevaluation**: Section 504 requires periodic reevaluation (34 CFR 104.35(d)); the district sets the cycle
  (``reevaluation_504_months``, default 36, the IDEA interval 104.35(d) names as one way to comply), counted from
  the last evaluation or, when that is not recorded, from the plan's start.
- **No later than one year**: an annual review date is refused when it falls more than one calendar year after the
  effective date or the last IEP meeting (``latest_annual_review``; 300.324(b)(1)(i) "not less than annually").
- **Timeliness is kept**: when a deadline is met, how late it was met (days) and why are kept per occurrence
  (``completion``), with the two exceptions 34 CFR 300.301(d) allows for the initial-evaluation timeline, which is
  what a State reports as SPP/APR Indicator 11.
- **A held meeting withdrawn**: a plan date a held meeting set (one entry, not two) goes back to the date the plan
  had when the meeting is removed, corrected to another date or no longer held (``date_without_meeting``), unless
  something set the date again since; so a removed annual review, reevaluation or eligibility meeting
  (300.324(b)(1)(i), 300.303, 300.306) makes its deadline due or overdue again.
- **Progress reports**: an IEP says when periodic reports on progress toward the annual goals are given
  (34 CFR 300.320(a)(3)(ii)), usually with report cards: one deadline per reporting period for plans with goals.

Pure: no Flask, no database. The services load the facts and call :func:`plan_deadlines`.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from lti_app.domain.dates import shown_day


class DeadlineKind(StrEnum):
    ANNUAL_REVIEW = "annual_review"
    REEVALUATION = "reevaluation"
    INITIAL_EVALUATION = "initial_evaluation"
    REVIEW_504 = "review_504"
    PROGRESS_REPORT = "progress_report"
    INITIAL_IEP_MEETING = "initial_iep_meeting"
    TRANSITION_PLAN = "transition_plan"
    REEVALUATION_504 = "reevaluation_504"


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
    DeadlineKind.INITIAL_IEP_MEETING: "initial IEP meeting",
    DeadlineKind.TRANSITION_PLAN: "transition plan",
    DeadlineKind.REEVALUATION_504: "504 reevaluation",
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
    transition_age: int = 16
    """Age by which the IEP in effect must include transition services (34 CFR 300.320(b): 16, or younger)."""
    reevaluation_504_months: int = 36
    """The district's Section 504 reevaluation cycle (34 CFR 104.35(d))."""


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
    reevaluation_waiver_covers: dt.date | None = None
    """The due date of the reevaluation the waiver agreement covers (None on rows from before it was kept: the
    reevaluation due from the last evaluation)."""
    eligibility_determined_on: dt.date | None = None
    date_of_birth: dt.date | None = None
    transition_plan_on: dt.date | None = None
    """The IEP meeting that adopted postsecondary goals and transition services (34 CFR 300.320(b))."""
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


def initial_iep_meeting_due(eligibility_determined_on: dt.date) -> dt.date:
    """34 CFR 300.323(c)(1): "a meeting to develop an IEP ... within 30 days of a determination that the child needs
    special education and related services" (calendar days)."""
    return eligibility_determined_on + dt.timedelta(days=30)


def latest_annual_review(effective_on: dt.date | None, last_meeting_on: dt.date | None = None) -> dt.date | None:
    """The last day an annual review may be set for: one calendar year after the effective date and after the last
    IEP meeting, whichever comes first (34 CFR 300.324(b)(1)(i), "not less than annually"). One calendar year, not
    366 days: in a common year 366 days is a day late."""
    limits = [add_years(day, 1) for day in (effective_on, last_meeting_on) if day is not None]
    return min(limits) if limits else None


@dataclass(frozen=True)
class ReevaluationSchedule:
    due_on: dt.date | None
    """The reevaluation still to hold."""
    waived_due_on: dt.date | None = None
    """The reevaluation the agreement covers, when one is in force."""


def _waiver_in_force(last_evaluation_on: dt.date | None, waived_on: dt.date | None) -> bool:
    """An agreement is spent once an evaluation is recorded on or after it (the team evaluated anyway)."""
    return waived_on is not None and (last_evaluation_on is None or last_evaluation_on < waived_on)


def reevaluation_schedule(last_evaluation_on: dt.date | None, stored_due: dt.date | None,
                          waived_on: dt.date | None, waiver_covers: dt.date | None) -> ReevaluationSchedule:
    """34 CFR 300.303(b)(2): at least once every 3 years unless parent and district agree a reevaluation is
    unnecessary. The agreement covers one reevaluation; the next is due three years after the date the waived one
    would have been due."""
    base = reevaluation_due(last_evaluation_on) if last_evaluation_on is not None else stored_due
    if not _waiver_in_force(last_evaluation_on, waived_on):
        return ReevaluationSchedule(base)
    covered = waiver_covers or base
    if covered is None:
        return ReevaluationSchedule(None)
    return ReevaluationSchedule(add_years(covered, 3), covered)


def waiver_covers(last_evaluation_on: dt.date | None, stored_due: dt.date | None, old_waived_on: dt.date | None,
                  old_covers: dt.date | None, new_waived_on: dt.date) -> dt.date | None:
    """Which reevaluation a newly recorded agreement covers. With an earlier agreement still in force, a date after
    the reevaluation it covered is a second agreement (it covers the next one); a date on or before it corrects the
    same agreement. Otherwise it covers the reevaluation due from the last evaluation (late or not)."""
    if _waiver_in_force(last_evaluation_on, old_waived_on):
        current = old_covers or (reevaluation_due(last_evaluation_on) if last_evaluation_on else stored_due)
        if current is not None:
            return add_years(current, 3) if new_waived_on > current else current
    if last_evaluation_on is not None:
        return reevaluation_due(last_evaluation_on)
    return stored_due


def transition_plan_due(date_of_birth: dt.date, age: int, annual_review_due: dt.date | None) -> dt.date:
    """34 CFR 300.320(b): the IEP in effect when the child turns ``age`` includes transition services. That IEP
    comes from the last annual review before the birthday; with none before it, the plan must be amended by the
    day before the birthday."""
    birthday = add_years(date_of_birth, age)
    if annual_review_due is None or annual_review_due >= birthday:
        return birthday - dt.timedelta(days=1)
    years = birthday.year - annual_review_due.year
    while years > 0 and add_years(annual_review_due, years) >= birthday:
        years -= 1
    return add_years(annual_review_due, years)


def reevaluation_504_due(last_evaluation_on: dt.date, months: int) -> dt.date:
    """34 CFR 104.35(d): periodic reevaluation on the district's cycle."""
    return add_months(last_evaluation_on, months)


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
    return shown_day(day)


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
        annual: dt.date | None = None
        if plan.last_meeting_on is not None:
            annual = annual_review_due(plan.last_meeting_on)
        elif plan.annual_review_due is not None:
            annual = plan.annual_review_due
        if annual is not None:
            add(DeadlineKind.ANNUAL_REVIEW, annual)
        schedule = reevaluation_schedule(plan.last_evaluation_on, plan.reevaluation_due, plan.reevaluation_waived_on,
                                         plan.reevaluation_waiver_covers)
        if schedule.waived_due_on is not None and plan.reevaluation_waived_on is not None:
            add(DeadlineKind.REEVALUATION, schedule.waived_due_on, DeadlineStatus.WAIVED,
                f"reevaluation waived by agreement on {_fmt(plan.reevaluation_waived_on)}")
        if schedule.due_on is not None:
            add(DeadlineKind.REEVALUATION, schedule.due_on,
                label="reevaluation (next after the waived one)" if schedule.waived_due_on else "")
        if plan.eligibility_determined_on is not None:
            done = plan.last_meeting_on is not None and plan.last_meeting_on >= plan.eligibility_determined_on
            add(DeadlineKind.INITIAL_IEP_MEETING, initial_iep_meeting_due(plan.eligibility_determined_on),
                DeadlineStatus.DONE if done else None, "initial IEP meeting (30 days from eligibility)")
        if plan.date_of_birth is not None:
            due = transition_plan_due(plan.date_of_birth, policy.transition_age, annual)
            add(DeadlineKind.TRANSITION_PLAN, due,
                DeadlineStatus.DONE if plan.transition_plan_on is not None else None,
                f"transition plan (IEP in effect at age {policy.transition_age})")
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
        base = plan.last_evaluation_on or plan.effective_on
        if base is not None:
            add(DeadlineKind.REEVALUATION_504, reevaluation_504_due(base, policy.reevaluation_504_months),
                label=f"504 reevaluation (every {policy.reevaluation_504_months} months)")
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
    eligibility = values.get("eligibility_determined_on")
    if consent and eligibility and eligibility < consent:
        problems.append(InputProblem("eligibility_determined_on", "Eligibility is dated before the consent to "
                                     "evaluate; it is determined on the completed evaluation. Check both dates."))
    if waived and waiver and evaluation and waiver < evaluation:
        problems.append(InputProblem("reevaluation_waived_on", "The waiver is dated before the last evaluation; a "
                                     "waiver covers the reevaluation that follows an evaluation. Check both dates."))
    return problems


# --- timeliness: how a deadline was met, kept per occurrence ----------------------------------------------------

class LateReason(StrEnum):
    PARENT_DID_NOT_PRODUCE_CHILD = "parent_did_not_produce_child"
    """34 CFR 300.301(d)(1): the parent repeatedly failed or refused to produce the child for the evaluation."""
    ENROLLED_ELSEWHERE = "enrolled_elsewhere"
    """34 CFR 300.301(d)(2): the child enrolled in another district after the timeline had begun."""
    PARENT_REQUESTED_DELAY = "parent_requested_delay"
    STAFF_UNAVAILABLE = "staff_unavailable"
    OTHER = "other"


LATE_REASON_LABELS = {
    LateReason.PARENT_DID_NOT_PRODUCE_CHILD: "Parent repeatedly failed or refused to produce the child "
                                             "(34 CFR 300.301(d)(1))",
    LateReason.ENROLLED_ELSEWHERE: "Child enrolled in another district after the timeline began "
                                   "(34 CFR 300.301(d)(2))",
    LateReason.PARENT_REQUESTED_DELAY: "Parent asked to reschedule",
    LateReason.STAFF_UNAVAILABLE: "Evaluator or team member unavailable",
    LateReason.OTHER: "Other district reason",
}

INDICATOR_11_EXCEPTIONS = frozenset({LateReason.PARENT_DID_NOT_PRODUCE_CHILD, LateReason.ENROLLED_ELSEWHERE})
"""The only reasons 34 CFR 300.301(d) excuses from the initial-evaluation timeline (SPP/APR Indicator 11 counts
every other late evaluation against the district); they apply to nothing else."""

TIMED_KINDS = frozenset({DeadlineKind.INITIAL_EVALUATION, DeadlineKind.ANNUAL_REVIEW, DeadlineKind.REEVALUATION,
                         DeadlineKind.INITIAL_IEP_MEETING, DeadlineKind.REVIEW_504,
                         DeadlineKind.REEVALUATION_504})
"""Deadlines whose meeting is kept as a completion (met on, days late, reason)."""


@dataclass(frozen=True)
class Completion:
    kind: DeadlineKind
    due_on: dt.date
    completed_on: dt.date
    days_late: int
    late_reason: LateReason | None
    withdrawn: bool = False
    """The meeting that recorded it was removed, is no longer held, or its date was corrected: kept in the history,
    no longer counted as meeting the deadline."""

    @property
    def late(self) -> bool:
        return self.days_late > 0

    @property
    def excepted(self) -> bool:
        """Late, but for a reason 34 CFR 300.301(d) excuses (counted as timely for Indicator 11)."""
        return self.late and self.late_reason in INDICATOR_11_EXCEPTIONS


def completion(kind: DeadlineKind, due_on: dt.date, completed_on: dt.date, reason: str | None,
               field_name: str = "late_reason") -> tuple[Completion | None, list[InputProblem]]:
    """How a deadline was met: on time, or so many calendar days late with a reason. A late completion without a
    reason is refused (the district could not report it); the 300.301(d) exceptions are refused for anything but the
    initial evaluation; a reason given for a timely completion is dropped."""
    days_late = max(0, (completed_on - due_on).days)
    raw = (reason or "").strip()
    if days_late == 0:
        return Completion(kind, due_on, completed_on, 0, None), []
    label = KIND_LABELS[kind]
    if not raw:
        return None, [InputProblem(field_name, f"The {label} was held on {shown_day(completed_on)}, {days_late} "
                                               f"day{'s' if days_late != 1 else ''} after it was due "
                                               f"({shown_day(due_on)}). Choose the reason it was late; the date "
                                               "is kept as late either way.")]
    try:
        code = LateReason(raw)
    except ValueError:
        return None, [InputProblem(field_name, "Choose one of the listed reasons for a late date.")]
    if code in INDICATOR_11_EXCEPTIONS and kind is not DeadlineKind.INITIAL_EVALUATION:
        return None, [InputProblem(field_name, f"“{LATE_REASON_LABELS[code]}” excuses only the initial-evaluation "
                                               f"timeline (34 CFR 300.301(d)); choose another reason for the "
                                               f"{label}.")]
    return Completion(kind, due_on, completed_on, days_late, code), []


@dataclass(frozen=True)
class Met:
    """A deadline met by a newly recorded date. ``corrects``: the date of an earlier completion this one corrects
    (the same occurrence, typed again) rather than a new occurrence."""

    kind: DeadlineKind
    due_on: dt.date
    completed_on: dt.date
    corrects: dt.date | None = None


_FIELD_KINDS: dict[tuple[str, str], tuple[DeadlineKind, ...]] = {
    ("IEP", "last_evaluation_on"): (DeadlineKind.INITIAL_EVALUATION, DeadlineKind.REEVALUATION),
    ("IEP", "last_meeting_on"): (DeadlineKind.INITIAL_IEP_MEETING, DeadlineKind.ANNUAL_REVIEW),
    ("504", "last_evaluation_on"): (DeadlineKind.INITIAL_EVALUATION, DeadlineKind.REEVALUATION_504),
    ("504", "last_504_review_on"): (DeadlineKind.REVIEW_504,),
}


def deadlines_met(old: PlanInputs, new: PlanInputs, policy: DeadlinePolicy,
                  recorded: dict[tuple[DeadlineKind, dt.date], dt.date],
                  school_calendar: SchoolCalendar | None = None) -> list[Met]:
    """Which deadlines a change of a plan's dates meets, so each is kept with how late it was met.

    ``old`` is the plan before the change, ``new`` after it; ``recorded`` maps (kind, completed on) of the completions
    already kept to their due date. For each changed date the candidates are the deadlines still open before the
    change (an initial evaluation or IEP meeting first: nothing else can be met before them) and the completion the
    old date recorded; the candidate whose due date is nearest the new date wins, so retyping a date corrects the
    occurrence it belongs to and a date a year later meets the next one."""
    # The dates that start a clock (consent, eligibility) count from the new values: recording a consent and the
    # evaluation that followed it in one go is how a case manager catches up on paper records.
    started = replace(old, evaluation_consent_on=new.evaluation_consent_on,
                      eligibility_determined_on=new.eligibility_determined_on)
    before = plan_deadlines(started, dt.date.min, policy, school_calendar)
    open_due: dict[DeadlineKind, dt.date] = {}
    for item in before:
        if item.status not in (DeadlineStatus.DONE, DeadlineStatus.WAIVED) and item.kind not in open_due:
            open_due[item.kind] = item.due_on
    out: list[Met] = []
    for (plan_type, name), kinds in _FIELD_KINDS.items():
        if plan_type != new.plan_type:
            continue
        was, now = getattr(old, name), getattr(new, name)
        if now is None or now == was:
            continue
        candidates: list[tuple[int, int, Met]] = []
        first = kinds[0]
        for rank, kind in enumerate(kinds):
            if kind in recorded_kinds(recorded, was):
                due = recorded[(kind, was)]
                candidates.append((abs((now - due).days), 0, Met(kind, due, now, corrects=was)))
            if kind not in open_due:
                continue
            if kind is DeadlineKind.INITIAL_EVALUATION and (new.evaluation_consent_on is None
                                                            or now < new.evaluation_consent_on):
                continue
            if kind is DeadlineKind.INITIAL_IEP_MEETING and (new.eligibility_determined_on is None
                                                             or now < new.eligibility_determined_on):
                continue
            if was is not None and now < was:
                continue   # moving a date earlier meets nothing new
            if kind is first and len(kinds) > 1:
                # The first-time deadline, still open and reachable: nothing else can be met before it.
                candidates.append((-1, 1, Met(kind, open_due[kind], now)))
            else:
                candidates.append((abs((now - open_due[kind]).days), 1 + rank, Met(kind, open_due[kind], now)))
        if candidates:
            out.append(min(candidates, key=lambda c: (c[0], c[1]))[2])
    return out


def recorded_kinds(recorded: dict[tuple[DeadlineKind, dt.date], dt.date], day: dt.date | None) -> set[DeadlineKind]:
    if day is None:
        return set()
    return {kind for kind, completed in recorded if completed == day}


@dataclass(frozen=True)
class DateChange:
    """One plan date a held meeting set: the field, its value before and after the meeting, and whether it was
    undone already (the meeting removed or corrected)."""

    meeting_id: int
    field: str
    before: dt.date | None
    after: dt.date | None
    undone: bool = False


def date_without_meeting(current: dt.date | None, meeting_id: int, field_name: str,
                         changes: Sequence[DateChange]) -> tuple[bool, dt.date | None]:
    """What a plan date becomes when the held meeting ``meeting_id`` is withdrawn: ``(changed, value)``.

    The date goes back to what it was before the meeting set it, only while it still holds what the meeting set:
    a date the deadlines page or a later meeting set since stays. Going back passes over dates other withdrawn
    meetings had set (meeting A set X -> A, meeting B set A -> B; A removed first leaves B; B removed then gives X,
    not the A of a meeting that did not happen)."""
    mine = [c for c in changes if c.meeting_id == meeting_id and c.field == field_name and not c.undone]
    if not mine:
        return False, current
    last = mine[-1]
    if current != last.after:
        return False, current
    withdrawn = [c for c in changes if c.field == field_name and (c.undone or c.meeting_id == meeting_id)]
    value = mine[0].before
    for _ in range(len(withdrawn)):
        earlier = next((c for c in reversed(withdrawn) if c.after == value and c.before != value), None)
        if earlier is None:
            break
        value = earlier.before
    return value != current, value
