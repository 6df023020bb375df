"""LMS ledger intents (issue #12, "a sweep that is killed halfway resumes without double changes").

A change Caseload is about to send to the LMS is committed here before the call and removed with the ledger row that
records the answer, so a worker killed between the LMS accepting a write and the ledger's commit leaves a trace: the
next reconcile finds the value in the LMS, recognises it as Caseload's and appends the ledger row then, instead of
losing the record (and later taking the value for a teacher's).

Revision ID: 0021_lms_ledger_intent
Revises: 0020_caseload_speed
Create Date: 2026-12-06 04:15:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0021_lms_ledger_intent"
down_revision = "0020_caseload_speed"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lms_ledger_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=30), nullable=False),
        sa.Column("before", JSON, nullable=False),
        sa.Column("after", JSON, nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("plan_version_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=255), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"],
                                name=op.f("fk_lms_ledger_intents_course_id_courses"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["quiz_id"], ["lms_quizzes.id"],
                                name=op.f("fk_lms_ledger_intents_quiz_id_lms_quizzes"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"],
                                name=op.f("fk_lms_ledger_intents_person_id_persons"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["plan_version_id"], ["plan_versions.id"],
                                name=op.f("fk_lms_ledger_intents_plan_version_id_plan_versions"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lms_ledger_intents")),
    )
    op.create_index(op.f("ix_lms_ledger_intents_course_id"), "lms_ledger_intents", ["course_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_lms_ledger_intents_course_id"), table_name="lms_ledger_intents")
    op.drop_table("lms_ledger_intents")
