"""How a person reads a calendar date: one format on every page and in every message, "Dec 6, 2026" (US English).

Pure so domain rules can word their messages the same way the pages show dates (``lti_app.clock`` registers the Jinja
filters on top of it). Machine-readable places keep ISO 8601: ``<input type="date">`` values and ``<time datetime>``
attributes (the HTML standard requires it) and the CSV/JSON exports."""

from __future__ import annotations

import datetime as dt

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""US English month abbreviations, spelled here rather than by ``%b`` so the server's locale cannot change a page."""


def shown_day(day: dt.date) -> str:
    """A calendar date as people read it: "Dec 6, 2026"."""
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"
