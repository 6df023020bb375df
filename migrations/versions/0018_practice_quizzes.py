"""The practice LMS's quizzes and quiz overrides (dev/demo/test only; empty in production), issue #12.

Revision ID: 0018_practice_quizzes
Revises: 0019_meeting_dates
Create Date: 2026-12-06 03:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_practice_quizzes"
down_revision = "0019_meeting_dates"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "practice_quizzes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("timelimit", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("timeopen", sa.Integer(), nullable=False),
        sa.Column("timeclose", sa.Integer(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_practice_quizzes_course_id_courses"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_quizzes")),
    )
    op.create_index(op.f("ix_practice_quizzes_course_id"), "practice_quizzes", ["course_id"])
    op.create_table(
        "practice_quiz_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("userid", sa.Integer(), nullable=True),
        sa.Column("groupid", sa.Integer(), nullable=True),
        sa.Column("timeopen", sa.Integer(), nullable=True),
        sa.Column("timeclose", sa.Integer(), nullable=True),
        sa.Column("timelimit", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=True),
        sa.Column("password", sa.String(255), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["quiz_id"], ["practice_quizzes.id"],
                                name=op.f("fk_practice_quiz_overrides_quiz_id_practice_quizzes"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_practice_quiz_overrides")),
        sa.UniqueConstraint("quiz_id", "userid", name=op.f("uq_practice_quiz_overrides_quiz_id_userid")),
        sa.UniqueConstraint("quiz_id", "groupid", name=op.f("uq_practice_quiz_overrides_quiz_id_groupid")),
    )


def downgrade() -> None:
    op.drop_table("practice_quiz_overrides")
    op.drop_index(op.f("ix_practice_quizzes_course_id"), table_name="practice_quizzes")
    op.drop_table("practice_quizzes")
