"""Join the branches built side by side for issues #3 and #5 (goals and deadlines, services and casework,
webhooks): one head again, so ``alembic upgrade head`` builds the whole schema.

Revision ID: 0010_merge
Revises: 0006_goals_deadlines, 0007_services_casework, 0009_webhooks
Create Date: 2026-12-03 13:00:00
"""
from __future__ import annotations

revision = "0010_merge"
down_revision = ("0006_goals_deadlines", "0007_services_casework", "0009_webhooks")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
