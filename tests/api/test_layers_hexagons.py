"""The arithmetic hexagon cell the hexagon layer uses (geo.grid.hex_index_sql) is PostGIS's own
ST_HexagonGrid cell, so layer cells, tiles and analytics share one grid."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from geo.grid import STORED_HEX_CELL_M, STORED_HEX_COLUMN, hex_index_sql, hex_key_cell_sql

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


@pytest.mark.parametrize("cell_m", [250, 2000, 7000])
def test_stored_key_is_the_computed_cell(engine, cell_m):
    """antt_hex_key (the generated incident.hex2000, migration 0016) unpacked by
    geo.grid.hex_key_cell_sql is exactly hex_index_sql's cell, corners and edges included."""
    hex_i, hex_j = hex_index_sql("p.x", "p.y")
    key_i, key_j = hex_key_cell_sql("antt_hex_key(p.g, :hex_size)")
    sql = f"""
    WITH pts AS ({POINTS})
    SELECT count(*), count(*) FILTER (WHERE {hex_i} = {key_i} AND {hex_j} = {key_j})
    FROM (SELECT g, ST_X(g) AS x, ST_Y(g) AS y FROM pts) p"""
    with engine.connect() as conn:
        total, same = conn.execute(text(sql), {"cell_m": cell_m, "hex_size": float(cell_m)}).one()
    assert total == 3060
    assert same == total


def test_incidents_store_their_2km_cell_and_follow_a_move(engine):
    """incident.hex2000 is the 2 km cell of the incident's point, on insert and after a move."""
    hex_i, hex_j = hex_index_sql("ST_X(geom_m)", "ST_Y(geom_m)")
    key_i, key_j = hex_key_cell_sql(STORED_HEX_COLUMN)
    check = text(f"SELECT count(*), count(*) FILTER (WHERE {hex_i} = {key_i} AND {hex_j} = {key_j}) "
                 "FROM incident")
    params = {"hex_size": float(STORED_HEX_CELL_M)}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO incident (category_code, occurred_at, geom) "
                          "SELECT 'crime/theft', now(), ST_Transform(g, 4326) FROM (" + POINTS + ") p "
                          "WHERE id < 100000"),  # the random ones: corners far away are not in Vietnam
                     {"cell_m": STORED_HEX_CELL_M})
        assert conn.execute(check, params).one() == (3000, 3000)
        conn.execute(text("UPDATE incident SET geom = ST_Translate(geom, 0.013, -0.021)"))
        assert conn.execute(check, params).one() == (3000, 3000)
        moved = conn.execute(text("SELECT count(DISTINCT hex2000) FROM incident")).scalar_one()
        assert moved > 100  # the points spread over many cells


SPREAD_2KM = """
INSERT INTO incident (category_code, occurred_at, geom)
SELECT (ARRAY['crime/theft', 'crime/fraud/online', 'traffic'])[1 + n % 3],
       timestamptz '2025-06-01 10:00+07' + n * interval '3 hours',
       ST_SetSRID(ST_MakePoint(106.4 + random() * 0.8, 20.65 + random() * 0.5), 4326)
FROM generate_series(1, 1500) n;
INSERT INTO incident (category_code, occurred_at, geom)  -- 2 km cell vertices over the city
SELECT 'crime/theft', timestamptz '2025-08-01 10:00+07',
       ST_Transform(ST_PointN(ST_ExteriorRing(ST_Hexagon(2000, i, j, ST_SetSRID(ST_MakePoint(0, 0), 3405))),
                              1 + (i + j) % 6), 4326)
FROM generate_series(190, 215) i, generate_series(598, 615) j
"""


def test_the_2km_layer_from_stored_cells_equals_the_computed_one(layer_client, monkeypatch):
    """The hexagon layer at the stored size groups by incident.hex2000; every answer (roles,
    scope, time, category, box) equals the one binned by hex_index_sql from geom_m."""
    from antt.db import get_engine
    from api.deps import Principal
    from api.features import build_query, resolve
    from layers import sql as layer_sql

    with get_engine().begin() as conn:
        for statement in SPREAD_2KM.split(";\n"):
            conn.execute(text(statement))
    police, viewer = Principal("p", "police"), Principal("v", "viewer")
    province = Principal("pv", "viewer", "province", "31")
    asks = [(police, {}), (viewer, {"datetime": "2025-07-01/2025-09-30"}),
            (province, {"category": "crime"}), (viewer, {"bbox": "106.5,20.7,106.8,20.9"})]

    def cells(q) -> list[tuple]:
        source, params = layer_sql.hexagon_source(q)
        with get_engine().connect() as conn:
            return conn.execute(text(f"SELECT fid, count, suppressed, ST_AsText(geom) FROM {source} t "
                                     "ORDER BY fid"), params).all()

    for principal, params in asks:
        q = build_query(resolve("incident_hexagons", principal), principal, params | {"cell": "2000"})
        assert q.cell_m == STORED_HEX_CELL_M
        stored = cells(q)
        with monkeypatch.context() as m:
            m.setattr(layer_sql, "STORED_HEX_CELL_M", -1)  # the computed path
            computed = cells(q)
        assert len(stored) > 40, (principal, params)
        assert stored == computed, (principal, params)
