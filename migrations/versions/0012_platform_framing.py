"""Framing origins of a platform and page-token binding (issue #14 items 1 and 5).

Revision ID: 0012_platform_framing
Revises: 0011_registration_invites
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0012_platform_framing"
down_revision = "0011_registration_invites"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
