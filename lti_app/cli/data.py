"""``caseload data rotate-keys``: re-encrypt data at rest with the newest key in CASELOAD_DATA_KEYS."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from lti_app.services.platforms.data_keys import rotate_all
from lti_app.services.uow import UnitOfWork


@click.group("data")
def data_group() -> None:
    """Data at rest."""


@data_group.command("rotate-keys")
@with_appcontext
def rotate_keys_cmd() -> None:
    """Re-encrypt notes, drafts, questions, tool keys and secrets with the first (newest) data key.

    Put the new key first in CASELOAD_DATA_KEYS, keep the old ones after it, run this, then remove the old keys."""
    with UnitOfWork() as uow:
        counts = rotate_all(uow.session, lambda table, n: click.echo(f"{table}: {n} re-encrypted"))
    click.echo(f"Done: {sum(counts.values())} rows re-encrypted with the newest data key.")


def register(main: click.Group) -> None:
    main.add_command(data_group)
