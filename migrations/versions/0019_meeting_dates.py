"""Removing a held meeting rolls the plan's date back (issue #11): the plan dates each held meeting set, with their
value before, and the withdrawal of a completion whose meeting was removed or corrected. Also the LMS work backlog
per course for the sync health page (issue #12: an LMS that is down delays the work, and the page shows it).

Revision ID: 0019_meeting_dates
Revises: 0017_lms_actions
Create Date: 2026-12-06 03:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_meeting_dates"
down_revision = "0017_lms_actions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meeting_plan_dates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("before_on", sa.Date(), nullable=True),
        sa.Column("after_on", sa.Date(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], name=op.f("fk_meeting_plan_dates_meeting_id_meetings"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_meeting_plan_dates_plan_id_plans"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["persons.id"],
                                name=op.f("fk_meeting_plan_dates_recorded_by_id_persons"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["undone_by_id"], ["persons.id"],
                                name=op.f("fk_meeting_plan_dates_undone_by_id_persons"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_plan_dates")),
    )
    with op.batch_alter_table("meeting_plan_dates", schema=None) as batch_op:
        batch_op.create_index("ix_meeting_plan_dates_meeting", ["meeting_id"], unique=False)
        batch_op.create_index("ix_meeting_plan_dates_plan_field", ["plan_id", "field"], unique=False)
    with op.batch_alter_table("deadline_completions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "lms_course_backlog",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waiting_reason", sa.String(length=20), nullable=False, server_default=""),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_changes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_ok_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"], name=op.f("fk_lms_course_backlog_platform_id_platforms"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_lms_course_backlog_course_id_courses"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_course_backlog")),
        sa.UniqueConstraint("course_id", name=op.f("uq_lms_course_backlog_course_id")),
    )
    with op.batch_alter_table("lms_course_backlog", schema=None) as batch_op:
        batch_op.create_index("ix_lms_course_backlog_platform", ["platform_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lms_course_backlog", schema=None) as batch_op:
        batch_op.drop_index("ix_lms_course_backlog_platform")
    op.drop_table("lms_course_backlog")
    with op.batch_alter_table("deadline_completions", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")
    with op.batch_alter_table("meeting_plan_dates", schema=None) as batch_op:
        batch_op.drop_index("ix_meeting_plan_dates_plan_field")
        batch_op.drop_index("ix_meeting_plan_dates_meeting")
    op.drop_table("meeting_plan_dates")
