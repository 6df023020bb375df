"""Accommodations applied in the LMS: rules, connections, quizzes seen and the ledger (issue #12).

Revision ID: 0017_lms_actions
Revises: 0016_alerts
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0017_lms_actions"
down_revision = "0016_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
