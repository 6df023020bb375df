"""Alerts, reminders and delivery preferences (issue #13).

Revision ID: 0016_alerts
Revises: 0015_records_ledger
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0016_alerts"
down_revision = "0015_records_ledger"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
