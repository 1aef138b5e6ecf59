"""Memo of the within-R overlays of coverage (geo.reach), keyed by a hash of their inputs.

Revision ID: 0004
Revises: 0003b
Create Date: 2026-11-23
"""

from alembic import op

revision = "0004"
down_revision = "0003b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # key = md5 of everything the overlay reads (unit id and row version, R, the positions of
    # the active models near the commune), so an entry is never stale: changed inputs give a new
    # key. Rows go with their unit.
    op.execute(
        """
        CREATE TABLE reach_cache (
            unit_id        integer NOT NULL REFERENCES admin_unit(id) ON DELETE CASCADE,
            key            uuid NOT NULL,
            radius_m       float8 NOT NULL CHECK (radius_m > 0),
            area_m2        float8 NOT NULL CHECK (area_m2 >= 0),
            area_within_m2 float8 NOT NULL CHECK (area_within_m2 >= 0),
            computed_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (unit_id, key)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS reach_cache")
