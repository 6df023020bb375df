"""Service minutes: delivered against required, per week (Monday to Sunday) or calendar month, and the running
ledger of minutes owed from the service's first day.

The plan states each service's frequency and duration (IDEA 34 CFR 300.320(a)(4) and (a)(7)) and the school must
provide it as written (34 CFR 300.323(c)(2)); minutes the school did not provide are owed as compensatory services,
the remedy 34 CFR 300.151(b)(1) names. The rules:

- Only ``delivered`` sessions of kind ``session`` count towards a period. A ``student_absent`` session counts for
  nothing and owes nothing (the school offered the service). Minutes short for any other reason (the provider was
  absent, or nothing was delivered or recorded) are **owed**: ``required - delivered - missed by the student``.
- A period the service only partly covers (it starts or ends inside it), or in which the school is closed, requires
  a share of the minutes in proportion to its open school days (Monday to Friday, not a closure) over all its
  weekdays, rounded half up: a closed week requires none (no student is served while school is closed).
- A period is *short* and accrues what it owes only once it is over: the current period shows progress.
- **Make-up** sessions (kind ``make_up``) pay down what is owed; extra regular minutes in a later period do not (they
  count only in their own period). The ledger is a running balance from the service's start, never a window of
  recent periods, so owed minutes never drop out of sight: each period adds what it owes and subtracts the make-up
  minutes delivered in it, and the balance never goes below zero (a make-up pays what is owed; it does not pre-pay
  a future miss).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

WEEK = "week"
MONTH = "month"
DELIVERED = "delivered"
STUDENT_ABSENT = "student_absent"
PROVIDER_ABSENT = "provider_absent"
SESSION = "session"
MAKE_UP = "make_up"
SESSION_KINDS = (SESSION, MAKE_UP)


@dataclass(frozen=True)
class SessionFact:
    held_on: dt.date
    minutes: int
    attendance: str
    kind: str = SESSION
    """``session`` (a regular session, counted in its period) | ``make_up`` (pays down minutes owed)."""


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
    made_up: int = 0
    """Make-up minutes delivered in this period (they pay down what is owed, not this period's requirement)."""
    closed_days: int = 0
    """Weekdays of the period the service covers on which the school was closed."""

    @property
    def missing(self) -> int:
        return max(0, self.required - self.delivered)

    @property
    def short(self) -> bool:
        return self.complete and self.delivered < self.required

    @property
    def owed(self) -> int:
        """Minutes this period adds to what the school owes, once it is over: what it is short, except what the
        student missed (34 CFR 300.151(b)(1) compensatory services)."""
        if not self.complete:
            return 0
        return max(0, self.required - self.delivered - self.student_absent)

    @property
    def make_up_owed(self) -> int:
        """The same as ``owed`` (the name the pages used before the ledger)."""
        return self.owed

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


def closed_weekdays(closures: Iterable[tuple[dt.date, dt.date]]) -> frozenset[dt.date]:
    """The weekdays (Monday to Friday) inside any of the closures (first and last day inclusive)."""
    days: set[dt.date] = set()
    for first, last in closures:
        day = first
        while day <= last:
            if day.weekday() < 5:
                days.add(day)
            day += dt.timedelta(days=1)
    return frozenset(days)


def _closed_in(lo: dt.date, hi: dt.date, closed: Collection[dt.date]) -> int:
    if not closed or hi < lo:
        return 0
    if (hi - lo).days + 1 < len(closed):
        return sum(1 for i in range((hi - lo).days + 1) if lo + dt.timedelta(days=i) in closed)
    return sum(1 for d in closed if lo <= d <= hi)


def required_minutes(minutes: int, period_start: dt.date, period_end: dt.date, starts_on: dt.date,
                     ends_on: dt.date | None, closed: Collection[dt.date] = frozenset()) -> int:
    """The minutes required in one period: all of them when the service covers every weekday of the period and
    the school is open; otherwise the share of open school days covered (``closed`` holds closed weekdays) over the
    period's weekdays, rounded half up. A closed week requires none; a partly closed week requires its share."""
    return _required(minutes, period_start, period_end, starts_on, ends_on, closed)[0]


def _required(minutes: int, period_start: dt.date, period_end: dt.date, starts_on: dt.date, ends_on: dt.date | None,
              closed: Collection[dt.date]) -> tuple[int, int]:
    """(required minutes, closed weekdays inside the covered part)."""
    lo = max(period_start, starts_on)
    hi = min(period_end, ends_on) if ends_on else period_end
    if hi < lo:
        return 0, 0
    shut = _closed_in(lo, hi, closed)
    if lo == period_start and hi == period_end and not shut:
        return minutes, 0
    total = school_days(period_start, period_end)
    covered = school_days(lo, hi) - shut
    if total == 0 or covered <= 0:
        return 0, shut
    return (2 * minutes * covered + total) // (2 * total), shut


def tally(minutes: int, period: str, start: dt.date, end: dt.date, starts_on: dt.date, ends_on: dt.date | None,
          sessions: Iterable[SessionFact], today: dt.date, closed: Collection[dt.date] = frozenset()) -> PeriodMinutes:
    """One period's figures from the sessions (sessions outside the period are ignored)."""
    by = {DELIVERED: 0, STUDENT_ABSENT: 0, PROVIDER_ABSENT: 0}
    made_up = 0
    for s in sessions:
        if start <= s.held_on <= end and s.attendance in by:
            if s.kind == MAKE_UP:
                made_up += s.minutes if s.attendance == DELIVERED else 0
            else:
                by[s.attendance] += s.minutes
    required, shut = _required(minutes, start, end, starts_on, ends_on, closed)
    return PeriodMinutes(start, end, required, by[DELIVERED], by[STUDENT_ABSENT], by[PROVIDER_ABSENT], today > end,
                         made_up, shut)


def history(minutes: int, period: str, starts_on: dt.date, ends_on: dt.date | None, sessions: Iterable[SessionFact],
            today: dt.date, count: int = 6, closed: Collection[dt.date] = frozenset()) -> list[PeriodMinutes]:
    """The current period and up to ``count - 1`` before it, newest first, limited to the service's dates."""
    facts = list(sessions)
    out: list[PeriodMinutes] = []
    anchor = min(today, ends_on) if ends_on else today
    start, end = period_bounds(anchor, period)
    while len(out) < count and end >= starts_on:
        out.append(tally(minutes, period, start, end, starts_on, ends_on, facts, today, closed))
        start, end = period_bounds(start - dt.timedelta(days=1), period)
    return out


# ------------------------------------------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class LedgerRow:
    """One period of the running ledger."""

    period: PeriodMinutes
    owed: int
    """Minutes this period added to what is owed (0 until it is over)."""
    made_up: int
    """Make-up minutes delivered in this period."""
    balance: int
    """Minutes still owed after this period."""


@dataclass(frozen=True)
class Ledger:
    """A service's minutes from its first day: totals over the completed periods, the make-ups delivered so far
    (the current period's included) and the balance still owed."""

    rows: tuple[LedgerRow, ...] = ()
    """Oldest first; the last row may be the current period (not complete)."""
    required: int = 0
    delivered: int = 0
    missed_by_student: int = 0
    missed_by_provider: int = 0
    owed: int = 0
    """Everything the completed periods added to what is owed."""
    made_up: int = 0
    still_owed: int = 0
    closed_days: int = 0

    @property
    def current(self) -> PeriodMinutes | None:
        return self.rows[-1].period if self.rows and not self.rows[-1].period.complete else None


@dataclass
class LedgerTotals:
    """Ledgers added up (a student's services, a caseload)."""

    services: int = 0
    owing: int = 0
    """Services with minutes still owed."""
    required: int = 0
    delivered: int = 0
    missed_by_student: int = 0
    missed_by_provider: int = 0
    made_up: int = 0
    still_owed: int = 0
    by_service: dict[int, Ledger] = field(default_factory=dict)

    def add(self, key: int, ledger: Ledger) -> None:
        self.by_service[key] = ledger
        self.services += 1
        self.owing += int(ledger.still_owed > 0)
        self.required += ledger.required
        self.delivered += ledger.delivered
        self.missed_by_student += ledger.missed_by_student
        self.missed_by_provider += ledger.missed_by_provider
        self.made_up += ledger.made_up
        self.still_owed += ledger.still_owed


def periods_between(first: dt.date, last: dt.date, period: str) -> list[tuple[dt.date, dt.date]]:
    """Every period from the one containing ``first`` to the one containing ``last``, oldest first."""
    out: list[tuple[dt.date, dt.date]] = []
    if last < first:
        return out
    start, end = period_bounds(first, period)
    while start <= last:
        out.append((start, end))
        start, end = period_bounds(end + dt.timedelta(days=1), period)
    return out


def ledger(minutes: int, period: str, starts_on: dt.date, ends_on: dt.date | None, sessions: Iterable[SessionFact],
           today: dt.date, closed: Collection[dt.date] = frozenset()) -> Ledger:
    """The running ledger of one service from its first day to today (or its last day): every period's
    figures, what each completed period owes, make-ups, and the balance still owed."""
    last = min(today, ends_on) if ends_on else today
    bounds = periods_between(starts_on, last, period)
    if not bounds:
        return Ledger()
    buckets: dict[dt.date, list[SessionFact]] = {}
    lo, hi = bounds[0][0], bounds[-1][1]
    for s in sessions:
        if lo <= s.held_on <= hi:
            buckets.setdefault(period_bounds(s.held_on, period)[0], []).append(s)
    rows: list[LedgerRow] = []
    balance = required = delivered = by_student = by_provider = owed_total = made_up_total = shut = 0
    for start, end in bounds:
        p = tally(minutes, period, start, end, starts_on, ends_on, buckets.get(start, ()), today, closed)
        owed = p.owed
        balance = max(0, balance + owed - p.made_up)
        made_up_total += p.made_up
        if p.complete:
            required += p.required
            delivered += p.delivered
            by_student += p.student_absent
            by_provider += p.provider_absent
            owed_total += owed
            shut += p.closed_days
        rows.append(LedgerRow(p, owed, p.made_up, balance))
    return Ledger(tuple(rows), required, delivered, by_student, by_provider, owed_total, made_up_total, balance, shut)
