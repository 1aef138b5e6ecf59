"""The arithmetic hexagon cell (layers.sql.HEX_CELL_OF_POINT) is PostGIS's own grid cell."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import text

from layers.sql import HEX_CELL_OF_POINT

# 3,000 points over Hải Phòng in EPSG:3405, plus points exactly on cell corners and edges.
POINTS = """
SELECT n AS id, ST_Transform(ST_SetSRID(ST_MakePoint(106.3 + random() * 0.9, 20.5 + random() * 0.7), 4326),
                             3405) AS g
FROM generate_series(1, 3000) n
UNION ALL
SELECT 100000 + k, ST_PointN(ST_ExteriorRing(ST_Hexagon(:cell_m, 600 + k, 1500 + k,
                                                        ST_SetSRID(ST_MakePoint(0, 0), 3405))), 1 + k % 6)
FROM generate_series(0, 59) k
"""


@pytest.mark.parametrize("cell_m", [250, 500, 2000])
def test_same_cells_as_st_hexagongrid(engine, cell_m):
    sql = f"""
    WITH pts AS ({POINTS}),
    ref AS (SELECT DISTINCT ON (p.id) p.id, h.i, h.j FROM pts p
            CROSS JOIN LATERAL ST_HexagonGrid(:cell_m, p.g) h
            WHERE ST_Intersects(h.geom, p.g) ORDER BY p.id, h.i, h.j),
    mine AS (SELECT pts.id, c.i, c.j FROM pts
             CROSS JOIN LATERAL (SELECT ST_X(pts.g) AS x, ST_Y(pts.g) AS y) p
             CROSS JOIN LATERAL ({HEX_CELL_OF_POINT}) c)
    SELECT count(*), count(*) FILTER (WHERE r.i = m.i AND r.j = m.j),
           count(*) FILTER (WHERE ST_Intersects(ST_Hexagon(:cell_m, m.i, m.j,
                            ST_SetSRID(ST_MakePoint(0, 0), 3405)), pts.g))
    FROM ref r JOIN mine m USING (id) JOIN pts USING (id)"""
    params = {"cell_m": cell_m, "hex_w": 1.5 * cell_m, "hex_h": cell_m * math.sqrt(3)}
    with engine.connect() as conn:
        total, same, inside = conn.execute(text(sql), params).one()
    assert total == 3060
    assert inside == total  # every point lies in (or on the edge of) the cell it was given
    # Interior points agree exactly; on a shared edge or corner both answers hold the point, and
    # either way each point is counted in exactly one cell.
    assert same >= 3000
