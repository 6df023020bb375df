"""``caseload demo``: migrate, seed the fictional demo district, and optionally serve it with the practice LMS."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from lti_app.demo.district import seed_demo
from lti_app.migrate import upgrade
from lti_app.services.uow import UnitOfWork


@click.command("demo")
@click.option("--serve", is_flag=True, help="Start the development server after seeding.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def demo_cmd(serve: bool, host: str, port: int) -> None:
    """Create the demo district (fictional people only) for the built-in practice LMS."""
    settings = current_app.config["CASELOAD"]
    if settings.env == "production":
        raise click.ClickException("The demo district and practice LMS are not available in production.")
    upgrade(settings.database_url, "head")
    with UnitOfWork() as uow:
        district = seed_demo(uow.session, settings)
        uow.commit()
        click.echo(f"Demo district ready: {len(district.courses)} courses, {len(district.teachers)} teachers, "
                   f"{len(district.case_managers)} case managers, {len(district.students)} students.")
    url = settings.practice_url + "/practice/"
    if not serve:
        click.echo(f"Start it with `caseload run` and open {url}")
        return
    click.echo("")
    click.echo(f"  Caseload is running. Open the practice LMS:  {url}")
    click.echo("  Click 'Launch as' a teacher or case manager to see Caseload inside the LMS frame.")
    click.echo("  (Press Ctrl+C to stop.)")
    click.echo("")
    # The development server's request log would print page URLs, which carry app tokens: keep it quiet.
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from lti_app.runtime import tune_gc

    tune_gc()
    from werkzeug.serving import run_simple

    run_simple(host, port, current_app._get_current_object(), threaded=True,  # type: ignore[attr-defined]
               use_reloader=False, use_debugger=False)


def register(main: click.Group) -> None:
    main.add_command(demo_cmd)
