"""CSV row validation of the import, without a database: every rule gives a line-numbered, readable issue."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from lti_app.services.casework.importer import COLUMN_NAMES, COLUMNS, parse, rows_to_keep

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 24)
HEADER = ",".join(COLUMN_NAMES)


def row(**values: str) -> str:
    base = {"student_sis_id": "S-1", "given_name": "Avery", "family_name": "Quinlan", "date_of_birth": "2010-04-17",
            "plan_type": "IEP", "effective_on": "2026-09-01", "annual_review_due": "2027-08-31",
            "accommodation_category": "timing", "accommodation_text": "Tests: 1.5x time"}
    base.update(values)
    out = []
    for name in COLUMN_NAMES:
        value = base.get(name, "")
        out.append(f'"{value}"' if ("," in value or "\n" in value) else value)
    return ",".join(out)


def data(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def messages(parsed) -> list[str]:
    return [str(e) for e in parsed.errors]


def test_the_shipped_template_is_valid_and_matches_the_columns():
    raw = (ROOT / "config/import-template.csv").read_bytes()
    header = next(csv.reader(raw.decode().splitlines()))
    assert tuple(header) == COLUMN_NAMES
    parsed = parse(raw, TODAY)
    assert parsed.errors == () and parsed.warnings == ()
    assert len(parsed.rows) == parsed.data_rows == 6


def test_every_column_is_documented_in_the_readme_section():
    readme = (ROOT / "README.md").read_text()
    assert [c.name for c in COLUMNS if f"`{c.name}`" not in readme] == []


def test_a_valid_row_is_parsed_into_typed_fields():
    parsed = parse(data(row(time_multiplier="1.5x", subjects="Mathematics; Science;;Mathematics", applies_to="TESTS",
                            plan_type="iep", accommodation_code="T-150")), TODAY)
    assert parsed.errors == ()
    (r,) = parsed.rows
    assert r.line == 2 and r.student.date_of_birth == dt.date(2010, 4, 17) and r.plan.plan_type == "IEP"
    a = r.accommodation
    assert (a.category, a.applies_to, a.subjects, a.time_multiplier, a.key) == (
        "timing", "tests", ("Mathematics", "Science"), Decimal("1.50"), "code:t-150")


def test_plan_only_rows_and_aliases_are_accepted():
    parsed = parse(data(row(accommodation_category="", accommodation_text=""),
                        row(student_sis_id="S-2", given_name="Jules", date_of_birth="2011-01-30", plan_type="behavior",
                            annual_review_due="", accommodation_category="scheduling")), TODAY)
    assert parsed.errors == ()
    assert parsed.rows[0].accommodation is None
    assert parsed.rows[1].plan.plan_type == "behaviour" and parsed.rows[1].accommodation.category == "timing"


@pytest.mark.parametrize("values, expected", [
    ({"student_sis_id": ""}, "line 2, student_sis_id: is required and empty."),
    ({"given_name": ""}, "line 2, given_name: is required and empty."),
    ({"plan_type": "IEPP"}, "line 2, plan_type: 'IEPP' is not a plan type"),
    ({"effective_on": "09/01/2026"}, "line 2, effective_on: '09/01/2026' is not a date written YYYY-MM-DD."),
    ({"effective_on": "2026-02-30"}, "line 2, effective_on: '2026-02-30' is not a date"),
    ({"date_of_birth": "2030-01-01"}, "line 2, date_of_birth: 2030-01-01 is not in the past."),
    ({"end_on": "2026-08-01"}, "line 2, end_on: 2026-08-01 is before effective_on 2026-09-01."),
    ({"annual_review_due": "2026-09-01"}, "line 2, annual_review_due: 2026-09-01 is not after effective_on"),
    ({"annual_review_due": "2027-12-01"}, "more than one year after effective_on"),
    ({"effective_on": "2009-09-01", "annual_review_due": ""}, "is not after the date of birth 2010-04-17"),
    ({"departed_on": "2027-01-01"}, "line 2, departed_on: 2027-01-01 is in the future"),
    ({"plan_status": "ended"}, "line 2, end_on: is required for an ended plan."),
    ({"plan_status": "paused"}, "line 2, plan_status: 'paused' must be active or ended."),
    ({"accommodation_category": ""}, "accommodation_category: is required when the row has an accommodation."),
    ({"accommodation_category": "lighting"}, "'lighting' must be presentation, response, setting or timing."),
    ({"accommodation_text": ""}, "accommodation_text: is required when the row has an accommodation."),
    ({"time_multiplier": "lots"}, "time_multiplier: 'lots' is not a number such as 1.5."),
    ({"time_multiplier": "5"}, "time_multiplier: 5.00 must be between 1 and 4."),
    ({"extra_attempts": "-1"}, "extra_attempts: '-1' must be a whole number from 0 to 20."),
    ({"applies_to": "homework"}, "applies_to: 'homework' must be classroom, tests or all."),
    ({"case_manager_email": "not-an-email"}, "case_manager_email: 'not-an-email' is not an email address."),
    ({"grade": "x" * 21}, "line 2, grade: is 21 characters long; the limit is 20."),
])
def test_bad_values_are_reported_with_line_and_column(values, expected):
    parsed = parse(data(row(), row(**values)), TODAY)
    assert any(expected.replace("line 2", "line 3") in m for m in messages(parsed)), messages(parsed)
    assert [r.line for r in parsed.rows] == [2]


def test_an_active_plan_that_already_ended_is_a_warning_not_an_error():
    parsed = parse(data(row(end_on="2026-10-01", annual_review_due="")), TODAY)
    assert parsed.errors == ()
    assert [str(w) for w in parsed.warnings] == ["line 2, end_on: the plan is marked active but ended on 2026-10-01."]


def test_file_level_problems_are_line_one_errors():
    assert "empty" in messages(parse(b"", TODAY))[0]
    assert "no data rows" in messages(parse(data(), TODAY))[0]
    missing = parse(b"student_sis_id,given_name\nS-1,Avery\n", TODAY)
    assert messages(missing)[0].startswith("line 1: The header lacks required column(s): family_name, plan_type")
    assert "not UTF-8" in messages(parse(HEADER.encode() + b"\n\xff\xfe\x00bad\n", TODAY))[0]
    dup = parse(data(header=HEADER + ",grade"), TODAY)
    assert "grade: appears twice in the header." in messages(dup)[0]


def test_excel_bom_semicolons_and_unknown_columns_are_handled():
    text = ("\ufeff" + HEADER.replace(",", ";") + ";notes\n" + row().replace(",", ";") + ";x\n").encode("utf-8")
    parsed = parse(text, TODAY)
    assert parsed.errors == ()
    assert len(parsed.rows) == 1
    assert "Column(s) not used by Caseload, ignored: notes." in str(parsed.warnings[0])


def test_line_numbers_follow_the_file_across_blank_lines_and_quoted_newlines():
    parsed = parse(data(row(accommodation_text="Read aloud,\non request"), "", row(effective_on="bad")), TODAY)
    assert messages(parsed) == ["line 5, effective_on: 'bad' is not a date written YYYY-MM-DD."]
    assert parsed.rows[0].accommodation.text == "Read aloud, on request"
    assert parsed.data_rows == 2


def test_a_row_with_the_wrong_number_of_fields_is_reported():
    parsed = parse(data(row(), "S-9,Extra"), TODAY)
    assert messages(parsed) == [f"line 3: has 2 fields; the header has {len(COLUMN_NAMES)}. Check for a stray delimiter "
                                "or a missing quote."]


def test_one_students_identity_and_one_plans_fields_must_agree_across_lines():
    parsed = parse(data(row(), row(given_name="Avry", accommodation_text="Seat near the front"),
                        row(end_on="2027-06-30", accommodation_text="Large print")), TODAY)
    assert messages(parsed) == [
        "line 3, given_name: Avry differs from line 2 (Avery) for the same student_sis_id.",
        "line 4, end_on: 2027-06-30 differs from line 2 ((empty)) for the same student's IEP plan."]


def test_a_repeated_accommodation_is_a_warning_when_identical_and_an_error_when_not():
    same = parse(data(row(), row()), TODAY)
    assert same.errors == () and "repeats line 2 exactly" in str(same.warnings[0])
    differs = parse(data(row(), row(applies_to="classroom", accommodation_text="tests:  1.5X time")), TODAY)
    assert messages(differs) == ["line 3, accommodation_text: the same accommodation is on line 2 with different details."]


def test_the_same_student_under_two_sis_ids_is_an_error():
    parsed = parse(data(row(), row(student_sis_id="S-77", given_name="AVERY")), TODAY)
    assert messages(parsed) == ["line 3, student_sis_id: looks like the same student as student_sis_id S-1 on line 2 "
                                "(same name and date of birth). Check which SIS id is right."]


def test_skipping_bad_rows_leaves_out_whole_plans_or_whole_students():
    parsed = parse(data(
        row(), row(accommodation_text="Seat near the front", time_multiplier="9"),  # S-1 IEP: bad accommodation
        row(plan_type="504", annual_review_due="", accommodation_text="Calculator"),  # S-1 504: fine
        row(student_sis_id="S-2", given_name="Jules", date_of_birth="2011-01-30"),  # S-2: fine...
        row(student_sis_id="S-2", given_name="Jules", date_of_birth="2011-01-30", plan_type="IEPP"),  # ...but unsure
        row(student_sis_id="", accommodation_text="orphan"),  # no student: only this line
        row(student_sis_id="S-3", given_name="Noor", date_of_birth="2010-08-09")), TODAY)
    kept, bad_students, bad_plans = rows_to_keep(parsed.rows, parsed.errors)
    assert [r.line for r in kept] == [4, 8]
    assert bad_students == {"S-2"} and bad_plans == {("S-1", "IEP")}


# --- issue #11: import refuses what the database cannot hold --------------------------------------------------

@pytest.mark.parametrize(("char", "name"), [("\x00", "NUL"), ("\x1b", "ESC"), ("\x0b", "vertical tab"),
                                            ("\x7f", "DEL"), ("\x9b", "control character")])
def test_a_control_character_refuses_the_whole_file_naming_its_line(char, name):
    parsed = parse(data(row(), row(student_sis_id="S-2", given_name=f"Ro{char}wan"), row(student_sis_id="S-3")), TODAY)
    assert parsed.refused and parsed.rows == ()
    (issue,) = parsed.errors
    assert issue.line == 3 and issue.scope == "file"
    assert name in str(issue) and "line 3" in str(issue) and f"U+{ord(char):04X}" in str(issue)


def test_tabs_and_windows_line_ends_are_not_control_characters_to_refuse():
    text = data(row(accommodation_text="Tests:\t1.5x time")).replace(b"\n", b"\r\n")
    parsed = parse(text, TODAY)
    assert not parsed.refused and parsed.errors == ()


def test_a_nul_inside_a_quoted_multi_line_cell_names_the_physical_line():
    parsed = parse(data(row(accommodation_text="first line\nsecond\x00line")), TODAY)
    assert parsed.refused and [e.line for e in parsed.errors] == [3]
