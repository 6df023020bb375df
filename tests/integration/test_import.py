"""CSV import on a real database: dry run, all-or-nothing, skip bad rows, idempotent re-import, new versions,
duplicates, the upload page (size limit, admins only) and ``caseload import``."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from sqlalchemy import func, select

from lti_app.cli import main
from lti_app.models import Accommodation, AdminEvent, Plan, PlanVersion, RoleGrant, Student
from lti_app.services.casework.importer import COLUMN_NAMES, run_import
from tests.support import admin_world
from tests.support import factories as f

HEADER = ",".join(COLUMN_NAMES)


def row(**values: str) -> str:
    base = {"student_sis_id": "S-100", "given_name": "Avery", "family_name": "Quinlan", "date_of_birth": "2010-04-17",
            "plan_type": "IEP", "effective_on": "2026-09-01", "annual_review_due": "2027-08-31",
            "case_manager_email": "t.larkspur@example.org", "accommodation_category": "timing",
            "accommodation_text": "Tests: 1.5x time", "accommodation_code": "T-150", "time_multiplier": "1.5"}
    base.update(values)
    return ",".join(f'"{base.get(n, "")}"' if "," in base.get(n, "") else base.get(n, "") for n in COLUMN_NAMES)


def csv_bytes(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


GOOD = csv_bytes(
    row(),
    row(accommodation_category="setting", accommodation_text="Tests in a separate room", accommodation_code="S-SEP",
        time_multiplier=""),
    row(plan_type="504", annual_review_due="2027-08-15", accommodation_category="response",
        accommodation_text="May use a calculator", accommodation_code="", time_multiplier=""),
    row(student_sis_id="S-200", given_name="Jules", family_name="Marchetti", date_of_birth="2011-01-30",
        plan_type="ELL", accommodation_category="", accommodation_text="", accommodation_code="", time_multiplier=""),
)


@pytest.fixture
def manager(db_session):
    plat = f.platform(db_session)
    cm = f.person(db_session, plat, "Tamsin Larkspur", kind="staff", email="T.Larkspur@example.org")
    db_session.add(RoleGrant(person_id=cm.id, role="case_manager"))
    db_session.commit()
    return cm


def _counts(s):
    return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Student, Plan, PlanVersion, Accommodation))


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"], indirect=True)
def test_import_creates_students_active_plans_and_is_idempotent(db_session, manager):
    first = run_import(db_session, GOOD, filename="sis.csv", dry_run=False, actor_id=None, via="cli")
    assert first.applied and first.errors == [] and first.warnings == []
    assert (first.students_created, first.plans_created, first.versions_created, first.accommodations_written) == (
        2, 3, 3, 3)
    assert _counts(db_session) == (2, 3, 3, 3)
    iep = db_session.scalars(select(Plan).where(Plan.plan_type == "IEP")).one()
    assert (iep.status, iep.case_manager_id, iep.effective_on) == ("active", manager.id, dt.date(2026, 9, 1))
    version = db_session.scalars(select(PlanVersion).where(PlanVersion.plan_id == iep.id)).one()
    assert version.status == "active" and version.activated_at is not None
    assert [a.text for a in version.accommodations] == ["Tests: 1.5x time", "Tests in a separate room"]
    # The same file again changes nothing.
    again = run_import(db_session, GOOD, filename="sis.csv", dry_run=False, via="cli")
    assert again.applied and again.changes == 0
    assert (again.students_unchanged, again.plans_unchanged) == (2, 3)
    assert _counts(db_session) == (2, 3, 3, 3)
    assert len(db_session.scalars(select(AdminEvent).where(AdminEvent.action == "import.apply")).all()) == 2


def test_changed_accommodations_make_a_new_active_version_and_supersede_the_old(db_session, manager):
    run_import(db_session, GOOD, dry_run=False)
    changed = csv_bytes(
        row(accommodation_category="setting", accommodation_text="Tests in a separate room",
            accommodation_code="S-SEP", time_multiplier="", end_on="2027-08-31"),  # order changed: not a change
        row(time_multiplier="2", end_on="2027-08-31"),  # the T-150 accommodation changed its multiplier: a change
        row(accommodation_category="presentation", accommodation_text="Large print", accommodation_code="P-LP",
            time_multiplier="", end_on="2027-08-31"),
    )
    report = run_import(db_session, changed, dry_run=False)
    assert (report.versions_created, report.plans_updated, report.accommodations_written) == (1, 1, 3)
    iep = db_session.scalars(select(Plan).where(Plan.plan_type == "IEP")).one()
    assert iep.end_on == dt.date(2027, 8, 31)
    versions = db_session.scalars(select(PlanVersion).where(PlanVersion.plan_id == iep.id)
                                  .order_by(PlanVersion.version_no)).all()
    assert [(v.version_no, v.status) for v in versions] == [(1, "superseded"), (2, "active")]
    assert [a.catalogue_code for a in versions[1].accommodations] == ["S-SEP", "T-150", "P-LP"]
    assert len(versions[0].accommodations) == 2  # the old version is kept as it was
    # Only the IEP rows were in the file: the 504 and the ELL plan are untouched, not ended.
    assert db_session.scalar(select(func.count()).select_from(Plan).where(Plan.status == "active")) == 3


def test_dry_run_reports_without_writing(db_session, manager):
    report = run_import(db_session, GOOD, dry_run=True)
    assert not report.applied and report.errors == []
    assert (report.students_created, report.plans_created, report.accommodations_written) == (2, 3, 3)
    assert _counts(db_session) == (0, 0, 0, 0)
    assert db_session.scalars(select(AdminEvent)).all() == []


def test_one_bad_row_stops_the_whole_file(db_session, manager):
    bad = csv_bytes(row(), row(student_sis_id="S-200", given_name="Jules", date_of_birth="2011-01-30",
                               effective_on="2026-13-01"))
    report = run_import(db_session, bad, dry_run=False)
    assert report.blocked and not report.applied
    assert [str(e) for e in report.errors] == ["line 3, effective_on: '2026-13-01' is not a date written YYYY-MM-DD."]
    assert _counts(db_session) == (0, 0, 0, 0)


def test_skip_bad_rows_imports_the_rest_and_leaves_bad_plans_out_whole(db_session, manager):
    mixed = csv_bytes(
        row(),
        row(accommodation_text="Seat near the front", accommodation_code="S-FRONT", accommodation_category="seating"),
        row(plan_type="504", annual_review_due="", accommodation_category="response",
            accommodation_text="May use a calculator", accommodation_code="", time_multiplier=""),
        row(student_sis_id="S-200", given_name="Jules", family_name="Marchetti", date_of_birth="2011-01-30"),
    )
    report = run_import(db_session, mixed, dry_run=False, skip_bad_rows=True)
    assert report.applied and len(report.errors) == 1 and report.skipped_lines == [2, 3]
    plans = {(s.sis_id, p.plan_type) for p, s in db_session.execute(select(Plan, Student).join(Student))}
    assert plans == {("S-100", "504"), ("S-200", "IEP")}
    event = db_session.scalars(select(AdminEvent)).one()
    assert event.details["skipped_rows"] == 2 and event.details["errors"] == 1


def test_duplicate_of_a_stored_student_under_another_sis_id_is_an_error(db_session, manager):
    db_session.add(Student(sis_id="OLD-9", given_name="Avery", family_name="Quinlan",
                           date_of_birth=dt.date(2010, 4, 17)))
    db_session.commit()
    report = run_import(db_session, GOOD, dry_run=False)
    assert report.blocked
    assert any("looks like a duplicate student" in str(e) and "SIS id OLD-9" in str(e) for e in report.errors)
    assert db_session.scalar(select(func.count()).select_from(Student)) == 1


def test_a_purged_student_is_not_imported_again(db_session, manager):
    db_session.add(Student(sis_id="S-100", given_name="Avery", family_name="Quinlan", date_of_birth=dt.date(2010, 4, 17),
                           departed_on=dt.date(2019, 6, 1), purged_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))
    db_session.commit()
    report = run_import(db_session, GOOD, dry_run=True)
    assert any("purged under the retention policy" in str(e) for e in report.errors)


def test_student_changes_update_only_given_values_and_unknown_case_managers_warn(db_session, manager):
    run_import(db_session, GOOD, dry_run=False)
    update = csv_bytes(row(grade="11", date_of_birth="", case_manager_email="new.person@example.org"),
                       row(grade="11", date_of_birth="", case_manager_email="new.person@example.org",
                           accommodation_category="setting", accommodation_text="Tests in a separate room",
                           accommodation_code="S-SEP", time_multiplier=""))
    report = run_import(db_session, update, dry_run=False)
    assert (report.students_updated, report.plans_unchanged) == (1, 1)
    assert [str(w) for w in report.warnings] == [
        "line 2, case_manager_email: new.person@example.org is not a staff member Caseload knows yet (they appear "
        "after their first launch or roster sync); the plan keeps its current case manager (none for a new plan)."]
    avery = db_session.scalars(select(Student).where(Student.sis_id == "S-100")).one()
    assert (avery.grade, avery.date_of_birth) == ("11", dt.date(2010, 4, 17))  # an empty cell keeps the stored value
    iep = db_session.scalars(select(Plan).where(Plan.plan_type == "IEP")).one()
    assert iep.case_manager_id == manager.id


def test_an_ended_plan_in_the_file_ends_the_stored_plan(db_session, manager):
    run_import(db_session, GOOD, dry_run=False)
    plan_only = row(plan_status="ended", end_on="2026-11-20", accommodation_category="", accommodation_text="",
                    accommodation_code="", time_multiplier="")  # no accommodation rows: accommodations unchanged
    report = run_import(db_session, csv_bytes(plan_only), dry_run=False)
    assert report.plans_updated == 1 and report.versions_created == 0
    iep = db_session.scalars(select(Plan).where(Plan.plan_type == "IEP")).one()
    assert (iep.status, iep.end_on) == ("ended", dt.date(2026, 11, 20))


# ------------------------------------------------------------------------------------------------ upload page
@pytest.fixture
def world(db_session):
    return admin_world.build(db_session)


def _plain(resp) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", resp.get_data(as_text=True))).split())


def _upload(client, app, token, content: bytes, **form):
    import io

    data = {"t": token, "csrf_token": admin_world.csrf_for(app, token), "file": (io.BytesIO(content), "sis.csv"), **form}
    return client.post("/admin/imports", data=data, content_type="multipart/form-data")


def test_upload_dry_run_then_import_through_the_admin_page(app, client, db_session, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    before = _counts(db_session)
    resp = _upload(client, app, token, GOOD)
    text = _plain(resp)
    assert resp.status_code == 200 and "Dry run: nothing was written." in text and "Students created 2" in text
    assert _counts(db_session) == before
    resp = _upload(client, app, token, GOOD, mode="apply")
    assert resp.status_code == 200 and "Imported." in resp.get_data(as_text=True)
    assert _counts(db_session)[0] == before[0] + 2
    event = db_session.scalars(select(AdminEvent)).one()
    assert (event.actor_id, event.via, event.details["filename"]) == (world["district_admin"].id, "web", "sis.csv")
    history = client.get("/admin/imports", query_string={"t": token}).get_data(as_text=True)
    assert "sis.csv" in history and "Oriel Banks" in history


def test_upload_with_errors_shows_line_numbers_and_writes_nothing(app, client, db_session, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    bad = csv_bytes(row(), row(student_sis_id="S-101", given_name="Avery", accommodation_text="Other"))
    resp = _upload(client, app, token, bad, mode="apply")
    text = _plain(resp)
    assert resp.status_code == 422
    assert "Nothing was imported: the file has 1 error." in text
    assert "Line 3 · student_sis_id : looks like the same student as student_sis_id S-100 on line 2" in text
    assert db_session.scalar(select(func.count()).select_from(Student).where(Student.sis_id.like("S-10%"))) == 0


def test_upload_without_a_file_is_a_readable_400(app, client, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    resp = client.post("/admin/imports", data={"t": token, "csrf_token": admin_world.csrf_for(app, token)},
                       content_type="multipart/form-data")
    assert resp.status_code == 400 and "Choose a CSV file" in resp.get_data(as_text=True)


def test_non_admins_cannot_upload(app, client, db_session, world, token_for):
    token = token_for(world["cm"], roles=("teacher",))
    assert _upload(client, app, token, GOOD, mode="apply").status_code == 403
    assert db_session.scalar(select(func.count()).select_from(Student).where(Student.sis_id == "S-100")) == 0


class TestOversizedUpload:
    @pytest.fixture
    def app_config(self):
        return {"import_max_bytes": 2000}

    def test_an_oversized_file_is_refused_with_the_limit_and_nothing_is_written(self, app, client, db_session, world,
                                                                             token_for):
        token = token_for(world["district_admin"], roles=("teacher",))
        big = csv_bytes(*[row(student_sis_id=f"S-{i}", given_name=f"Kit{i}") for i in range(40)])
        assert len(big) > 2000
        resp = _upload(client, app, token, big, mode="apply")
        assert resp.status_code == 413
        assert "larger than the 0.002 MB Caseload accepts for an import. Nothing was imported." in unescape(
            resp.get_data(as_text=True))
        assert db_session.scalar(select(func.count()).select_from(Student).where(Student.sis_id.like("S-%"))) == 2


def test_the_import_limit_is_larger_than_the_general_body_limit(app, client, db_session, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    rows = [row(student_sis_id=f"S-{i}", given_name=f"Kit{i}", date_of_birth="", accommodation_text="x" * 1500)
            for i in range(800)]
    content = csv_bytes(*rows)
    assert len(content) > app.config["CASELOAD"].max_body_bytes
    resp = _upload(client, app, token, content)
    assert resp.status_code == 200 and "Students created" in resp.get_data(as_text=True)


def test_template_download_has_every_column(client, world, token_for):
    token = token_for(world["district_admin"], roles=("teacher",))
    resp = client.get("/admin/imports/template.csv", query_string={"t": token})
    assert resp.status_code == 200 and resp.get_data(as_text=True).splitlines()[0] == HEADER


# ------------------------------------------------------------------------------------------------------- CLI
def test_cli_dry_run_prints_line_numbered_errors_and_fails(runner, db_session, manager, tmp_path):
    path = tmp_path / "sis.csv"
    path.write_bytes(csv_bytes(row(), row(end_on="2026-01-01", accommodation_text="Large print", accommodation_code="")))
    result = runner.invoke(main, ["import", str(path), "--dry-run"])
    assert result.exit_code == 1
    assert "line 3, end_on: 2026-01-01 is before effective_on 2026-09-01." in result.output
    assert _counts(db_session) == (0, 0, 0, 0)


def test_cli_import_applies_and_reports(runner, db_session, manager, tmp_path):
    path = tmp_path / "sis.csv"
    path.write_bytes(GOOD)
    result = runner.invoke(main, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "Students: 2 created, 0 updated, 0 unchanged (were)." in result.output and "Imported." in result.output
    result = runner.invoke(main, ["import", str(path)])
    assert "Students: 0 created, 0 updated, 2 unchanged (were)." in result.output
    assert _counts(db_session) == (2, 3, 3, 3)
