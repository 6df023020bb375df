"""``caseload db upgrade|downgrade|current``: the schema always comes from Alembic."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from lti_app.migrate import current_revision, upgrade


@click.group("db")
def db_group() -> None:
    """Database schema (Alembic)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def upgrade_cmd(revision: str) -> None:
    """Bring the database schema up to date."""
    url = current_app.config["CASELOAD"].database_url
    upgrade(url, revision)
    click.echo(f"Database schema is at {current_revision(url)}.")


@db_group.command("current")
@with_appcontext
def current_cmd() -> None:
    """Print the schema revision of the database."""
    click.echo(current_revision(current_app.config["CASELOAD"].database_url) or "(empty database)")


def register(main: click.Group) -> None:
    main.add_command(db_group)
