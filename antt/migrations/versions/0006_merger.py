"""Every incident counted across the 2025 merger (issue 13).

Reserved link in the one migration chain (0004 -> 0005 -> ... -> 0009) so that parallel work
lands without branching the chain; filled by the work it names.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
