"""Canvas root account, Moodle webhook state and staff roles (issue #14 items 2-4).

Revision ID: 0013_platform_trust
Revises: 0012_platform_framing
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0013_platform_trust"
down_revision = "0012_platform_framing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
