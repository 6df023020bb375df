"""Service minutes ledger and evidence revisions (issue #11: service minutes, records).

- ``service_sessions.kind``: session | make_up (a make-up pays down minutes owed).
- ``revision_no`` and ``deleted_at`` on progress points, service sessions, guardian contacts and meetings: evidence is
  corrected by revisions and removed only softly.
- ``evidence_revisions``: every saved state of those entries, copy-on-write (who, when, why; state as encrypted JSON).

Revision ID: 0015_records_ledger
Revises: 0014_compliance_deadlines
Create Date: 2026-12-06 00:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_records_ledger"
down_revision = "0014_compliance_deadlines"
branch_labels = None
depends_on = None

EVIDENCE_TABLES = ("progress_points", "service_sessions", "contacts", "meetings")


def upgrade() -> None:
    for table in EVIDENCE_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("revision_no", sa.Integer(), server_default="1", nullable=False))
            batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("service_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=10), server_default="session", nullable=False))
        batch_op.create_check_constraint(op.f("ck_service_sessions_kind"), "kind IN ('session', 'make_up')")

    op.create_table(
        "evidence_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("revision_no", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("state_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("reason_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("edited_by_id", sa.Integer(), nullable=True),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("entity IN ('progress_point', 'service_session', 'contact', 'meeting')",
                           name=op.f("ck_evidence_revisions_entity")),
        sa.CheckConstraint("action IN ('create', 'edit', 'remove')", name=op.f("ck_evidence_revisions_action")),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"], name=op.f("fk_evidence_revisions_student_id_students"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["edited_by_id"], ["persons.id"],
                                name=op.f("fk_evidence_revisions_edited_by_id_persons"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_revisions")),
        sa.UniqueConstraint("entity", "entity_id", "revision_no",
                            name=op.f("uq_evidence_revisions_entity_entity_id_revision_no")),
    )
    with op.batch_alter_table("evidence_revisions", schema=None) as batch_op:
        batch_op.create_index("ix_evidence_revisions_student_id", ["student_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evidence_revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_revisions_student_id")
    op.drop_table("evidence_revisions")
    with op.batch_alter_table("service_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_service_sessions_kind"), type_="check")
        batch_op.drop_column("kind")
    for table in reversed(EVIDENCE_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("deleted_at")
            batch_op.drop_column("revision_no")
