"""Acknowledgements looked up by plan version (issue #11: the caseload home at 200 students).

The caseload home's "N of M teachers acknowledged" joins each of the case manager's students' teachers to the
acknowledgements of the versions in force. Without an index on ``plan_version_id`` PostgreSQL read the whole
acknowledgements table on every page (every version and school year ever acknowledged, so the cost grew with the
district's history); with it, it reads the acknowledgements of those versions only.

Revision ID: 0020_caseload_speed
Revises: 0018_practice_quizzes
Create Date: 2026-12-06 04:00:00
"""
from __future__ import annotations

from alembic import op

revision = "0020_caseload_speed"
down_revision = "0018_practice_quizzes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acknowledgements_plan_version_id"), ["plan_version_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("acknowledgements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acknowledgements_plan_version_id"))
