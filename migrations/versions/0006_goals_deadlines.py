"""Goals and deadlines: the plan dates compliance deadlines are derived from (consent, last evaluation, last IEP
meeting, reevaluation waiver, last 504 review), the school reporting calendar and closures, goals, progress data
points and progress reports (free text encrypted, ``*_encrypted`` columns).

Revision ID: 0006_goals_deadlines
Revises: 0005_admin
Create Date: 2026-12-03 13:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_goals_deadlines"
down_revision = "0005_admin"
branch_labels = None
depends_on = None

PLAN_DATES = ("evaluation_consent_on", "last_evaluation_on", "last_meeting_on", "reevaluation_waived_on",
              "last_504_review_on")


def _person_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["persons.id"], name=op.f(f"fk_{table}_{column}_persons"),
                                   ondelete="SET NULL")


def _calendar_table(name: str, with_due: bool) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        *([sa.Column("report_due_on", sa.Date(), nullable=False)] if with_due else []),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("school", "name", "starts_on", name=op.f(f"uq_{name}_school_name_starts_on")),
    )


def upgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        for column in PLAN_DATES:
            batch_op.add_column(sa.Column(column, sa.Date(), nullable=True))

    _calendar_table("reporting_periods", with_due=True)
    _calendar_table("school_closures", with_due=False)

    op.create_table(
        "goals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("area", sa.String(length=30), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("baseline", sa.Numeric(14, 3), nullable=False),
        sa.Column("target", sa.Numeric(14, 3), nullable=False),
        sa.Column("unit", sa.String(length=40), nullable=False),
        sa.Column("measurement_method", sa.String(length=200), nullable=False),
        sa.Column("baseline_on", sa.Date(), nullable=False),
        sa.Column("target_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"], name=op.f("fk_goals_student_id_students"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_goals_plan_id_plans"), ondelete="CASCADE"),
        _person_fk("goals", "created_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goals")),
    )
    with op.batch_alter_table("goals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_goals_student_id"), ["student_id"], unique=False)
        batch_op.create_index("ix_goals_plan_status", ["plan_id", "status"], unique=False)

    op.create_table(
        "progress_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=False),
        sa.Column("value", sa.Numeric(14, 3), nullable=False),
        sa.Column("note_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["goal_id"], ["goals.id"], name=op.f("fk_progress_points_goal_id_goals"),
                                ondelete="CASCADE"),
        _person_fk("progress_points", "recorded_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_points")),
    )
    with op.batch_alter_table("progress_points", schema=None) as batch_op:
        batch_op.create_index("ix_progress_points_goal_measured", ["goal_id", "measured_on"], unique=False)

    op.create_table(
        "progress_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("period_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("narrative_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finalized_by_id", sa.Integer(), nullable=True),
        sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"], name=op.f("fk_progress_reports_student_id_students"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_progress_reports_plan_id_plans"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["period_id"], ["reporting_periods.id"],
                                name=op.f("fk_progress_reports_period_id_reporting_periods"), ondelete="RESTRICT"),
        _person_fk("progress_reports", "created_by_id"),
        _person_fk("progress_reports", "updated_by_id"),
        _person_fk("progress_reports", "finalized_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_reports")),
        sa.UniqueConstraint("plan_id", "period_id", name=op.f("uq_progress_reports_plan_id_period_id")),
    )
    with op.batch_alter_table("progress_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_progress_reports_student_id"), ["student_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_progress_reports_period_id"), ["period_id"], unique=False)

    op.create_table(
        "progress_report_goals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=False),
        sa.Column("rating", sa.String(length=30), nullable=True),
        sa.Column("comment_encrypted", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["progress_reports.id"],
                                name=op.f("fk_progress_report_goals_report_id_progress_reports"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["goal_id"], ["goals.id"], name=op.f("fk_progress_report_goals_goal_id_goals"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_progress_report_goals")),
        sa.UniqueConstraint("report_id", "goal_id", name=op.f("uq_progress_report_goals_report_id_goal_id")),
    )
    with op.batch_alter_table("progress_report_goals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_progress_report_goals_goal_id"), ["goal_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("progress_report_goals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_progress_report_goals_goal_id"))
    op.drop_table("progress_report_goals")
    with op.batch_alter_table("progress_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_progress_reports_period_id"))
        batch_op.drop_index(batch_op.f("ix_progress_reports_student_id"))
    op.drop_table("progress_reports")
    with op.batch_alter_table("progress_points", schema=None) as batch_op:
        batch_op.drop_index("ix_progress_points_goal_measured")
    op.drop_table("progress_points")
    with op.batch_alter_table("goals", schema=None) as batch_op:
        batch_op.drop_index("ix_goals_plan_status")
        batch_op.drop_index(batch_op.f("ix_goals_student_id"))
    op.drop_table("goals")
    op.drop_table("school_closures")
    op.drop_table("reporting_periods")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        for column in reversed(PLAN_DATES):
            batch_op.drop_column(column)
