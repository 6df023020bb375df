"""``caseload import``, ``caseload export``, ``caseload retention`` and ``caseload grant``: the administrator's
record-keeping commands (the same services as the admin pages; changes made here are logged as "command line")."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import current_app
from flask.cli import with_appcontext

from lti_app import clock
from lti_app.ids import parse_id
from lti_app.services.uow import UnitOfWork

if TYPE_CHECKING:
    from lti_app.services.casework.importer import Issue


def _echo_issues(title: str, issues: Sequence[Issue], limit: int, err: bool = False) -> None:
    if not issues:
        return
    click.echo(f"{title} ({len(issues)}):", err=err)
    for issue in issues[:limit]:
        click.echo(f"  {issue}", err=err)
    if len(issues) > limit:
        click.echo(f"  ... and {len(issues) - limit} more (use --all-errors)", err=err)


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate and report what would change; write nothing.")
@click.option("--skip-bad-rows", is_flag=True, help="Import the rest when some rows are bad (each plan with a bad row "
                                                      "is left out whole).")
@click.option("--all-errors", is_flag=True, help="Print every error and warning, not the first 50.")
@with_appcontext
def import_cmd(file: Path, dry_run: bool, skip_bad_rows: bool, all_errors: bool) -> None:
    """Import students, plans and accommodations from a CSV file (see config/import-template.csv)."""
    from lti_app.services.casework.importer import run_import

    data = file.read_bytes()
    limit = 10**9 if all_errors else 50
    with UnitOfWork() as uow:
        report = run_import(uow.session, data, filename=file.name, dry_run=dry_run, skip_bad_rows=skip_bad_rows,
                            via="cli")
    _echo_issues("Errors", report.errors, limit, err=True)
    _echo_issues("Warnings", report.warnings, limit)
    verb = "would be" if (dry_run or report.blocked) else "were"
    click.echo(f"{report.data_rows} data rows read; {len(report.errors)} errors; {len(report.warnings)} warnings.")
    if not any(e.scope == "file" for e in report.errors):
        click.echo(f"Students: {report.students_created} created, {report.students_updated} updated, "
                   f"{report.students_unchanged} unchanged ({verb}).")
        click.echo(f"Plans: {report.plans_created} created, {report.plans_updated} updated, {report.plans_unchanged} "
                   f"unchanged; {report.versions_created} new versions, {report.accommodations_written} accommodations "
                   f"({verb}).")
    if report.skipped_lines and skip_bad_rows:
        click.echo(f"Lines left out: {', '.join(map(str, report.skipped_lines[:100]))}"
                   + (" ..." if len(report.skipped_lines) > 100 else ""))
    if report.applied:
        click.echo("Imported.")
    elif dry_run:
        click.echo("Dry run: nothing was written.")
    if report.blocked:
        raise click.ClickException("Nothing was imported: fix the errors above"
                                   + ("" if skip_bad_rows or any(e.scope == "file" for e in report.errors)
                                      else ", or use --skip-bad-rows to import the rest") + ".")
    if dry_run and report.errors:
        raise SystemExit(1)


@click.command("export")
@click.option("--student", "student_ident", required=True, help="The student's SIS id, or #record-id.")
@click.option("--as", "as_ident", required=True,
              help="The staff member making the export (email, SIS id or #id); their grants decide what is included.")
@click.option("--platform", default=None, help="Platform name, when the staff member's email is on several.")
@click.option("--format", "fmt", type=click.Choice(["json", "html"]), default="json")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File to write (default: stdout).")
@click.option("--leaves-school", is_flag=True, help="The copy leaves the school: recorded as a disclosure.")
@click.option("--recipient", default="")
@click.option("--purpose", default="")
@click.option("--legal-basis", type=click.Choice(["parent_inspection", "consent", "transfer", "court_order", "emergency",
                                                  "other"]), default=None)
@click.option("--include-restricted", is_flag=True)
@with_appcontext
def export_cmd(student_ident: str, as_ident: str, platform: str | None, fmt: str, out: Path | None,
               leaves_school: bool, recipient: str, purpose: str, legal_basis: str | None,
               include_restricted: bool) -> None:
    """Export one student's whole record (FERPA 34 CFR 99.10 inspection), logged as that staff member's export."""
    from flask import render_template
    from sqlalchemy import select
    from werkzeug.exceptions import HTTPException

    from lti_app.auth import Viewer
    from lti_app.models import Student
    from lti_app.services.access import grants
    from lti_app.services.casework import export

    with UnitOfWork() as uow:
        try:
            person = grants.find_person(uow.session, as_ident, platform)
        except (grants.GrantInvalid, grants.GrantNotFound) as exc:
            raise click.ClickException(str(exc)) from None
        ident = student_ident.strip()
        if ident.startswith("#") and (record_id := parse_id(ident[1:])) is not None:
            student_id = uow.session.scalar(select(Student.id).where(Student.id == record_id))
        else:
            student_id = uow.session.scalar(select(Student.id).where(Student.sis_id == ident))
        if student_id is None:
            raise click.ClickException(f"No student record has SIS id {ident!r}.")
        viewer = Viewer(person_id=person.id, platform_id=person.platform_id, course_id=None, roles=(),
                        placement="cli")
        req = export.ExportRequest(fmt=fmt, leaves_school=leaves_school, recipient=recipient, purpose=purpose,
                                   legal_basis=legal_basis or "", include_restricted=include_restricted)
        try:
            with current_app.test_request_context():
                result = export.export_student(uow.session, viewer, student_id, req)
                text = (json.dumps(result.record, indent=2, ensure_ascii=False) if fmt == "json" else
                        render_template("admin/export_record.html", record=result.record,
                                        disclosure_id=result.disclosure_id))
        except export.ExportInvalid as exc:
            raise click.ClickException(str(exc)) from None
        except HTTPException:
            raise click.ClickException(f"{person.display_name} may not export this record (the refusal is in the "
                                       "access log). Exports are made by the student's case manager or an "
                                       "administrator.") from None
    if out is None:
        click.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {out}" + (f"; disclosure #{result.disclosure_id} recorded." if result.disclosure_id else "."),
                   err=True)


@click.command("retention")
@click.option("--dry-run/--apply", default=True, help="List what would be purged (default), or purge it.")
@click.option("--before", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Purge students who departed before this day (default: today minus CASELOAD_RETENTION_YEARS).")
@with_appcontext
def retention_cmd(dry_run: bool, before: dt.datetime | None) -> None:
    """Purge departed students' record detail past the retention period, keeping the permanent subset."""
    from lti_app.services.casework import retention

    cutoff = before.date() if before else retention.cutoff(clock.today(), current_app.config["CASELOAD"].retention_years)
    with UnitOfWork() as uow:
        try:
            result = retention.run(uow.session, cutoff, dry_run=dry_run, via="cli")
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Students who departed before {cutoff}: {len(result.candidates)} record(s) "
               f"{'would be' if dry_run else 'were'} purged.")
    for c in result.candidates:
        detail = ", ".join(f"{n} {k}" for k, n in c.counts.items()) or "plan detail only"
        click.echo(f"  #{c.student_id}\t{c.sis_id or '-'}\tdeparted {c.departed_on}\t{detail}")
    if result.totals:
        click.echo("Totals: " + ", ".join(f"{n} {k}" for k, n in result.totals.items()))
    if dry_run and result.candidates:
        click.echo("Dry run: nothing was changed. Run with --apply to purge.")


