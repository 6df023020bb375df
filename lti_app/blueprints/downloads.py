"""CSV downloads: one way to build them, with spreadsheet formulas neutralised.

A cell that begins with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by spreadsheet
programs (OWASP "CSV injection"); names and free text here come from the LMS, the SIS and people, so such a cell is
written with a leading apostrophe and shown as text. Numbers and dates are written as they are."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value`` as a spreadsheet will show it: text that would start a formula is prefixed with an apostrophe."""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def csv_response(rows: Iterable[Sequence[Any]], filename: str, *, private: bool = True) -> Response:
    """A CSV attachment of ``rows`` (the header row first), every text cell through ``csv_cell``. ``private``: the
    file names students or staff, so no cache may keep it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([csv_cell(c) for c in row])
    resp = Response(out.getvalue(), mimetype="text/csv")
    resp.headers["Content-Disposition"] = f"attachment; filename={filename}"
    if private:
        resp.headers["Cache-Control"] = "no-store"
    return resp
