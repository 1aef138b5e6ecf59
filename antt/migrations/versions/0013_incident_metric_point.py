"""Each incident's point in metres (EPSG:3405), stored: ``incident.geom_m``.

Every analysis of incidents measures in metres (hexagon bins, KDE, Gi* neighbours, DBSCAN,
space-time cubes, planner demand, the radius search of the incident list), and each one
transformed every point from lon/lat on every request. On the national demo (1M incidents)
that transform was 2.8 s of the 4.1 s a whole-country hexagon page took, single-threaded
above the parallel scan. Stored once as a generated column, it is computed by PostgreSQL on
insert and on every change of ``geom``, so it cannot disagree with it; it costs 32 bytes a row
and a table rewrite here (about 15 s for 1M rows).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE incident ADD COLUMN IF NOT EXISTS geom_m geometry(Point, 3405) "
               "GENERATED ALWAYS AS (ST_Transform(geom, 3405)) STORED")
    op.execute("ANALYZE incident")


def downgrade() -> None:
    op.execute("ALTER TABLE incident DROP COLUMN IF EXISTS geom_m")
