"""Validation rules for plans and accommodations edited by hand. Pure: returns problems, writes nothing.

The date rules are the importer's (``services/importer.py``), so a plan entered in the editor and one imported
from the SIS are held to the same standard: the end is not before the start; the annual review is after the
start and, for an IEP, within 12 months (IDEA 34 CFR 300.324(b)(1)(i)); a reevaluation is not more than three
years before the start (34 CFR 300.303(b)(2)).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

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


@dataclass(frozen=True)
class PlanDates:
    effective_on: dt.date
    end_on: dt.date | None
    annual_review_due: dt.date | None
    reevaluation_due: dt.date | None


def check_plan_dates(plan_type: str, effective: str, end: str, review: str, reeval: str
                     ) -> tuple[PlanDates | None, list[Problem]]:
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
        if rev is not None and plan_type == PlanType.IEP.value and rev > eff + dt.timedelta(days=366):
            problems.append(Problem("annual_review_due",
                                    f"The annual review date {rev} is more than 12 months after the effective date "
                                    f"{eff}; an IEP is reviewed at least once a year (34 CFR 300.324(b)(1)(i))."))
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
