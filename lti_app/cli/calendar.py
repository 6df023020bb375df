"""``caseload calendar``: the school reporting calendar (progress reports are due per reporting period) and school
closures (not counted when deadlines are in school days). Changes are in the administrators' change log."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from lti_app.services.uow import UnitOfWork


@click.group("calendar")
def calendar_group() -> None:
    """Reporting periods and school closures (district-wide, or for one school with --school)."""


@calendar_group.command("add-period")
@click.option("--name", required=True, help='For example "Quarter 1".')
@click.option("--starts", required=True, help="First day, YYYY-MM-DD.")
@click.option("--ends", required=True, help="Last day, YYYY-MM-DD.")
@click.option("--due", required=True, help="Progress reports due to parents, YYYY-MM-DD.")
@click.option("--school", default="", help="The school's name as on student records (default: district-wide).")
@with_appcontext
def add_period_cmd(name: str, starts: str, ends: str, due: str, school: str) -> None:
    """Add a reporting period (or change the dates of the one with this name, school and start)."""
    from lti_app.services.casework import deadlines

    with UnitOfWork() as uow:
        try:
            period, created = deadlines.add_period(uow.session, None, name, starts, ends, due, school)
        except deadlines.CalendarInvalid as exc:
            raise click.ClickException(str(exc)) from None
        uow.commit()
        click.echo(f"Reporting period #{period.id} {period.name} ({period.school or 'district-wide'}) "
                   f"{'added' if created else 'updated'}: {period.starts_on} to {period.ends_on}, "
                   f"reports due {period.report_due_on}.")


@calendar_group.command("add-closure")
@click.option("--name", required=True, help='For example "Winter break".')
@click.option("--starts", required=True, help="First day closed, YYYY-MM-DD.")
@click.option("--ends", required=True, help="Last day closed, YYYY-MM-DD (the same day for one day).")
@click.option("--school", default="", help="The school's name as on student records (default: district-wide).")
@with_appcontext
def add_closure_cmd(name: str, starts: str, ends: str, school: str) -> None:
    """Add a school closure (or change the end of the one with this name, school and start)."""
    from lti_app.services.casework import deadlines

    with UnitOfWork() as uow:
        try:
            closure, created = deadlines.add_closure(uow.session, None, name, starts, ends, school)
        except deadlines.CalendarInvalid as exc:
            raise click.ClickException(str(exc)) from None
        uow.commit()
        click.echo(f"Closure #{closure.id} {closure.name} ({closure.school or 'district-wide'}) "
                   f"{'added' if created else 'updated'}: {closure.starts_on} to {closure.ends_on}.")


@calendar_group.command("list")
@click.option("--school", default=None, help="Only this school's entries and the district's.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def list_cmd(school: str | None, as_json: bool) -> None:
    """List reporting periods and closures by date."""
    from lti_app.services.casework import deadlines

    with UnitOfWork() as uow:
        entries = deadlines.calendar_entries(uow.session, school)
    if as_json:
        click.echo(json.dumps([{"id": e.id, "kind": e.kind, "school": e.school or None, "name": e.name,
                                "starts_on": e.starts_on.isoformat(), "ends_on": e.ends_on.isoformat(),
                                "report_due_on": e.report_due_on.isoformat() if e.report_due_on else None}
                               for e in entries], indent=2))
        return
    if not entries:
        click.echo("No reporting period or closure yet.")
    for e in entries:
        due = f"\treports due {e.report_due_on}" if e.report_due_on else ""
        click.echo(f"{e.kind}\t#{e.id}\t{e.name}\t{e.school or 'district-wide'}\t{e.starts_on} to {e.ends_on}{due}")


def register(main: click.Group) -> None:
    """Add this module's commands to ``main``."""
    main.add_command(calendar_group)
