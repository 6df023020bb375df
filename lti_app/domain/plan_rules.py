"""Validation rules for plans and accommodations edited by hand. Pure: returns problems, writes nothing.

The date rules are the importer's (``services/importer.py``), so a plan entered in the editor and one imported
from the SIS are held to the same standard: the end is not before the start; the annual review is after the
start and, for an IEP, no later than one calendar year after the effective date and the last IEP meeting
(IDEA 34 CFR 300.324(b)(1)(i); ``deadlines.latest_annual_review``); a reevaluation is not more than three
years before the start (34 CFR 300.303(b)(2)).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from lti_app.domain.deadlines import add_years, latest_annual_review
from lti_app.domain.vocab import AccommodationCategory, AppliesTo, PlanType

MAX_TEXT = 2000
MAX_SUMMARY = 4000
MAX_SUBJECTS = 20


@dataclass(frozen=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return self.message


def parse_date(raw: str | None, field: str, label: str, problems: list[Problem], required: bool = False
               ) -> dt.date | None:
    value = (raw or "").strip()
    if not value:
        if required:
            problems.append(Problem(field, f"Enter the {label}."))
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        problems.append(Problem(field, f"The {label} must be a date written YYYY-MM-DD; {value[:20]!r} is not."))
        return None


def add_one_year(day: dt.date) -> dt.date:
    return add_years(day, 1)


@dataclass(frozen=True)
class PlanDates:
    effective_on: dt.date
    end_on: dt.date | None
    annual_review_due: dt.date | None
    reevaluation_due: dt.date | None


def check_plan_dates(plan_type: str, effective: str, end: str, review: str, reeval: str,
                     last_meeting_on: dt.date | None = None) -> tuple[PlanDates | None, list[Problem]]:
    """``last_meeting_on``: the plan's last IEP meeting when known (the annual review is due within a calendar year
    of it as well as of the effective date)."""
    problems: list[Problem] = []
    eff = parse_date(effective, "effective_on", "effective date", problems, required=True)
    end_on = parse_date(end, "end_on", "end date", problems)
    rev = parse_date(review, "annual_review_due", "annual review date", problems)
    re_ = parse_date(reeval, "reevaluation_due", "reevaluation date", problems)
    if eff is not None:
        if end_on is not None and end_on < eff:
            problems.append(Problem("end_on", f"The end date {end_on} is before the effective date {eff}."))
        if rev is not None and rev <= eff:
            problems.append(Problem("annual_review_due",
                                    f"The annual review date {rev} must be after the effective date {eff}."))
        latest = latest_annual_review(eff, last_meeting_on)
        if rev is not None and plan_type == PlanType.IEP.value and latest is not None and rev > latest:
            since = (f"the last IEP meeting {last_meeting_on}" if last_meeting_on is not None
                     and latest == add_one_year(last_meeting_on) and latest != add_one_year(eff)
                     else f"the effective date {eff}")
            problems.append(Problem("annual_review_due",
                                    f"The annual review date {rev} is more than one year after {since}: it must be "
                                    f"on or before {latest}, as an IEP is reviewed at least once a year "
                                    "(34 CFR 300.324(b)(1)(i))."))
        if re_ is not None and re_ <= eff - dt.timedelta(days=3 * 366):
            problems.append(Problem("reevaluation_due",
                                    f"The reevaluation date {re_} is more than three years before the effective "
                                    f"date {eff}."))
    if problems or eff is None:
        return None, problems
    return PlanDates(eff, end_on, rev, re_), []


@dataclass(frozen=True)
class AccommodationInput:
    category: str
    text: str
    applies_to: str
    subjects: tuple[str, ...]
    time_multiplier: Decimal | None
    extra_attempts: int | None


def check_accommodation(category: str, text: str, applies_to: str, subjects: str, time_multiplier: str,
                        extra_attempts: str) -> tuple[AccommodationInput | None, list[Problem]]:
    problems: list[Problem] = []
    if category not in {c.value for c in AccommodationCategory}:
        problems.append(Problem("category", "Choose a category: presentation, response, setting or timing."))
    words = " ".join((text or "").split())
    if not words:
        problems.append(Problem("text", "Write the accommodation in words a teacher can act on."))
    elif len(words) > MAX_TEXT:
        problems.append(Problem("text", f"An accommodation is limited to {MAX_TEXT:,} characters; this one has "
                                        f"{len(words):,}."))
    applies = applies_to or AppliesTo.ALL.value
    if applies not in {a.value for a in AppliesTo}:
        problems.append(Problem("applies_to", "Choose where it applies: classroom, tests or both."))
    subject_list = tuple(dict.fromkeys(s for s in (" ".join(p.split()) for p in (subjects or "").split(";")) if s))
    if len(subject_list) > MAX_SUBJECTS or any(len(s) > 100 for s in subject_list):
        problems.append(Problem("subjects", f"List at most {MAX_SUBJECTS} subjects of up to 100 characters, "
                                            "separated by ';'."))
    multiplier: Decimal | None = None
    raw_mult = (time_multiplier or "").strip().rstrip("xX").strip()
    if raw_mult:
        try:
            multiplier = Decimal(raw_mult).quantize(Decimal("0.01"), ROUND_HALF_UP)
        except InvalidOperation:
            problems.append(Problem("time_multiplier", f"The time multiplier must be a number such as 1.5; "
                                                       f"{raw_mult[:20]!r} is not."))
        else:
            if not Decimal(1) <= multiplier <= Decimal(4):
                problems.append(Problem("time_multiplier", "The time multiplier must be between 1 and 4."))
    attempts: int | None = None
    raw_attempts = (extra_attempts or "").strip()
    if raw_attempts:
        if not (raw_attempts.isascii() and raw_attempts.isdigit()) or int(raw_attempts) > 20:
            problems.append(Problem("extra_attempts", "Extra attempts must be a whole number from 0 to 20."))
        else:
            attempts = int(raw_attempts)
    if problems:
        return None, problems
    return AccommodationInput(category, words, applies, subject_list, multiplier, attempts), []


# --- accommodations that contradict ----------------------------------------------------------------------------

SINGLE_VALUED = {"time_multiplier": "time multiplier", "extra_attempts": "extra attempts"}
"""Accommodation parameters a plan can hold only one value of for the same tests or classroom work: the LMS applies
one extended time and one number of extra attempts per quiz, and a teacher cannot give both 1.5x and 2x."""
SINGLE_VALUED_COLUMN = {"time_multiplier": "time_multiplier", "extra_attempts": "extra_attempts"}
"""The import column (and editor field) of each single-valued parameter."""


@dataclass(frozen=True)
class AccommodationFacts:
    """What the conflict rule reads of one accommodation (from the editor, the database or an import row)."""

    text: str
    applies_to: str
    subjects: tuple[str, ...] = ()
    time_multiplier: Decimal | None = None
    extra_attempts: int | None = None
    ref: int | str | None = None
    """The caller's handle on it (accommodation id, import line)."""


