"""Compliance deadlines and timeliness (issue #11 deadlines): the waiver covers one reevaluation, the eligibility
determination (initial IEP meeting within 30 days), the transition plan, and the completions table that keeps how
late each deadline was met and why.

Revision ID: 0014_compliance_deadlines
Revises: 0013_platform_trust
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_compliance_deadlines"
down_revision = "0013_platform_trust"
branch_labels = None
depends_on = None

PLAN_DATES = ("reevaluation_waiver_covers", "eligibility_determined_on", "transition_plan_on")


def upgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        for column in PLAN_DATES:
            batch_op.add_column(sa.Column(column, sa.Date(), nullable=True))
    # A waiver recorded before this revision covered the reevaluation then due (the stored date was kept equal to
    # it): say so, so the next one is due three years later instead of never.
    op.execute("UPDATE plans SET reevaluation_waiver_covers = reevaluation_due "
               "WHERE reevaluation_waived_on IS NOT NULL AND reevaluation_due IS NOT NULL")

    op.create_table(
        "deadline_completions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.Column("days_late", sa.Integer(), nullable=False),
        sa.Column("late_reason", sa.String(length=40), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("days_late >= 0", name=op.f("ck_deadline_completions_days_late_not_negative")),
        sa.CheckConstraint("days_late = 0 OR late_reason IS NOT NULL",
                           name=op.f("ck_deadline_completions_late_has_reason")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_deadline_completions_plan_id_plans"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"],
                                name=op.f("fk_deadline_completions_student_id_students"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"],
                                name=op.f("fk_deadline_completions_meeting_id_meetings"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["recorded_by_id"], ["persons.id"],
                                name=op.f("fk_deadline_completions_recorded_by_id_persons"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadline_completions")),
    )
    with op.batch_alter_table("deadline_completions", schema=None) as batch_op:
        batch_op.create_index("ix_deadline_completions_plan_kind", ["plan_id", "kind"], unique=False)
        batch_op.create_index("ix_deadline_completions_student_id", ["student_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deadline_completions", schema=None) as batch_op:
        batch_op.drop_index("ix_deadline_completions_student_id")
        batch_op.drop_index("ix_deadline_completions_plan_kind")
    op.drop_table("deadline_completions")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        for column in reversed(PLAN_DATES):
            batch_op.drop_column(column)
