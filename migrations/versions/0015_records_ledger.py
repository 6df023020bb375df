"""Service minutes ledger, make-ups and evidence revisions (issue #11 service minutes and records).

Revision ID: 0015_records_ledger
Revises: 0014_compliance_deadlines
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0015_records_ledger"
down_revision = "0014_compliance_deadlines"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
