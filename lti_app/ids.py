"""Database ids as they arrive in URLs and forms."""

from __future__ import annotations

MAX_DATABASE_ID = 2**31 - 1
"""The largest value of a PostgreSQL ``integer`` column: every id in Caseload's schema."""


def parse_id(raw: str | None) -> int | None:
    """The id in ``raw`` (ASCII digits, 1 to ``MAX_DATABASE_ID``), or None. ``str.isdigit`` alone lets through
    '²' (which ``int`` refuses) and numbers no id column can hold (which the database refuses): both were 500s."""
    if not raw or not raw.isascii() or not raw.isdigit():
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_DATABASE_ID else None
