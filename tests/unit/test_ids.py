"""Ids from URLs and forms: ASCII digits within PostgreSQL's integer range, or nothing."""

from __future__ import annotations

import pytest

from lti_app.ids import MAX_DATABASE_ID, parse_id


@pytest.mark.parametrize(("raw", "expected"), [
    ("1", 1), ("42", 42), (str(MAX_DATABASE_ID), MAX_DATABASE_ID),
    (None, None), ("", None), ("0", None), ("-1", None), (" 1", None), ("1.0", None), ("12a", None),
    (str(MAX_DATABASE_ID + 1), None), ("9" * 40, None),
    ("²", None), ("١٢", None),  # str.isdigit() says yes to both; int() refuses the first
])
def test_parse_id(raw, expected):
    assert parse_id(raw) == expected
