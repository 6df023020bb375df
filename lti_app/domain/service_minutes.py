"""Service minutes: delivered against required, per week (Monday to Sunday) or calendar month.

- Only ``delivered`` sessions count. A ``student_absent`` session counts for nothing and owes nothing (the school
  offered the service); a ``provider_absent`` session is the school's miss: its minutes are owed as a make-up
  (as far as the period is short).
- A period the service only partly covers (it starts or ends inside it) requires a share of the minutes in
  proportion to the school days (Monday to Friday) it covers, rounded half up.
- A period is *short* only once it is over: the current period shows progress, not a shortfall.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

WEEK = "week"
MONTH = "month"
DELIVERED = "delivered"
STUDENT_ABSENT = "student_absent"
PROVIDER_ABSENT = "provider_absent"


@dataclass(frozen=True)
class SessionFact:
    held_on: dt.date
    minutes: int
    attendance: str


@dataclass(frozen=True)
class PeriodMinutes:
    start: dt.date
    end: dt.date
    """Inclusive."""
    required: int
    delivered: int
    student_absent: int
    provider_absent: int
    complete: bool
    """The period is over (today is after its end)."""

    @property
    def missing(self) -> int:
        return max(0, self.required - self.delivered)

    @property
    def short(self) -> bool:
        return self.complete and self.delivered < self.required

    @property
    def make_up_owed(self) -> int:
        """Minutes the school owes: provider-absent minutes, as far as the period is short of its requirement."""
        return min(self.provider_absent, self.missing)

    def label(self, period: str) -> str:
        if period == MONTH:
            return self.start.strftime("%B %Y")
        return f"week of {self.start.isoformat()}"


def period_bounds(day: dt.date, period: str) -> tuple[dt.date, dt.date]:
    """The week (Monday to Sunday) or calendar month containing ``day``, both ends inclusive."""
    if period == WEEK:
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    if period == MONTH:
        last = calendar.monthrange(day.year, day.month)[1]
        return day.replace(day=1), day.replace(day=last)
    raise ValueError(f"unknown period {period!r}")


def previous_period(day: dt.date, period: str) -> tuple[dt.date, dt.date]:
    start, _ = period_bounds(day, period)
    return period_bounds(start - dt.timedelta(days=1), period)


def last_completed(today: dt.date, period: str) -> tuple[dt.date, dt.date]:
    """The most recent period that is over on ``today``."""
    return previous_period(today, period)


def school_days(start: dt.date, end: dt.date) -> int:
    """Monday-to-Friday days from ``start`` to ``end`` inclusive (0 when end < start)."""
    if end < start:
        return 0
    days = (end - start).days + 1
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    first = start.weekday()
    count += sum(1 for i in range(rest) if (first + i) % 7 < 5)
    return count


def required_minutes(minutes: int, period_start: dt.date, period_end: dt.date, starts_on: dt.date,
                     ends_on: dt.date | None) -> int:
    """The minutes required in one period, prorated by school days when the service covers part of it."""
    lo = max(period_start, starts_on)
    hi = min(period_end, ends_on) if ends_on else period_end
    if hi < lo:
        return 0
    if lo == period_start and hi == period_end:
        return minutes
    total = school_days(period_start, period_end)
    covered = school_days(lo, hi)
    if total == 0:
        return 0
    return (2 * minutes * covered + total) // (2 * total)


def tally(minutes: int, period: str, start: dt.date, end: dt.date, starts_on: dt.date, ends_on: dt.date | None,
          sessions: Iterable[SessionFact], today: dt.date) -> PeriodMinutes:
    """One period's figures from the sessions (sessions outside the period are ignored)."""
    by = {DELIVERED: 0, STUDENT_ABSENT: 0, PROVIDER_ABSENT: 0}
    for s in sessions:
        if start <= s.held_on <= end and s.attendance in by:
            by[s.attendance] += s.minutes
    return PeriodMinutes(start, end, required_minutes(minutes, start, end, starts_on, ends_on), by[DELIVERED],
                         by[STUDENT_ABSENT], by[PROVIDER_ABSENT], today > end)


def history(minutes: int, period: str, starts_on: dt.date, ends_on: dt.date | None, sessions: Iterable[SessionFact],
            today: dt.date, count: int = 6) -> list[PeriodMinutes]:
    """The current period and up to ``count - 1`` before it, newest first, limited to the service's dates."""
    facts = list(sessions)
    out: list[PeriodMinutes] = []
    anchor = min(today, ends_on) if ends_on else today
    start, end = period_bounds(anchor, period)
    while len(out) < count and end >= starts_on:
        out.append(tally(minutes, period, start, end, starts_on, ends_on, facts, today))
        start, end = period_bounds(start - dt.timedelta(days=1), period)
    return out
