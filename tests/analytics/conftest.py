"""A hand-checkable analytics fixture on top of the real Hải Phòng 2025 communes.

Four 1 km x 1 km square villages (built in EPSG:3405) sit around the centre of the Hải Phòng
commune with the largest inscribed circle:

    V1 (-1000..0, 0..1000)  pop 1000, 250 households     V2 (0..1000, 0..1000)  pop 2000, 500 hh
    V3 (-1000..0, -1000..0) pop 500, 100 households      V4 (0..1000, -1000..0) no population

Models (points at village centres; triggers assign village and commune):
    M1 V1 to_tu_quan   founded 2024-01-01; kha 2025-03-01, yeu 2026-09-01
    M4 V1 dong_ho      founded 2021-01-01; tot 2022-01-01 (same point as M1)
    M2 V2 camera_antt  founded 2025-01-01; trung_binh 2025-05-01; suspended since 2026-09-01
    M3 V3 to_tu_quan   founded 2026-03-01; never rated
Fire groups in V1: 100 households (2025-01-01), 50 households (2026-08-01).
Institutions in V2 for 2026: I1 safe + festival, I2 not safe. unit_year: V1 2026 festival held.
Incidents: V3 three in 2025-07-01..2026-06-30 (one youth, crime/theft) + one on 2025-01-15;
V4 one (fire) on 2026-02-01.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pgtemplates import build_template  # tests/pgtemplates.py (tests/ is on sys.path)
from sqlalchemy import Engine, text

from antt.db import make_engine

HALF = 500.0  # half a village side, metres


@dataclass(frozen=True)
class Site:
    commune_id: int
    commune_code: str
    cx: float  # commune centre in EPSG:3405
    cy: float
    villages: dict[str, int]


VILLAGE_OFFSETS = {"V1": (-1, 1), "V2": (1, 1), "V3": (-1, -1), "V4": (1, -1)}  # centre at +-500 m
VILLAGE_FACTS = {"V1": (1000, 250), "V2": (2000, 500), "V3": (500, 100), "V4": (None, None)}


def centre_sql(cx: float, cy: float, vk: str) -> str:
    dx, dy = VILLAGE_OFFSETS[vk]
    return f"ST_Transform(ST_SetSRID(ST_MakePoint({cx + dx * HALF}, {cy + dy * HALF}), 3405), 4326)"


def _build(url: str) -> None:
    eng = make_engine(url)
    with eng.begin() as conn:
        row = conn.execute(text("""
            SELECT id, code, ST_X(c) AS x, ST_Y(c) AS y FROM (
              SELECT id, code, (ST_MaximumInscribedCircle(ST_Transform(geom, 3405))).center AS c,
                     (ST_MaximumInscribedCircle(ST_Transform(geom, 3405))).radius AS r
              FROM admin_unit WHERE level = 'commune' ORDER BY r DESC, code LIMIT 1) t""")).one()
        cid, ccode, cx, cy = row.id, row.code, round(row.x), round(row.y)
        for vk, (dx, dy) in VILLAGE_OFFSETS.items():
            pop, hh = VILLAGE_FACTS[vk]
            x0, y0 = cx + (dx - 1) * HALF, cy + (dy - 1) * HALF
            conn.execute(text("""
                INSERT INTO admin_unit (level, code, name, name_search, parent_id, province_code,
                                        population, households, valid_from, geom)
                VALUES ('village', :code, :name, lower(:name), :cid, '31', :pop, :hh, '2020-01-01',
                        ST_Multi(ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3405), 4326)))"""),
                {"code": f"{ccode}{vk}", "name": f"Thôn {vk}", "cid": cid, "pop": pop, "hh": hh,
                 "x0": x0, "y0": y0, "x1": x0 + 2 * HALF, "y1": y0 + 2 * HALF})

        def model(ext: str, vk: str, type_code: str, founded: str, status: str = "active",
                  since: str | None = None) -> None:
            conn.execute(text(f"""
                INSERT INTO security_model
                    (external_id, type_code, name, founded_on, status, status_since, geom)
                VALUES (:e, :t, :e, :f, :s, :since, {centre_sql(cx, cy, vk)})"""),
                {"e": ext, "t": type_code, "f": founded, "s": status, "since": since})

        model("M1", "V1", "to_tu_quan", "2024-01-01")
        model("M4", "V1", "dong_ho_tu_quan", "2021-01-01")
        model("M2", "V2", "camera_antt", "2025-01-01", "suspended", "2026-09-01")
        model("M3", "V3", "to_tu_quan", "2026-03-01")
        for ext, rating, on in [("M1", "kha", "2025-03-01"), ("M1", "yeu", "2026-09-01"),
                                ("M4", "tot", "2022-01-01"), ("M2", "trung_binh", "2025-05-01")]:
            conn.execute(text("""INSERT INTO model_rating (model_id, rating, rated_on)
                SELECT id, :r, :d FROM security_model WHERE external_id = :e"""),
                {"e": ext, "r": rating, "d": on})
        for ext, hh, founded in [("F1", 100, "2025-01-01"), ("F2", 50, "2026-08-01")]:
            conn.execute(text(f"""INSERT INTO fire_group (external_id, name, households, founded_on, geom)
                VALUES (:e, :e, :hh, :f, {centre_sql(cx, cy, 'V1')})"""), {"e": ext, "hh": hh, "f": founded})
        for ext, safe, fest in [("I1", True, True), ("I2", False, False)]:
            iid = conn.execute(text(f"""INSERT INTO institution (external_id, kind, name, geom)
                VALUES (:e, 'school', :e, {centre_sql(cx, cy, 'V2')}) RETURNING id"""),
                {"e": ext}).scalar_one()
            conn.execute(text("INSERT INTO institution_year VALUES (:i, 2026, :s, :f)"),
                         {"i": iid, "s": safe, "f": fest})
        conn.execute(text("""INSERT INTO unit_year (unit_id, year, festival_held)
            SELECT id, 2026, true FROM admin_unit WHERE code = :c"""), {"c": f"{ccode}V1"})
        for ext, vk, cat, at, youth in [
            ("E1", "V3", "crime/theft", "2025-08-01 10:00+07", True),
            ("E2", "V3", "crime/theft", "2025-12-01 10:00+07", False),
            ("E3", "V3", "traffic", "2026-06-30 23:00+07", False),
            ("E4", "V3", "crime/theft", "2025-01-15 10:00+07", False),
            ("E5", "V4", "fire/fire", "2026-02-01 10:00+07", False),
        ]:
            conn.execute(text(f"""INSERT INTO incident
                    (external_id, category_code, occurred_at, youth_involved, geom)
                VALUES (:e, :c, :t, :y, {centre_sql(cx, cy, vk)})"""),
                {"e": ext, "c": cat, "t": at, "y": youth})
    eng.dispose()


@pytest.fixture(scope="session")
def analytics_template(pg_admin_url: str, haiphong_template: str) -> str:
    return build_template(pg_admin_url, "tmpl_analytics", _build, base=haiphong_template)


@pytest.fixture
def site_engine(clone_db, analytics_template: str) -> Iterator[Engine]:
    eng = make_engine(clone_db(analytics_template))
    yield eng
    eng.dispose()


@pytest.fixture
def site(site_engine: Engine) -> Site:
    with site_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT v.code, v.id, c.id AS cid, c.code AS ccode "
            "FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id WHERE v.level = 'village'")).all()
        cen = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_Centroid(ST_Collect(geom)), 3405) p "
            "FROM admin_unit WHERE level = 'village') t")).one()
    ccode = rows[0].ccode
    return Site(commune_id=rows[0].cid, commune_code=ccode, cx=round(cen[0]), cy=round(cen[1]),
                villages={r.code.removeprefix(ccode): r.id for r in rows})
