"""The data for one goal's progress chart, drawn by the template as inline SVG (server-side, no JavaScript).

What a progress-monitoring graph shows (the usual curriculum-based measurement picture): the data points, the
**aim line** from the baseline to the target on the target date, and the **trend line** fitted to the data by
least squares, so a reader can see whether the student is on course to meet the goal. The same facts are given
in words (``desc``) and as a table for screen-reader users and print.

Pure: numbers and strings only. Coordinates are in SVG user units (y grows downwards); the template escapes every
string it prints.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

MIN_TREND_POINTS = 3
"""A trend of two points is a line through them and says nothing; three is the least we fit."""


@dataclass(frozen=True)
class ChartGoal:
    title: str
    unit: str
    baseline: float
    target: float
    baseline_on: dt.date
    target_on: dt.date


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class PlotPoint:
    x: float
    y: float
    day: dt.date
    value: float
    label: str
    """"12 Oct 2026: 48 words correct per minute" — the point's own <title>."""


@dataclass(frozen=True)
class TableRow:
    day: dt.date
    value: str
    aim: str
    """The aim line's value on that day, for comparison."""


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    points: tuple[PlotPoint, ...]
    polyline: str
    aim: Segment
    trend: Segment | None
    slope_per_week: float | None
    on_track: bool | None
    """Trend at the last data point at or beyond the aim line (direction-aware); None without a trend."""
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    x_label: str
    y_label: str
    title: str
    desc: str
    rows: tuple[TableRow, ...]


def least_squares(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float] | None:
    """(slope, intercept) of the ordinary least-squares line, or None when it is undefined (fewer than two
    points, or every x the same)."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 x 10^k steps) covering [lo, hi]: the finest such step that gives at most
    ``count + 2`` ticks."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for step in (m * magnitude for m in (1, 2, 2.5, 5, 10, 20, 25, 50, 100)):
        start = math.floor(lo / step + 1e-9) * step
        ticks = [round(start + i * step, 10) for i in range(math.ceil((hi - start) / step - 1e-9) + 1)]
        if len(ticks) <= count + 2:
            return ticks
    return [lo, hi]  # pragma: no cover - the 100 x step always fits


def fmt_number(value: float) -> str:
    """48 -> "48", 2.50 -> "2.5", 0.333 -> "0.33"."""
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_day(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def _month_ticks(first: dt.date, last: dt.date, most: int = 6) -> list[dt.date]:
    months = []
    day = dt.date(first.year, first.month, 1)
    if day < first:
        day = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    while day <= last:
        months.append(day)
        day = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    if not months:
        return [first, last] if first != last else [first]
    step = math.ceil(len(months) / most)
    return months[::step]


def build_chart(goal: ChartGoal, data: Sequence[tuple[dt.date, float]], width: int = 640, height: int = 300) -> Chart:
    """Lay out one goal's chart. ``data`` is (date, value) in any order."""
    data = sorted(data)
    left, top, right, bottom = 64.0, 16.0, width - 16.0, height - 48.0
    days = [goal.baseline_on, goal.target_on, *(d for d, _ in data)]
    x0, x1 = min(days), max(days)
    span_days = max((x1 - x0).days, 1)
    values = [goal.baseline, goal.target, *(v for _, v in data)]
    y_ticks_values = nice_ticks(min(values), max(values))
    y_lo, y_hi = y_ticks_values[0], y_ticks_values[-1]

    def sx(day: dt.date) -> float:
        return round(left + (day - x0).days / span_days * (right - left), 1)

    def sy(value: float) -> float:
        return round(bottom - (value - y_lo) / (y_hi - y_lo) * (bottom - top), 1)

    unit = goal.unit.strip()

    def with_unit(value: float) -> str:
        return f"{fmt_number(value)} {unit}" if unit else fmt_number(value)

    def aim_at(day: dt.date) -> float:
        total = (goal.target_on - goal.baseline_on).days
        if total <= 0:
            return goal.target
        return goal.baseline + (goal.target - goal.baseline) * (day - goal.baseline_on).days / total

    points = tuple(PlotPoint(sx(d), sy(v), d, v, f"{fmt_day(d)}: {with_unit(v)}") for d, v in data)
    aim = Segment(sx(goal.baseline_on), sy(goal.baseline), sx(goal.target_on), sy(goal.target))

    trend = None
    slope_week = None
    on_track = None
    if len(data) >= MIN_TREND_POINTS:
        fit = least_squares([float((d - x0).days) for d, _ in data], [v for _, v in data])
        if fit is not None:
            slope, intercept = fit
            first, last = data[0][0], data[-1][0]
            at_first = intercept + slope * (first - x0).days
            at_last = intercept + slope * (last - x0).days
            trend = Segment(sx(first), sy(at_first), sx(last), sy(at_last))
            slope_week = slope * 7
            rising_is_good = goal.target >= goal.baseline
            on_track = at_last >= aim_at(last) - 1e-9 if rising_is_good else at_last <= aim_at(last) + 1e-9

    desc = [f"Aim line from the baseline of {with_unit(goal.baseline)} on {fmt_day(goal.baseline_on)} to the target "
            f"of {with_unit(goal.target)} by {fmt_day(goal.target_on)}."]
    if data:
        desc.append(f"{len(data)} data point{'s' if len(data) != 1 else ''} from {fmt_day(data[0][0])} to "
                    f"{fmt_day(data[-1][0])}; the latest is {with_unit(data[-1][1])}.")
    else:
        desc.append("No data points yet.")
    if slope_week is not None:
        direction = "rising" if slope_week > 0 else "falling" if slope_week < 0 else "flat"
        amount = f" by about {with_unit(abs(slope_week))} a week" if slope_week else ""
        desc.append(f"Trend: {direction}{amount}; at the latest data point it is "
                    f"{'on or ahead of' if on_track else 'behind'} the aim line.")
    elif data:
        desc.append(f"A trend line needs at least {MIN_TREND_POINTS} data points.")

    return Chart(
        width=width, height=height, left=left, top=top, right=right, bottom=bottom, points=points,
        polyline=" ".join(f"{p.x},{p.y}" for p in points), aim=aim, trend=trend, slope_per_week=slope_week,
        on_track=on_track,
        x_ticks=tuple(Tick(sx(d), f"{d:%b %Y}") for d in _month_ticks(x0, x1)),
        y_ticks=tuple(Tick(sy(v), fmt_number(v)) for v in y_ticks_values),
        x_label="Date", y_label=unit or "Value", title=f"Progress: {goal.title}", desc=" ".join(desc),
        rows=tuple(TableRow(d, with_unit(v), with_unit(aim_at(d))) for d, v in data))
