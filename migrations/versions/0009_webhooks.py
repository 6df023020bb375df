"""Webhooks: look enrollments up by the LMS's enrollment id (Canvas enrollment_state_* events).

Revision ID: 0009_webhooks
Revises: 0005_admin
Create Date: 2026-12-03 12:40:00
"""
from __future__ import annotations

from alembic import op

revision = "0009_webhooks"
down_revision = "0005_admin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index("ix_enrollments_lms_enrollment_id", ["lms_enrollment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_lms_enrollment_id")
