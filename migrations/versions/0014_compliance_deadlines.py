"""Compliance deadlines and timeliness (issue #11 deadlines).

Revision ID: 0014_compliance_deadlines
Revises: 0013_platform_trust
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0014_compliance_deadlines"
down_revision = "0013_platform_trust"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
