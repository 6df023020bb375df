"""Casework: service requirements and sessions, guardian contacts, meetings, referrals (with their status history)
and crisis entries. Free text is stored encrypted (``*_encrypted`` columns). Also an index on enrollments
(course, role, state) for the caseload home's "current teachers of the student's courses" count.

Revision ID: 0007_services_casework
Revises: 0005_admin
Create Date: 2026-12-03 12:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_services_casework"
down_revision = "0005_admin"
branch_labels = None
depends_on = None


def _person_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["persons.id"], name=op.f(f"fk_{table}_{column}_persons"),
                                   ondelete="SET NULL")


def _student_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["student_id"], ["students.id"], name=op.f(f"fk_{table}_student_id_students"),
                                   ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "service_requirements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("service_type", sa.String(length=30), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("provider_name", sa.String(length=255), nullable=True),
        sa.Column("setting", sa.String(length=100), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("minutes > 0", name=op.f("ck_service_requirements_minutes_positive")),
        sa.CheckConstraint("period IN ('week', 'month')", name=op.f("ck_service_requirements_period")),
        _student_fk("service_requirements"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_service_requirements_plan_id_plans"),
                                ondelete="SET NULL"),
        _person_fk("service_requirements", "provider_id"),
        _person_fk("service_requirements", "created_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_requirements")),
    )
    with op.batch_alter_table("service_requirements", schema=None) as batch_op:
        batch_op.create_index("ix_service_requirements_student_id", ["student_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_requirements_provider_id"), ["provider_id"], unique=False)

    op.create_table(
        "service_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requirement_id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("attendance", sa.String(length=20), nullable=False),
        sa.Column("note_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("logged_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("minutes > 0", name=op.f("ck_service_sessions_minutes_positive")),
        sa.ForeignKeyConstraint(["requirement_id"], ["service_requirements.id"],
                                name=op.f("fk_service_sessions_requirement_id_service_requirements"), ondelete="CASCADE"),
        _student_fk("service_sessions"),
        _person_fk("service_sessions", "logged_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_sessions")),
    )
    with op.batch_alter_table("service_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_service_sessions_requirement_held", ["requirement_id", "held_on"], unique=False)
        batch_op.create_index("ix_service_sessions_student_held", ["student_id", "held_on"], unique=False)

    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("contacted_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("contact_with", sa.String(length=255), nullable=False),
        sa.Column("summary_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("follow_up_on", sa.Date(), nullable=True),
        sa.Column("follow_up_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _student_fk("contacts"),
        _person_fk("contacts", "recorded_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
    )
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.create_index("ix_contacts_student_contacted", ["student_id", "contacted_on"], unique=False)

    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("meeting_type", sa.String(length=30), nullable=False),
        sa.Column("meets_on", sa.Date(), nullable=False),
        sa.Column("participants_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("notice_sent_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("outcome_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _student_fk("meetings"),
        _person_fk("meetings", "recorded_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
    )
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.create_index("ix_meetings_student_meets", ["student_id", "meets_on"], unique=False)

    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("referral_type", sa.String(length=30), nullable=False),
        sa.Column("referred_to", sa.String(length=255), nullable=False),
        sa.Column("reason_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("referred_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _student_fk("referrals"),
        _person_fk("referrals", "created_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index("ix_referrals_student_status", ["student_id", "status"], unique=False)

    op.create_table(
        "referral_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["referral_id"], ["referrals.id"],
                                name=op.f("fk_referral_status_changes_referral_id_referrals"), ondelete="CASCADE"),
        _person_fk("referral_status_changes", "changed_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_status_changes")),
    )
    with op.batch_alter_table("referral_status_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_status_changes_referral_id"), ["referral_id"], unique=False)

    op.create_table(
        "crisis_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("description_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("actions_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _student_fk("crisis_entries"),
        _person_fk("crisis_entries", "recorded_by_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crisis_entries")),
    )
    with op.batch_alter_table("crisis_entries", schema=None) as batch_op:
        batch_op.create_index("ix_crisis_entries_student_occurred", ["student_id", "occurred_on"], unique=False)


    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index("ix_enrollments_course_role_state", ["course_id", "role", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_course_role_state")
    with op.batch_alter_table("crisis_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_crisis_entries_student_occurred")
    op.drop_table("crisis_entries")
    with op.batch_alter_table("referral_status_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_status_changes_referral_id"))
    op.drop_table("referral_status_changes")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_student_status")
    op.drop_table("referrals")
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_index("ix_meetings_student_meets")
    op.drop_table("meetings")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_student_contacted")
    op.drop_table("contacts")
    with op.batch_alter_table("service_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_service_sessions_student_held")
        batch_op.drop_index("ix_service_sessions_requirement_held")
    op.drop_table("service_sessions")
    with op.batch_alter_table("service_requirements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_requirements_provider_id"))
        batch_op.drop_index("ix_service_requirements_student_id")
    op.drop_table("service_requirements")
