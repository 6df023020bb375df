"""Dynamic Registration by invitation: one-time registration links (only their SHA-256 is stored).

Revision ID: 0011_registration_invites
Revises: 0010_merge
Create Date: 2026-12-03 16:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_registration_invites"
down_revision = "0010_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registration_invites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"],
                                name=op.f("fk_registration_invites_platform_id_platforms"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_invites")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_registration_invites_token_sha256")),
    )


def downgrade() -> None:
    op.drop_table("registration_invites")
