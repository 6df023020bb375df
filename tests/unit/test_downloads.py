"""CSV downloads (``blueprints.downloads``): text that a spreadsheet would run as a formula (OWASP CSV injection) is
written as text; everything else as it is; private files are not cached."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask

from lti_app.blueprints.downloads import csv_cell, csv_response


@pytest.mark.parametrize("value", ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"])
def test_formula_starts_are_quoted_as_text(value):
    assert csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Ava Quinlan", "", "1.5x time", 42, -3, 0.5, dt.date(2026, 12, 6), None])
def test_other_cells_are_written_as_they_are(value):
    assert csv_cell(value) == value


def test_the_response_is_a_private_attachment_with_every_text_cell_checked():
    with Flask(__name__).test_request_context():
        resp = csv_response([["name", "minutes"], ["=cmd|' /C calc'!A0", -15]], "owed.csv")
    assert resp.mimetype == "text/csv"
    assert resp.headers["Content-Disposition"] == "attachment; filename=owed.csv"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.get_data(as_text=True) == "name,minutes\n'=cmd|' /C calc'!A0,-15\n"


def test_a_public_file_may_be_cached():
    with Flask(__name__).test_request_context():
        resp = csv_response([["a"]], "template.csv", private=False)
    assert "Cache-Control" not in resp.headers
