"""District time. Instants are stored in UTC; every calendar date a person sees or a rule compares ("today", a
default date, "overdue") is the district's date in ``CASELOAD_TIMEZONE``, never the server's: a meeting held this
morning in Guam or entered this evening in California lands on the day the school lived it."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from lti_app.settings import DEV_TIMEZONE


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def district_zone() -> ZoneInfo:
    """The configured district zone (the development zone outside an app, e.g. in a bare unit test)."""
    name = current_app.config["CASELOAD"].timezone if has_app_context() else DEV_TIMEZONE
    return _zone(name)


def now() -> dt.datetime:
    """The current instant, as an aware datetime in district time."""
    return dt.datetime.now(dt.UTC).astimezone(district_zone())


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
