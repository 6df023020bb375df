"""Alerts, reminders and delivery preferences (issue #13).

Revision ID: 0016_alerts
Revises: 0015_records_ledger
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016_alerts"
down_revision = "0015_records_ledger"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=True),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("section_id", sa.Integer(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("lines", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_status", sa.String(length=10), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["recipient_id"], ["persons.id"], name=op.f("fk_alerts_recipient_id_persons"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"], name=op.f("fk_alerts_student_id_students"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"], name=op.f("fk_alerts_course_id_courses"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["section_id"], ["sections.id"], name=op.f("fk_alerts_section_id_sections"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("recipient_id", "dedupe_key", name=op.f("uq_alerts_recipient_id_dedupe_key")),
    )
    op.create_index("ix_alerts_recipient_read", "alerts", ["recipient_id", "read_at"])
    op.create_index("ix_alerts_email_status", "alerts", ["email_status"])
    op.create_index(op.f("ix_alerts_student_id"), "alerts", ["student_id"])

    op.create_table(
        "alert_preferences",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("email_mode", sa.String(length=10), nullable=False),
        sa.Column("schedule_change", sa.String(length=10), nullable=False),
        sa.Column("deadline", sa.String(length=10), nullable=False),
        sa.Column("question_answered", sa.String(length=10), nullable=False),
        sa.Column("last_digest_on", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], name=op.f("fk_alert_preferences_person_id_persons"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_alert_preferences")),
    )

    op.create_table(
        "alert_watches",
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"], name=op.f("fk_alert_watches_student_id_students"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("student_id", name=op.f("pk_alert_watches")),
    )

    op.create_table(
        "alert_placements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"],
                                name=op.f("fk_alert_placements_student_id_students"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["course_id"], ["courses.id"],
                                name=op.f("fk_alert_placements_course_id_courses"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["section_id"], ["sections.id"],
                                name=op.f("fk_alert_placements_section_id_sections"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_placements")),
        sa.UniqueConstraint("student_id", "section_id", name=op.f("uq_alert_placements_student_id_section_id")),
    )
    op.create_index("ix_alert_placements_course", "alert_placements", ["course_id", "left_at"])

    op.create_table(
        "alert_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminders_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_state")),
    )


def downgrade() -> None:
    op.drop_table("alert_state")
    op.drop_index("ix_alert_placements_course", table_name="alert_placements")
    op.drop_table("alert_placements")
    op.drop_table("alert_watches")
    op.drop_table("alert_preferences")
    op.drop_index(op.f("ix_alerts_student_id"), table_name="alerts")
    op.drop_index("ix_alerts_email_status", table_name="alerts")
    op.drop_index("ix_alerts_recipient_read", table_name="alerts")
    op.drop_table("alerts")
