"""Importer support: launch points get an external id, so a re-import updates, never duplicates.

Revision ID: 0003a
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003a"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE launch_point ADD COLUMN external_id text UNIQUE")


def downgrade() -> None:
    op.execute("ALTER TABLE launch_point DROP COLUMN external_id")
