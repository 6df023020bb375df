"""``caseload alerts``: run the alerts job now (schedule changes, answered questions, deadline reminders, e-mail).
In the embedded mode (no broker, so no beat) put ``caseload alerts run`` in cron, every minute or so."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from lti_app.services.uow import UnitOfWork


@click.group("alerts")
def alerts_group() -> None:
    """Alerts and reminders."""


@alerts_group.command("run")
@with_appcontext
def run_cmd() -> None:
    """Detect and deliver alerts once. Safe to run again at any time: nothing is alerted or sent twice."""
    from lti_app.services.alerts import job

    with UnitOfWork() as uow:
        report = job.run(uow.session, current_app.config["CASELOAD"])
    click.echo(report.summary() + f" ({report.seconds:.2f} s).")
    if report.delivery.error:
        raise SystemExit(1)


def register(main: click.Group) -> None:
    main.add_command(alerts_group)
