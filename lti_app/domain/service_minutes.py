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
import functools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from lti_app.domain.dates import shown_day

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
        return f"week of {shown_day(self.start)}"


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
    last_complete: PeriodMinutes | None = None
    """The most recent period that is over (the caseload's "short last week/month")."""

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


Sums = tuple[int, int, int, int]
"""Minutes of one period: (delivered, student absent, provider absent) of regular sessions, make-up delivered."""
NO_MINUTES: Sums = (0, 0, 0, 0)


def period_sums(sessions: Iterable[SessionFact], period: str) -> dict[dt.date, Sums]:
    """The sessions added up per period (keyed by the period's first day), as ``ledger_totals`` reads them."""
    out: dict[dt.date, list[int]] = {}
    for s in sessions:
        if s.attendance not in (DELIVERED, STUDENT_ABSENT, PROVIDER_ABSENT):
            continue
        row = out.setdefault(period_bounds(s.held_on, period)[0], [0, 0, 0, 0])
        if s.kind == MAKE_UP:
            row[3] += s.minutes if s.attendance == DELIVERED else 0
        else:
            row[(DELIVERED, STUDENT_ABSENT, PROVIDER_ABSENT).index(s.attendance)] += s.minutes
    return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}


@functools.lru_cache(maxsize=4096)
def _open_share(start: dt.date, end: dt.date, closed: frozenset[dt.date]) -> tuple[int, int, int]:
    """(open weekdays, weekdays, closed weekdays) of a whole period: the same for every service of a school."""
    shut = _closed_in(start, end, closed)
    total = school_days(start, end)
    return total - shut, total, shut


@functools.lru_cache(maxsize=512)
def _closed_periods(closed: frozenset[dt.date], period: str) -> frozenset[dt.date]:
    """The first days of the periods holding a closed day (a frozenset caches its hash, so this is a dict lookup)."""
    return frozenset(period_bounds(d, period)[0] for d in closed)


def ledger_totals(minutes: int, period: str, starts_on: dt.date, ends_on: dt.date | None,
                  sums: Mapping[dt.date, Sums], today: dt.date, closed: Collection[dt.date] = frozenset(),
                  keep_rows: bool = False) -> Ledger:
    """The running ledger from per-period sums (``period_sums``, or the same sums added up by the database): the
    one implementation of the rules above. Without ``keep_rows`` no per-period object is built, which is what lets
    a caseload of hundreds of services be summed in a few milliseconds."""
    last = min(today, ends_on) if ends_on else today
    if last < starts_on:
        return Ledger()
    closed_set = closed if isinstance(closed, frozenset) else frozenset(closed)
    special = _closed_periods(closed_set, period) if closed_set else frozenset()
    start, end = period_bounds(starts_on, period)
    weekly = period == WEEK
    rows: list[LedgerRow] = []
    balance = required_t = delivered_t = student_t = provider_t = owed_t = made_up_t = shut_t = 0
    last_complete: tuple[dt.date, dt.date, int, Sums, int] | None = None
    while start <= last:
        d, sa, pa, mu = sums.get(start, NO_MINUTES)
        if starts_on > start or (ends_on is not None and ends_on < end):
            required, shut = _required(minutes, start, end, starts_on, ends_on, closed_set)
        elif start in special:
            covered, total, shut = _open_share(start, end, closed_set)
            required = (2 * minutes * covered + total) // (2 * total) if covered > 0 and total else 0
        else:
            required, shut = minutes, 0
        complete = today > end
        owed = max(0, required - d - sa) if complete else 0
        balance = max(0, balance + owed - mu)
        made_up_t += mu
        if complete:
            required_t += required
            delivered_t += d
            student_t += sa
            provider_t += pa
            owed_t += owed
            shut_t += shut
            last_complete = (start, end, required, (d, sa, pa, mu), shut)
        if keep_rows:
            rows.append(LedgerRow(PeriodMinutes(start, end, required, d, sa, pa, complete, mu, shut), owed, mu,
                                  balance))
        if weekly:
            start, end = start + _WEEK_STEP, end + _WEEK_STEP
        else:
            start = end + _DAY
            end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    last_period = None
    if last_complete is not None:
        lstart, lend, lrequired, (d, sa, pa, mu), lshut = last_complete
        last_period = PeriodMinutes(lstart, lend, lrequired, d, sa, pa, True, mu, lshut)
    return Ledger(tuple(rows), required_t, delivered_t, student_t, provider_t, owed_t, made_up_t, balance, shut_t,
                  last_period)


_DAY = dt.timedelta(days=1)
_WEEK_STEP = dt.timedelta(days=7)


def ledger(minutes: int, period: str, starts_on: dt.date, ends_on: dt.date | None, sessions: Iterable[SessionFact],
           today: dt.date, closed: Collection[dt.date] = frozenset()) -> Ledger:
    """The running ledger of one service from its first day to today (or its last day): every period's
    figures, what each completed period owes, make-ups, and the balance still owed."""
    return ledger_totals(minutes, period, starts_on, ends_on, period_sums(sessions, period), today, closed,
                         keep_rows=True)
