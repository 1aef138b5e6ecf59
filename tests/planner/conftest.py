"""A hand-checkable planner fixture on the real Hải Phòng 2025 communes.

Four 1 km x 1 km villages (EPSG:3405 squares) in the commune with the largest inscribed circle
(Cát Hải, radius 4.2 km), centres relative to the circle's centre (cx, cy), 2.5 km apart, so a
circle of R = 800 m around a centre holds its whole village (half-diagonal 707 m < the 32-gon's
inradius 796 m) and nothing of another:

    N (0, +2500)   pop  500, hh  100
    W (-2500, 0)   pop 1000, hh  250    M (0, 0)  pop 2000, hh 500    E (+2500, 0)  pop 4000, hh 1000

Models: MW at W's centre, active since 2024-01-01 (to_tu_quan); MS at M's centre, founded
2020-01-01 but suspended since 2025-01-01 (not active on ON).
Incidents in the period (2025-11-01 .. 2026-10-31): 5 thefts in E, 2 traffic accidents in M;
one theft in E in 2024 (outside the period).
Institutions: I1 school 100 m east of E's centre, not "An toàn về ANTT" in 2026; I2 agency 100 m
east of M's centre, certified in 2026.
Launch points: LP1 planned 100 m north of M's centre; LP2 launched at W's centre.

Planner weights 1 x population + 100 x incidents + 1000 x [no active model], incident counts
under 3 counted as 0: W 1000, M 3000, E 5500, N 1500 (total 11,000); with exact counts M 3200.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pgtemplates import build_template
from sqlalchemy import Engine, text

from antt.db import make_engine

ON = dt.date(2026, 10, 31)
HALF = 500.0
OFFSETS = {"W": (-2500.0, 0.0), "M": (0.0, 0.0), "E": (2500.0, 0.0), "N": (0.0, 2500.0)}
FACTS = {"W": (1000, 250), "M": (2000, 500), "E": (4000, 1000), "N": (500, 100)}


@dataclass(frozen=True)
class PlannerSite:
    commune_id: int
    commune_code: str
    cx: float
    cy: float
    villages: dict[str, int]

    def xy(self, key: str, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float]:
        ox, oy = OFFSETS[key]
        return self.cx + ox + dx, self.cy + oy + dy


def point_sql(x: float, y: float) -> str:
    return f"ST_Transform(ST_SetSRID(ST_MakePoint({x}, {y}), 3405), 4326)"


def _build(url: str) -> None:
    eng = make_engine(url)
    with eng.begin() as conn:
        row = conn.execute(text("""
            SELECT id, code, ST_X(c) AS x, ST_Y(c) AS y FROM (
              SELECT id, code, (ST_MaximumInscribedCircle(ST_Transform(geom, 3405))).center AS c,
                     (ST_MaximumInscribedCircle(ST_Transform(geom, 3405))).radius AS r
              FROM admin_unit WHERE level = 'commune' ORDER BY r DESC, code LIMIT 1) t""")).one()
        cid, ccode, cx, cy = row.id, row.code, round(row.x), round(row.y)
        for key, (ox, oy) in OFFSETS.items():
            pop, hh = FACTS[key]
            conn.execute(text("""
                INSERT INTO admin_unit (level, code, name, full_name, name_search, parent_id, province_code,
                                        population, households, valid_from, geom)
                VALUES ('village', :code, :key, :name, lower(:name), :cid, '31', :pop, :hh, '2020-01-01',
                        ST_Multi(ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3405), 4326)))"""),
                         {"code": f"{ccode}.{key}", "key": key, "name": f"Thôn {key}", "cid": cid, "pop": pop,
                          "hh": hh, "x0": cx + ox - HALF, "y0": cy + oy - HALF, "x1": cx + ox + HALF,
                          "y1": cy + oy + HALF})

        def at(key: str, dx: float = 0.0, dy: float = 0.0) -> str:
            ox, oy = OFFSETS[key]
            return point_sql(cx + ox + dx, cy + oy + dy)

        conn.execute(text(f"""INSERT INTO security_model (external_id, type_code, name, founded_on, geom)
            VALUES ('MW', 'to_tu_quan', 'Tổ tự quản W', '2024-01-01', {at('W')})"""))
        conn.execute(text(f"""INSERT INTO security_model
                (external_id, type_code, name, founded_on, status, status_since, geom)
            VALUES ('MS', 'camera_antt', 'Camera M', '2020-01-01', 'suspended', '2025-01-01', {at('M')})"""))
        for k in range(5):
            conn.execute(text(f"""INSERT INTO incident (category_code, occurred_at, geom)
                VALUES ('crime/theft', timestamptz '2026-01-10 10:00+07' + :k * interval '1 day',
                        {at('E', 20.0 * k, 30.0)})"""), {"k": k})
        conn.execute(text(f"""INSERT INTO incident (category_code, occurred_at, geom)
            VALUES ('crime/theft', '2024-05-01 10:00+07', {at('E', -50.0, -50.0)})"""))
        for k in range(2):
            conn.execute(text(f"""INSERT INTO incident (category_code, occurred_at, geom)
                VALUES ('traffic', timestamptz '2026-03-01 10:00+07' + :k * interval '1 day',
                        {at('M', -30.0 * k, -60.0)})"""), {"k": k})
        for ext, kind, key, safe in [("I1", "school", "E", False), ("I2", "agency", "M", True)]:
            iid = conn.execute(text(f"""INSERT INTO institution (external_id, kind, name, geom)
                VALUES (:e, :k, :e, {at(key, 100.0)}) RETURNING id"""), {"e": ext, "k": kind}).scalar_one()
            conn.execute(text("INSERT INTO institution_year (institution_id, year, antt_safe) "
                              "VALUES (:i, 2026, :s)"), {"i": iid, "s": safe})
        conn.execute(text(f"""INSERT INTO launch_point (external_id, name, theme, launch_date, status, geom)
            VALUES ('LP1', 'Điểm M', 'ANTQ', '2026-12-20', 'planned', {at('M', 0.0, 100.0)}),
                   ('LP2', 'Điểm W', 'ANTQ', '2025-08-19', 'launched', {at('W')})"""))
    eng.dispose()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """Accounts are made per test; argon2's production cost would dominate (as in tests/demo)."""
    from argon2 import PasswordHasher

    from antt import accounts

    saved = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    accounts._hasher = saved


@pytest.fixture(scope="session")
def planner_template(pg_admin_url: str, haiphong_template: str) -> str:
    return build_template(pg_admin_url, "tmpl_planner", _build, base=haiphong_template)


@pytest.fixture
def planner_url(clone_db, planner_template: str) -> str:
    return clone_db(planner_template)


@pytest.fixture
def planner_engine(planner_url: str) -> Iterator[Engine]:
    eng = make_engine(planner_url)
    yield eng
    eng.dispose()


def site_of(engine: Engine) -> PlannerSite:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT v.code, v.id, c.id AS cid, c.code AS ccode, "
            "ST_X(ST_Transform(ST_Centroid(v.geom), 3405)) AS x, "
            "ST_Y(ST_Transform(ST_Centroid(v.geom), 3405)) AS y "
            "FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id WHERE v.level = 'village'")).all()
    m = next(r for r in rows if r.code.endswith(".M"))
    return PlannerSite(commune_id=m.cid, commune_code=m.ccode, cx=round(m.x), cy=round(m.y),
                       villages={r.code.rsplit(".", 1)[1]: r.id for r in rows})


@pytest.fixture
def psite(planner_engine: Engine) -> PlannerSite:
    return site_of(planner_engine)
