"""Stateless workers: shared state in PostgreSQL (issue 12).

Reserved link in the one migration chain (0004 -> 0005 -> ... -> 0009) so that parallel work
lands without branching the chain; filled by the work it names.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
