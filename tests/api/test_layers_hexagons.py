"""The arithmetic hexagon cell the hexagon layer uses (geo.grid.hex_index_sql) is PostGIS's own
ST_HexagonGrid cell, so layer cells, tiles and analytics share one grid."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geo.grid import hex_index_sql

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
    hex_i, hex_j = hex_index_sql("p.x", "p.y")
    sql = f"""
    WITH pts AS ({POINTS}),
    ref AS (SELECT DISTINCT ON (p.id) p.id, h.i, h.j FROM pts p
            CROSS JOIN LATERAL ST_HexagonGrid(:cell_m, p.g) h
            WHERE ST_Intersects(h.geom, p.g) ORDER BY p.id, h.i, h.j),
    mine AS (SELECT p.id, {hex_i} AS i, {hex_j} AS j
             FROM (SELECT id, ST_X(g) AS x, ST_Y(g) AS y FROM pts) p)
    SELECT count(*), count(*) FILTER (WHERE r.i = m.i AND r.j = m.j),
           count(*) FILTER (WHERE ST_Intersects(ST_Hexagon(:cell_m, m.i, m.j,
                            ST_SetSRID(ST_MakePoint(0, 0), 3405)), pts.g))
    FROM ref r JOIN mine m USING (id) JOIN pts USING (id)"""
    params = {"cell_m": cell_m, "hex_size": float(cell_m)}
    with engine.connect() as conn:
        total, same, inside = conn.execute(text(sql), params).one()
    assert total == 3060
    assert inside == total  # every point lies in (or on the edge of) the cell it was given
    # Interior points agree exactly; on a shared edge or corner both answers hold the point, and
    # either way each point is counted in exactly one cell.
    assert same >= 3000
