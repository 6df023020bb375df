"""District time (CASELOAD_TIMEZONE): what "today" is and how a stored instant is shown, in the zones where the UTC
date and the district's date differ most (Guam is UTC+10; California is UTC-8 in winter, UTC-7 in summer)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from flask import Flask, render_template_string

from lti_app import clock


@pytest.fixture
def in_zone(monkeypatch: pytest.MonkeyPatch):
    """in_zone(name, utc_instant): an app context whose district is ``name`` and whose clock reads ``utc_instant``."""
    contexts = []

    def _enter(name: str, at: dt.datetime | None = None) -> Flask:
        app = Flask(__name__)
        app.config["CASELOAD"] = SimpleNamespace(timezone=name)
        clock.init_app(app)
        if at is not None:
            monkeypatch.setattr(clock, "utc_now", lambda: at)
        ctx = app.app_context()
        ctx.push()
        contexts.append(ctx)
        return app

    yield _enter
    for ctx in reversed(contexts):
        ctx.pop()


def test_today_is_guams_date_at_seven_in_the_morning_there(in_zone) -> None:
    in_zone("Pacific/Guam", dt.datetime(2026, 3, 9, 21, 0, tzinfo=dt.UTC))  # 07:00 on 10 March in Guam
    assert clock.today() == dt.date(2026, 3, 10)
    assert clock.now().hour == 7


def test_today_is_californias_date_at_eight_in_the_evening_there(in_zone) -> None:
    in_zone("America/Los_Angeles", dt.datetime(2026, 1, 15, 4, 0, tzinfo=dt.UTC))  # 20:00 PST on 14 January
    assert clock.today() == dt.date(2026, 1, 14)
    assert clock.now().hour == 20


def test_a_stored_instant_is_shown_on_the_districts_day_and_hour(in_zone) -> None:
    in_zone("America/Los_Angeles")
    stored = dt.datetime(2026, 1, 15, 4, 30, tzinfo=dt.UTC)
    assert clock.shown_time(stored) == "Jan 14, 2026, 8:30 PM PST"
    assert clock.shown_date(stored) == "Jan 14, 2026"


def test_naive_instants_from_sqlite_and_iso_strings_from_exports_are_utc(in_zone) -> None:
    in_zone("Pacific/Guam")
    assert clock.shown_time(dt.datetime(2026, 3, 9, 21, 5)) == "Mar 10, 2026, 7:05 AM ChST"
    assert clock.shown_time("2026-03-09T21:05:00+00:00") == "Mar 10, 2026, 7:05 AM ChST"
    assert clock.shown_date("2026-03-09T21:05:00Z") == "Mar 10, 2026"
    assert clock.shown_time(None) == "" and clock.shown_date("") == "" and clock.shown_day(None) == ""


def test_templates_show_instants_through_the_district_filters(in_zone) -> None:
    in_zone("America/Chicago")
    page = render_template_string("{{ at|localtime }} · {{ at|localdate }} · {{ due|day }} · {{ iso|day }}",
                                  at=dt.datetime(2026, 7, 1, 3, 15, tzinfo=dt.UTC), due=dt.date(2026, 12, 6),
                                  iso="2027-01-09")
    assert page == "Jun 30, 2026, 10:15 PM CDT · Jun 30, 2026 · Dec 6, 2026 · Jan 9, 2027"


def test_noon_and_midnight_are_twelve_on_the_us_clock(in_zone) -> None:
    in_zone("UTC")
    assert clock.shown_time(dt.datetime(2026, 12, 6, 0, 5, tzinfo=dt.UTC)) == "Dec 6, 2026, 12:05 AM UTC"
    assert clock.shown_time(dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)) == "Dec 6, 2026, 12:00 PM UTC"


def test_daylight_saving_changes_the_offset_not_the_wall_clock_rule(in_zone) -> None:
    in_zone("America/Chicago")
    winter, summer = dt.datetime(2026, 1, 10, 18, 0, tzinfo=dt.UTC), dt.datetime(2026, 7, 10, 18, 0, tzinfo=dt.UTC)
    assert clock.shown_time(winter) == "Jan 10, 2026, 12:00 PM CST"
    assert clock.shown_time(summer) == "Jul 10, 2026, 1:00 PM CDT"


def test_a_district_day_starts_at_local_midnight_and_lasts_23_hours_when_clocks_spring_forward(in_zone) -> None:
    in_zone("America/Los_Angeles")
    assert clock.day_start(dt.date(2026, 1, 14)) == dt.datetime(2026, 1, 14, 8, 0, tzinfo=dt.UTC)
    spring = clock.day_start(dt.date(2026, 3, 9)) - clock.day_start(dt.date(2026, 3, 8))
    assert spring == dt.timedelta(hours=23)
