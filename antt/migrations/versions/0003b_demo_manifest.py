"""The demo's plan (planted hotspots, villages left uncovered), so analyses can be checked by name.

Revision ID: 0003b
Revises: 0003a
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003b"
down_revision = "0003a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE demo_manifest (
            key        text PRIMARY KEY,
            value      jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS demo_manifest")
