"""Accommodations applied in the LMS: rules, connections, quizzes seen and the ledger (issue #12).

Revision ID: 0017_lms_actions
Revises: 0016_alerts
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017_lms_actions"
down_revision = "0016_alerts"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lms_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_version_id", sa.Integer(), nullable=False),
        sa.Column("multiplier", sa.Numeric(4, 2), nullable=True),
        sa.Column("extra_minutes", sa.Integer(), nullable=True),
        sa.Column("extra_attempts", sa.Integer(), nullable=True),
        sa.Column("reduce_choices", sa.Boolean(), nullable=False),
        sa.Column("window_guard", sa.Boolean(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["plan_version_id"], ["plan_versions.id"],
                                name=op.f("fk_lms_rules_plan_version_id_plan_versions"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_rules")),
        sa.UniqueConstraint("plan_version_id", name=op.f("uq_lms_rules_plan_version_id")),
    )
    op.create_table(
        "lms_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("api_base_url", sa.String(length=1000), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=True),
        sa.Column("client_secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("secret_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("access_token_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("access_token_expires_at", WHEN, nullable=True),
        sa.Column("scopes", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("enabled_at", WHEN, nullable=True),
        sa.Column("enabled_by_id", sa.Integer(), nullable=True),
        sa.Column("health", sa.String(length=20), nullable=False),
        sa.Column("health_detail", sa.Text(), nullable=False),
        sa.Column("checked_at", WHEN, nullable=True),
        sa.Column("enrollments_checked_at", WHEN, nullable=True),
        sa.Column("events_checked_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"],
                                name=op.f("fk_lms_connections_platform_id_platforms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["enabled_by_id"], ["persons.id"],
                                name=op.f("fk_lms_connections_enabled_by_id_persons"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_connections")),
        sa.UniqueConstraint("platform_id", name=op.f("uq_lms_connections_platform_id")),
    )
    op.create_table(
        "lms_quizzes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("lms_quiz_id", sa.String(length=255), nullable=False),
        sa.Column("assignment_id", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("time_limit_seconds", sa.Integer(), nullable=True),
        sa.Column("allowed_attempts", sa.Integer(), nullable=True),
        sa.Column("opens_at", WHEN, nullable=True),
        sa.Column("closes_at", WHEN, nullable=True),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.Column("gone_at", WHEN, nullable=True),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"],
                                name=op.f("fk_lms_quizzes_platform_id_platforms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"],
                                name=op.f("fk_lms_quizzes_course_id_courses"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_quizzes")),
        sa.UniqueConstraint("course_id", "kind", "lms_quiz_id", name=op.f("uq_lms_quizzes_course_id_kind_lms_quiz_id")),
    )
    op.create_index(op.f("ix_lms_quizzes_platform_id"), "lms_quizzes", ["platform_id"])
    op.create_table(
        "lms_quiz_states",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("required", JSON, nullable=False),
        sa.Column("lms", JSON, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["quiz_id"], ["lms_quizzes.id"],
                                name=op.f("fk_lms_quiz_states_quiz_id_lms_quizzes"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"],
                                name=op.f("fk_lms_quiz_states_person_id_persons"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_quiz_states")),
        sa.UniqueConstraint("quiz_id", "person_id", name=op.f("uq_lms_quiz_states_quiz_id_person_id")),
    )
    op.create_index(op.f("ix_lms_quiz_states_person_id"), "lms_quiz_states", ["person_id"])
    op.create_table(
        "lms_action_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("lms_course_id", sa.String(length=255), nullable=False),
        sa.Column("quiz_id", sa.Integer(), nullable=True),
        sa.Column("lms_quiz_id", sa.String(length=255), nullable=False),
        sa.Column("quiz_title", sa.String(length=500), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("lms_user_id", sa.String(length=255), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=30), nullable=False),
        sa.Column("before", JSON, nullable=False),
        sa.Column("after", JSON, nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("plan_version_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=255), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("lms_status", sa.Integer(), nullable=True),
        sa.Column("lms_answer", sa.Text(), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["platform_id"], ["platforms.id"],
                                name=op.f("fk_lms_action_ledger_platform_id_platforms"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"],
                                name=op.f("fk_lms_action_ledger_course_id_courses"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["quiz_id"], ["lms_quizzes.id"],
                                name=op.f("fk_lms_action_ledger_quiz_id_lms_quizzes"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"],
                                name=op.f("fk_lms_action_ledger_person_id_persons"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"],
                                name=op.f("fk_lms_action_ledger_student_id_students"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["plan_version_id"], ["plan_versions.id"],
                                name=op.f("fk_lms_action_ledger_plan_version_id_plan_versions"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_action_ledger")),
    )
    op.create_index("ix_lms_action_ledger_quiz_person_field", "lms_action_ledger", ["quiz_id", "person_id", "field"])
    op.create_index("ix_lms_action_ledger_student_at", "lms_action_ledger", ["student_id", "at"])
    op.create_index("ix_lms_action_ledger_course_at", "lms_action_ledger", ["course_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_lms_action_ledger_course_at", table_name="lms_action_ledger")
    op.drop_index("ix_lms_action_ledger_student_at", table_name="lms_action_ledger")
    op.drop_index("ix_lms_action_ledger_quiz_person_field", table_name="lms_action_ledger")
    op.drop_table("lms_action_ledger")
    op.drop_index(op.f("ix_lms_quiz_states_person_id"), table_name="lms_quiz_states")
    op.drop_table("lms_quiz_states")
    op.drop_index(op.f("ix_lms_quizzes_platform_id"), table_name="lms_quizzes")
    op.drop_table("lms_quizzes")
    op.drop_table("lms_connections")
    op.drop_table("lms_rules")