@click.group("grant")
def grant_group() -> None:
    """School role grants (case manager, counselor, provider, school/district admin, restricted notes)."""


@grant_group.command("add")
@click.option("--person", "ident", required=True, help="Email, SIS id, LMS user id or #id of a staff member.")
@click.option("--role", required=True, type=click.Choice(["case_manager", "counselor", "provider", "school_admin",
                                                          "district_admin"]))
@click.option("--restricted", is_flag=True, help="Also allow opening restricted notes.")
@click.option("--school", default=None)
@click.option("--platform", default=None, help="Platform name, when the person's email is on several.")
@with_appcontext
def grant_add_cmd(ident: str, role: str, restricted: bool, school: str | None, platform: str | None) -> None:
    """Give a role to a staff member (or change the school / restricted flag of the grant they hold)."""
    from lti_app.services.access import grants

    with UnitOfWork() as uow:
        try:
            person = grants.find_person(uow.session, ident, platform)
            grant = grants.add_grant(uow.session, grants.CLI_GRANTER, person.id, role, can_see_restricted=restricted,
                                     school=school)
        except (grants.GrantInvalid, grants.GrantNotFound) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Grant #{grant.id}: {grants.ROLE_LABELS[role]} for person #{person.id}"
                   + (" with restricted notes" if restricted else "") + (f" at {grant.school}" if grant.school else "")
                   + ".")


