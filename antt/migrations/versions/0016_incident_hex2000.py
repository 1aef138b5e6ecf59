"""Each incident's 2 km hexagon, stored: ``incident.hex2000``.

The web map asks for 2,000 m hexagons at every zoom up to 10, the whole country included. On
the national demo (1M incidents) binning the points took 1.6 s of a whole-country page's 2 s
in the database: about 20 float operations a point, evaluated in SQL with no shared
sub-expression. Stored once as a generated column, the cell is computed by PostgreSQL on
insert and on every change of ``geom`` (it cannot disagree with it), and the layer groups by
one integer.

``antt_hex_key(point in EPSG:3405, size)`` is the cell of geo.grid.hex_index_sql (PostGIS's
ST_HexagonGrid layout: the nearer centre of two rectangular lattices) packed in one bigint:
``i * 2^21 + j`` (|j| < 2^20: Vietnam's 2 km cells fit in 31 bits, so PostgreSQL's int8 hash
mixes them well; a 2^32 multiplier folded i onto j and made grouping ten times slower).
geo.grid.hex_key_cell_sql unpacks it; tests/api/test_layers_hexagons.py checks the stored cells
against hex_index_sql (itself checked against ST_HexagonGrid), corners and edges included.
8 bytes a row and a table rewrite here (about 30 s for 1M rows); every insert or move of an
incident computes it, about 9 us a row (9 s per million incidents imported or generated).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

HEX_KEY = """
CREATE OR REPLACE FUNCTION antt_hex_key(g geometry, size float8) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE WHEN (x - 3 * size * a_i) ^ 2 + (y - h * a_j) ^ 2
                  <= (x - 3 * size * b_i - 1.5 * size) ^ 2 + (y - h * b_j - h / 2) ^ 2
                THEN (2 * a_i::bigint) * 2097152 + a_j::bigint
                ELSE (2 * b_i::bigint + 1) * 2097152 + b_j::bigint END
    FROM (SELECT x, y, h, round(x / (3 * size)) AS a_i, round(y / h) AS a_j,
                 round((x - 1.5 * size) / (3 * size)) AS b_i, round((y - h / 2) / h) AS b_j
          FROM (SELECT ST_X(g) AS x, ST_Y(g) AS y, size * 1.7320508075688772::float8 AS h) p) c
$$;
"""


def upgrade() -> None:
    op.execute(HEX_KEY)
    op.execute("ALTER TABLE incident ADD COLUMN IF NOT EXISTS hex2000 bigint "
               "GENERATED ALWAYS AS (antt_hex_key(ST_Transform(geom, 3405), 2000)) STORED")
    op.execute("ANALYZE incident")


def downgrade() -> None:
    op.execute("ALTER TABLE incident DROP COLUMN IF EXISTS hex2000")
    op.execute("DROP FUNCTION IF EXISTS antt_hex_key(geometry, float8)")
