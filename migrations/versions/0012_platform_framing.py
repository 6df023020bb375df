"""Framing origins of a platform: the origins whose pages may frame Caseload (issue #14 item 1).

Canvas's issuer (https://canvas.instructure.com) and login host (https://sso.canvaslms.com) are never the host of the
course page that frames the tool (the district's instructure.com host or a vanity domain); the CSP frame-ancestors of
a platform therefore also lists the origins learned from validated launches, from the page that started Dynamic
Registration, and those an administrator set.

Revision ID: 0012_platform_framing
Revises: 0011_registration_invites
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_platform_framing"
down_revision = "0011_registration_invites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_frame_origins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"],
                                name=op.f("fk_platform_frame_origins_platform_id_platforms"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_frame_origins")),
        sa.UniqueConstraint("platform_id", "origin", name=op.f("uq_platform_frame_origins_platform_id_origin")),
    )


def downgrade() -> None:
    op.drop_table("platform_frame_origins")
