"""``caseload keys``: the tool's signing keys and data-key generation."""

from __future__ import annotations

import click
from cryptography.fernet import Fernet
from flask.cli import with_appcontext
from sqlalchemy import select

from lti_app import clock
from lti_app.models import ToolKey
from lti_app.services.platforms import keys as key_service
from lti_app.services.uow import UnitOfWork


@click.group("keys")
def keys_group() -> None:
    """Caseload's LTI signing keys (JWKS) and encryption keys."""


@keys_group.command("rotate")
@with_appcontext
def rotate_cmd() -> None:
    """Promote the published next key to current, retire the current one, publish a new next key."""
    with UnitOfWork() as uow:
        current, nxt = key_service.rotate(uow.session)
        uow.commit()
    click.echo(f"Signing with key {current}; published next key {nxt}.")


@keys_group.command("list")
@with_appcontext
def list_cmd() -> None:
    """List tool keys and their states (no private material)."""
    with UnitOfWork() as uow:
        key_service.ensure_keys(uow.session)
        uow.commit()
        for key in uow.session.scalars(select(ToolKey).order_by(ToolKey.created_at)):
            click.echo(f"{key.kid}\t{key.state}\t{clock.local(key.created_at):%Y-%m-%d %H:%M %Z}")


@keys_group.command("new-data-key")
def new_data_key_cmd() -> None:
    """Print a new Fernet key for CASELOAD_DATA_KEYS (put it first; keep the old ones after it)."""
    click.echo(Fernet.generate_key().decode())


def register(main: click.Group) -> None:
    main.add_command(keys_group)
