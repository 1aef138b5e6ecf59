"""Long work as jobs whose state lives in PostgreSQL (antt.jobs).

Reserved link in the one migration chain (0004 -> 0005 -> ... -> 0009) so that parallel work
lands without branching the chain; filled by the work it names.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
