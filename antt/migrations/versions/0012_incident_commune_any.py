"""An index on the commune an incident counts in: ``coalesce(commune_now_id, commune_id)``.

Every unit-scoped incident query (a province or commune account, `province=` on the hexagon
and village-count layers, the KDE scope) filters on that expression (layers/catalogue.py,
api/scope.py, geo/heatmap.py): today's commune by location, else the commune of the date
(geo.placement). No index served it, so a province read all the incidents of the country:
on the national demo (1M incidents) Hà Nội's last six months, 38,000 incidents, took a
parallel seq scan of 620 ms; with this index, 126 index probes and 72 ms
(`antt bench run national` prints the plans). Built in about 2 s for 1M rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS incident_commune_any_idx "
               "ON incident ((coalesce(commune_now_id, commune_id)), occurred_at)")
    op.execute("ANALYZE incident")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS incident_commune_any_idx")
