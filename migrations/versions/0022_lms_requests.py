"""LMS reconcile requests kept in PostgreSQL (issue #12 "Reliability": work queued survives Redis losing its data).

A reconcile asked for a course (plan activation, a new enrollment, a quiz event, *Apply now*, the nightly sweep) is
recorded on the course's backlog row before its Celery message is sent, and cleared by the reconcile that does it;
the 5-minute beat job queues again any request left older than a few minutes.

Revision ID: 0022_lms_requests
Revises: 0021_lms_ledger_intent
Create Date: 2026-12-06 05:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022_lms_requests"
down_revision = "0021_lms_ledger_intent"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("lms_course_backlog") as batch:
        batch.add_column(sa.Column("requested_at", WHEN, nullable=True))
        batch.add_column(sa.Column("requested_reason", sa.String(length=30), nullable=False, server_default=""))
        batch.add_column(sa.Column("requested_person_ids", JSON, nullable=True))
    op.create_index(op.f("ix_lms_course_backlog_requested_at"), "lms_course_backlog", ["requested_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_lms_course_backlog_requested_at"), table_name="lms_course_backlog")
    with op.batch_alter_table("lms_course_backlog") as batch:
        batch.drop_column("requested_person_ids")
        batch.drop_column("requested_reason")
        batch.drop_column("requested_at")
