"""The ``caseload`` command (a FlaskGroup): ``caseload --help`` lists everything.

Each sub-module adds its commands through ``register(main)``; ``run`` comes from Flask.
"""

from __future__ import annotations

import importlib

import click
from flask.cli import FlaskGroup

CLI_MODULES = (
    "lti_app.cli.db",
    "lti_app.cli.platform",
    "lti_app.cli.keys",
    "lti_app.cli.roster",
    "lti_app.cli.demo",
    "lti_app.cli.casework",
    "lti_app.cli.data",
    "lti_app.cli.calendar",
    "lti_app.cli.alerts",
)


def _create_app():  # type: ignore[no-untyped-def]
    from lti_app import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False, load_dotenv=False)
def main() -> None:
    """Caseload: accommodations, case notes and rosters inside Canvas and Moodle."""


for _name in CLI_MODULES:
    importlib.import_module(_name).register(main)
