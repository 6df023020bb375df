"""District time. Instants are stored in UTC; every calendar date a person sees or a rule compares ("today", a
default date, "overdue") is the district's date in ``CASELOAD_TIMEZONE``, never the server's: a meeting held this
morning in Guam or entered this evening in California lands on the day the school lived it."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_app_context

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

DEFAULT_SHOWN = "%-d %b %Y, %H:%M %Z"
"""How a moment is shown unless a page asks otherwise: "6 Dec 2026, 14:05 CST" (the zone's abbreviation says which
clock it is, so a district administrator in another zone is never misled)."""


def _instant(value: dt.datetime | str | None) -> dt.datetime | None:
    """A stored instant as a datetime: datetimes as they are (naive = UTC, as SQLite gives them back), ISO 8601
    strings as exports carry them."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


def shown_time(value: dt.datetime | str | None, fmt: str = DEFAULT_SHOWN) -> str:
    """Jinja filter ``localtime``: a stored instant, in district time, formatted with ``fmt`` ('' for none)."""
    instant = _instant(value)
    return local(instant).strftime(fmt) if instant is not None else ""


def shown_date(value: dt.datetime | str | None) -> dt.date | None:
    """Jinja filter ``localdate``: the district's date of a stored instant (prints as YYYY-MM-DD)."""
    instant = _instant(value)
    return local_date(instant) if instant is not None else None


def init_app(app: Flask) -> None:
    """Templates show every instant through ``|localtime`` / ``|localdate``, never ``strftime`` on a UTC value."""
    app.add_template_filter(shown_time, "localtime")
    app.add_template_filter(shown_date, "localdate")
