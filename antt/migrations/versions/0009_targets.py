"""The year's plan: targets, KPIs, reviews, events (issue 11).

Reserved link in the one migration chain (0004 -> 0005 -> ... -> 0009) so that parallel work
lands without branching the chain; filled by the work it names.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
