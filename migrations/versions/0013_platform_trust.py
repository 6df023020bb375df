"""Canvas root account of a platform: a signed Live Event is accepted only for it (issue #14 item 5).

Instructure-hosted Canvas instances may share the key set that signs Live Events, so a valid signature does not
say which district sent an event; ``root_account_uuid`` in the event's metadata does, compared with the root
account learned from the platform's own launches (``$vnd.Canvas.root_account.uuid``) or set by an administrator.

Revision ID: 0013_platform_trust
Revises: 0012_platform_framing
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_platform_trust"
down_revision = "0012_platform_framing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("platforms") as batch:
        batch.add_column(sa.Column("canvas_root_account_uuid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("platforms") as batch:
        batch.drop_column("canvas_root_account_uuid")
