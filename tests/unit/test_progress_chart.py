"""Progress chart geometry: least squares, ticks, aim and trend lines, words for screen readers."""

from __future__ import annotations

import datetime as dt

import pytest

from lti_app.domain.progress_chart import ChartGoal, build_chart, fmt_number, least_squares, nice_ticks

D = dt.date
READING = ChartGoal(title="Oral reading fluency", unit="wcpm", baseline=40, target=90, baseline_on=D(2026, 9, 1),
                    target_on=D(2027, 5, 31))


def test_least_squares_recovers_an_exact_line():
    slope, intercept = least_squares([0, 7, 14, 21], [10, 13.5, 17, 20.5])  # type: ignore[misc]
    assert slope == pytest.approx(0.5) and intercept == pytest.approx(10)


def test_least_squares_of_scattered_points():
    # Textbook example: x = 1..5, y = 2, 4, 5, 4, 5 -> y = 0.6x + 2.2
    slope, intercept = least_squares([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])  # type: ignore[misc]
    assert slope == pytest.approx(0.6) and intercept == pytest.approx(2.2)


def test_least_squares_is_undefined_for_one_point_or_one_day():
    assert least_squares([3], [4]) is None
    assert least_squares([3, 3, 3], [1, 2, 3]) is None


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (40, 90, [40, 50, 60, 70, 80, 90]),
    (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
    (0, 5, [0, 1, 2, 3, 4, 5]),
    (-3, 2, [-3, -2, -1, 0, 1, 2]),
    (3, 3, [2, 2.5, 3, 3.5, 4]),
    (12, 87, [0, 20, 40, 60, 80, 100]),
])
def test_nice_ticks_cover_the_range_with_round_steps(lo, hi, expected):
    assert nice_ticks(lo, hi) == expected


def test_fmt_number_drops_needless_decimals():
    assert [fmt_number(v) for v in (48, 2.5, 0.333, 1234.0, -0.001)] == ["48", "2.5", "0.33", "1,234", "0"]


def test_aim_line_runs_from_baseline_to_target_corners_of_the_plot():
    chart = build_chart(READING, [])
    # Baseline is the first day and lowest value, target the last day and highest: the plot's corners.
    assert (chart.aim.x1, chart.aim.y1) == (chart.left, chart.bottom)
    assert (chart.aim.x2, chart.aim.y2) == (chart.right, chart.top)
    assert chart.trend is None and chart.points == () and "No data points yet." in chart.desc


def test_points_are_placed_proportionally_in_time_and_value():
    chart = build_chart(READING, [(D(2027, 1, 15), 65.0)])
    (p,) = chart.points
    span = (D(2027, 5, 31) - D(2026, 9, 1)).days
    expected_x = chart.left + (D(2027, 1, 15) - D(2026, 9, 1)).days / span * (chart.right - chart.left)
    assert p.x == pytest.approx(expected_x, abs=0.1)
    assert p.y == pytest.approx(chart.bottom - 0.5 * (chart.bottom - chart.top), abs=0.1)   # 65 is half-way
    assert p.label == "15 Jan 2027: 65 wcpm"
    assert "A trend line needs at least 3 data points." in chart.desc


def test_trend_line_is_fitted_over_the_data_and_compared_with_the_aim_line():
    data = [(D(2026, 9, 8), 42.0), (D(2026, 9, 22), 46.0), (D(2026, 10, 6), 50.0), (D(2026, 10, 20), 54.0)]
    chart = build_chart(READING, list(reversed(data)))   # order does not matter
    assert [p.day for p in chart.points] == [d for d, _ in data]
    assert chart.slope_per_week == pytest.approx(2.0)
    assert chart.trend is not None
    assert chart.trend.x1 == chart.points[0].x and chart.trend.x2 == chart.points[-1].x
    assert chart.trend.y1 == pytest.approx(chart.points[0].y, abs=0.1)   # exact line through the points
    # Aim rises 50 wcpm over 272 days (about 1.29 a week); the student gains 2 a week: ahead.
    assert chart.on_track is True
    assert "rising by about 2 wcpm a week" in chart.desc and "on or ahead of the aim line" in chart.desc
    assert chart.polyline.split()[0] == f"{chart.points[0].x},{chart.points[0].y}"
    assert [r.value for r in chart.rows] == ["42 wcpm", "46 wcpm", "50 wcpm", "54 wcpm"]
    assert chart.rows[0].aim == "41.29 wcpm"   # aim on 8 Sep: 40 + 50 * 7/272


def test_a_flat_trend_below_the_aim_line_is_behind():
    data = [(D(2026, 10, 1), 41.0), (D(2026, 11, 1), 41.0), (D(2026, 12, 1), 41.0)]
    chart = build_chart(READING, data)
    assert chart.on_track is False and chart.slope_per_week == 0
    assert "Trend: flat; at the latest data point it is behind the aim line." in chart.desc


def test_decreasing_goals_count_a_falling_trend_as_on_track():
    goal = ChartGoal(title="Office referrals", unit="per week", baseline=6, target=1, baseline_on=D(2026, 9, 1),
                     target_on=D(2026, 12, 1))
    data = [(D(2026, 9, 15), 5.0), (D(2026, 9, 29), 4.0), (D(2026, 10, 13), 2.0)]
    chart = build_chart(goal, data)
    assert chart.slope_per_week is not None and chart.slope_per_week < 0
    assert chart.on_track is True and "falling" in chart.desc
    assert chart.aim.y1 < chart.aim.y2   # the aim line goes down the page... i.e. to smaller values


def test_points_outside_the_goal_dates_widen_the_axis():
    chart = build_chart(READING, [(D(2026, 8, 20), 35.0), (D(2027, 6, 15), 95.0)])
    assert chart.points[0].x == chart.left and chart.points[-1].x == chart.right
    assert float(chart.y_ticks[0].label) <= 35 and float(chart.y_ticks[-1].label) >= 95
    assert chart.points[0].y >= chart.top and chart.points[-1].y <= chart.bottom


def test_month_ticks_are_labelled_and_inside_the_plot():
    chart = build_chart(READING, [])
    labels = [t.label for t in chart.x_ticks]
    assert labels[0] == "Sep 2026" and len(labels) <= 6
    assert all(chart.left <= t.pos <= chart.right for t in chart.x_ticks)
    assert chart.title == "Progress: Oral reading fluency" and chart.y_label == "wcpm"
