"""District time. Instants are stored in UTC; every calendar date a person sees or a rule compares ("today", a
default date, "overdue") is the district's date in ``CASELOAD_TIMEZONE``, never the server's: a meeting held this
morning in Guam or entered this evening in California lands on the day the school lived it."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_app_context

from lti_app.domain import dates
from lti_app.settings import DEV_TIMEZONE


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def district_zone() -> ZoneInfo:
    """The configured district zone (the development zone outside an app, e.g. in a bare unit test)."""
    name = current_app.config["CASELOAD"].timezone if has_app_context() else DEV_TIMEZONE
    return _zone(name)


def utc_now() -> dt.datetime:
    """The current instant in UTC: the one place the clock is read for "today" (tests move it)."""
    return dt.datetime.now(dt.UTC)


def now() -> dt.datetime:
    """The current instant, as an aware datetime in district time."""
    return utc_now().astimezone(district_zone())


def today() -> dt.date:
    """Today's date in the district."""
    return now().date()


def local(instant: dt.datetime) -> dt.datetime:
    """A stored instant (UTC; naive values from SQLite are UTC) in district time, for display and day maths."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(district_zone())


def local_date(instant: dt.datetime) -> dt.date:
    """The district's calendar date of a stored instant."""
    return local(instant).date()


def day_start(day: dt.date) -> dt.datetime:
    """The instant (UTC) at which the district's ``day`` begins: filter stored instants by district day with
    ``day_start(d) <= at < day_start(d + 1 day)`` (a day is 23 or 25 hours long when the clocks change)."""
    return dt.datetime.combine(day, dt.time(), district_zone()).astimezone(dt.UTC)


# ---------------------------------------------------------------------------------------------------------------
# Shown times: one way for every page to show an instant
# ---------------------------------------------------------------------------------------------------------------

def _instant(value: dt.datetime | str | None) -> dt.datetime | None:
    """A stored instant as a datetime: datetimes as they are (naive = UTC, as SQLite gives them back), ISO 8601
    strings as exports carry them."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def shown_day(value: dt.date | str | None) -> str:
    """Jinja filter ``day``: a calendar date as every page shows it, "Dec 6, 2026" ('' for none). Dates are
    already district dates (a due date, a meeting day); ISO strings are accepted. ``<input type="date">`` values and
    ``<time datetime>`` attributes stay ISO 8601 (HTML requires it) and so do CSV/JSON exports."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        value = local_date(value)
    return dates.shown_day(value)


def shown_time(value: dt.datetime | str | None) -> str:
    """Jinja filter ``localtime``: a stored instant as every page shows a moment, in district time with the zone's
    abbreviation, "Dec 6, 2026, 3:50 PM CST" ('' for none): the abbreviation says which clock it is, so a district
    administrator in another zone is never misled. One format, so the filter takes none."""
    instant = _instant(value)
    if instant is None:
        return ""
    moment = local(instant)
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{shown_day(moment.date())}, {hour}:{moment.minute:02d} {half} {moment.strftime('%Z')}"


def shown_date(value: dt.datetime | str | None) -> str:
    """Jinja filter ``localdate``: the district's date of a stored instant, shown as "Dec 6, 2026" ('' for none)."""
    instant = _instant(value)
    return shown_day(local_date(instant)) if instant is not None else ""


def init_app(app: Flask) -> None:
    """Templates show every moment through ``|localtime``, the date of a moment through ``|localdate`` and a calendar
    date through ``|day``: never ``strftime``, ``isoformat()`` or a raw value on a page."""
    app.add_template_filter(shown_time, "localtime")
    app.add_template_filter(shown_date, "localdate")
    app.add_template_filter(shown_day, "day")