@dataclass(frozen=True)
class Contradiction:
    parameter: str
    first: AccommodationFacts
    second: AccommodationFacts

    @property
    def message(self) -> str:
        label = SINGLE_VALUED[self.parameter]
        one, two = getattr(self.first, self.parameter), getattr(self.second, self.parameter)
        return (f"These two accommodations contradict each other: “{_short(self.first.text)}” ({label} "
                f"{_value(one)}) and “{_short(self.second.text)}” ({label} {_value(two)}) both apply to "
                f"{_scope(self.first, self.second)}. A plan holds one {label} there: remove one, or limit them to "
                "different subjects or to tests and classroom work separately.")


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "…"


def _value(value: object) -> str:
    if isinstance(value, Decimal):
        return f"{value.normalize()}x"
    return str(value)


def _applies(a: str) -> set[str]:
    return {AppliesTo.CLASSROOM.value, AppliesTo.TESTS.value} if a == AppliesTo.ALL.value else {a}


def _subjects(a: AccommodationFacts) -> set[str] | None:
    return {s.casefold() for s in a.subjects} or None   # None: every subject


def _scope(a: AccommodationFacts, b: AccommodationFacts) -> str:
    where = _applies(a.applies_to) & _applies(b.applies_to)
    work = "tests and classroom work" if len(where) == 2 else ("tests" if "tests" in where else "classroom work")
    sa, sb = _subjects(a), _subjects(b)
    if sa is None and sb is None:
        return f"{work} in every subject"
    common = sorted((sa or sb or set()) if sa is None or sb is None else sa & sb)
    names = {s.casefold(): s for s in (*a.subjects, *b.subjects)}
    return f"{work} in {', '.join(names[c] for c in common)}"


def overlap(a: AccommodationFacts, b: AccommodationFacts) -> bool:
    """Both apply to some of the same work: where (tests / classroom; "all" is both) and subjects (none listed =
    every subject) intersect."""
    if not _applies(a.applies_to) & _applies(b.applies_to):
        return False
    sa, sb = _subjects(a), _subjects(b)
    return sa is None or sb is None or bool(sa & sb)


def contradictions(items: list[AccommodationFacts]) -> list[Contradiction]:
    """Pairs of accommodations that cannot both be in force: the same single-valued parameter with two different
    values over overlapping work. The same value twice is repetition, not contradiction, and is left alone."""
    out: list[Contradiction] = []
    for i, a in enumerate(items):
        for b in items[i + 1:]:
            if not overlap(a, b):
                continue
            for name in SINGLE_VALUED:
                va, vb = getattr(a, name), getattr(b, name)
                if va is not None and vb is not None and va != vb:
                    out.append(Contradiction(name, a, b))
    return out