@grant_group.command("revoke")
@click.option("--id", "grant_id", type=int, default=None, help="The grant's id (from `caseload grant list`).")
@click.option("--person", "ident", default=None, help="Email, SIS id, LMS user id or #id (with --role).")
@click.option("--role", default=None)
@click.option("--platform", default=None)
@with_appcontext
def grant_revoke_cmd(grant_id: int | None, ident: str | None, role: str | None, platform: str | None) -> None:
    """Revoke a grant (it stays in the history)."""
    from sqlalchemy import select

    from lti_app.models import RoleGrant
    from lti_app.services.access import grants

    if grant_id is None and not (ident and role):
        raise click.UsageError("Give --id, or --person and --role.")
    with UnitOfWork() as uow:
        try:
            if grant_id is None:
                assert ident is not None
                person = grants.find_person(uow.session, ident, platform)
                ids = list(uow.session.scalars(select(RoleGrant.id).where(
                    RoleGrant.person_id == person.id, RoleGrant.role == role, RoleGrant.revoked_at.is_(None))))
                if not ids:
                    raise grants.GrantNotFound(f"Person #{person.id} holds no active {role} grant.")
                if len(ids) > 1:
                    raise grants.GrantInvalid(f"Person #{person.id} holds {len(ids)} {role} grants (one per school); "
                                              f"use --id ({', '.join(map(str, ids))}).")
                grant_id = ids[0]
            grant = grants.revoke_grant(uow.session, grants.CLI_GRANTER, grant_id)
        except (grants.GrantInvalid, grants.GrantNotFound) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Grant #{grant.id} ({grant.role}) of person #{grant.person_id} revoked.")


@grant_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked grants.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def grant_list_cmd(show_all: bool, as_json: bool) -> None:
    """List active grants (and, with --all, the revoked ones)."""
    from lti_app.services.access import grants

    with UnitOfWork() as uow:
        rows = grants.list_grants(uow.session, None, active=True, limit=100_000)
        if show_all:
            rows += grants.list_grants(uow.session, None, active=False, limit=100_000)
    if as_json:
        click.echo(json.dumps([{
            "id": r.id, "person_id": r.person_id, "person": r.person, "email": r.email, "platform": r.platform,
            "role": r.role, "school": r.school, "can_see_restricted": r.can_see_restricted,
            "granted_at": r.granted_at.isoformat(), "granted_by": r.granted_by,
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None, "revoked_by": r.revoked_by}
            for r in rows], indent=2))
        return
    if not rows:
        click.echo("No grants.")
    for r in rows:
        state = f"revoked {clock.local_date(r.revoked_at)}" if r.revoked_at else "active"
        click.echo(f"#{r.id}\t{r.person} <{r.email or '-'}>\t{r.platform}\t{r.role}"
                   + (" +restricted" if r.can_see_restricted else "") + (f"\t{r.school}" if r.school else "")
                   + f"\tgranted {clock.local_date(r.granted_at)}\t{state}")


def register(main: click.Group) -> None:
    """Add this module's commands to ``main``."""
    main.add_command(import_cmd)
    main.add_command(export_cmd)
    main.add_command(retention_cmd)
    main.add_command(grant_group)
