"""Administration: the admin change log, who revoked a grant, when retention purged a record, and an index for
the district-wide access log (newest first, unfiltered).

Revision ID: 0005_admin
Revises: 0001
Create Date: 2026-11-24 23:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_admin"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("via", sa.String(length=10), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["actor_id"], ["persons.id"], name=op.f("fk_admin_events_actor_id_persons"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_events")),
    )
    with op.batch_alter_table("admin_events", schema=None) as batch_op:
        batch_op.create_index("ix_admin_events_action_at", ["action", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_admin_events_actor_id"), ["actor_id"], unique=False)

    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_role_grants_revoked_by_id_persons"), "persons",
                                    ["revoked_by_id"], ["id"], ondelete="SET NULL")

    with op.batch_alter_table("students", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.create_index("ix_access_events_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.drop_index("ix_access_events_at")

    with op.batch_alter_table("students", schema=None) as batch_op:
        batch_op.drop_column("purged_at")

    with op.batch_alter_table("role_grants", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_role_grants_revoked_by_id_persons"), type_="foreignkey")
        batch_op.drop_column("revoked_by_id")

    with op.batch_alter_table("admin_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_events_actor_id"))
        batch_op.drop_index("ix_admin_events_action_at")
    op.drop_table("admin_events")
