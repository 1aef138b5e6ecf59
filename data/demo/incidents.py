"""Three years of demo incidents with real structure, generated vectorised and loaded by COPY.

Structure (so analyses have something true to find):
- where: around village centres (weighted by population), tight clusters around one market per
  commune, along roads between markets and villages, and three PLANTED hotspots that burn much
  hotter in the last 12 months (two of them youth-heavy);
- when: a Tết (lunar new year) peak, busier weekends, category-specific hours of the day.
Offsets are drawn in metres (EPSG:3405) and projected back. Commune and village are assigned in
one set-based join on the subdivided unit parts, with unit_at's tie-break; a point that falls
outside every demo commune (the sea, a neighbour province) is put back on its anchor village's
centre, and how many were is recorded in the manifest.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.spatial import cKDTree
from sqlalchemy import Connection

from antt.crs import METRIC_SRID, pinned
from data.demo.plan import Plan
from data.demo.sql import copy_frame, execute, read_frame

TET = [dt.date(*d) for d in ((2019, 2, 5), (2020, 1, 25), (2021, 2, 12), (2022, 2, 1), (2023, 1, 22),
                             (2024, 2, 10), (2025, 1, 29), (2026, 2, 17), (2027, 2, 6), (2028, 1, 26),
                             (2029, 2, 13), (2030, 2, 3))]
WEEKDAY_FACTOR = np.array([0.95, 0.93, 0.95, 0.97, 1.07, 1.22, 1.15])  # Monday .. Sunday
HOTSPOT_SHARE = 0.025  # of all incidents, per hotspot, all in the last 12 months

# Category mixes per generating process (leaf codes of the 0002 taxonomy).
MIX = {
    "village": {"crime/theft": .22, "crime/injury": .07, "crime/disorder": .07, "crime/fraud/online": .12,
                "crime/fraud": .03, "crime/drugs": .07, "crime/gambling": .06, "crime/weapons": .02,
                "crime/robbery": .03, "crime/murder": .005, "violation": .12, "fire/fire": .05,
                "fire/explosion": .005, "traffic": .12},
    "market": {"crime/theft": .45, "crime/robbery": .15, "crime/fraud": .08, "crime/disorder": .10,
               "violation": .12, "fire/fire": .05, "traffic": .05},
    "road": {"traffic": .72, "crime/robbery": .10, "crime/theft": .05, "crime/disorder": .04,
             "violation": .09},
    "hotspot_youth": {"crime/disorder": .40, "crime/injury": .22, "crime/drugs": .12, "crime/theft": .10,
                      "crime/robbery": .10, "crime/weapons": .06},
    "hotspot_market": {"crime/theft": .55, "crime/robbery": .20, "crime/fraud": .10, "crime/disorder": .15},
}
YOUTH_P = {"crime/disorder": .55, "crime/injury": .35, "crime/weapons": .40, "crime/robbery": .30,
           "crime/drugs": .25, "crime/theft": .15, "traffic": .10}


def _hours(peaks: list[tuple[float, float, float]], base: float = 0.15) -> np.ndarray:
    h = np.arange(24)
    w = np.full(24, base)
    for centre, width, height in peaks:
        d = np.minimum(np.abs(h - centre), 24 - np.abs(h - centre))
        w += height * np.exp(-0.5 * (d / width) ** 2)
    return w / w.sum()


HOURS = {
    "crime/theft": _hours([(2, 2, 1), (12, 2, .6)]), "crime/robbery": _hours([(21, 2.5, 1)]),
    "crime/disorder": _hours([(22, 2, 1)]), "crime/injury": _hours([(21, 2.5, 1)]),
    "traffic": _hours([(7, 1.2, 1), (18, 1.5, 1.2)]), "fire/fire": _hours([(12, 3, .6), (19, 2, 1)]),
}
DEFAULT_HOURS = _hours([(14, 4, 1)])


@dataclass
class IncidentReport:
    total: int
    by_process: dict[str, int]
    snapped_to_anchor: int
    start: dt.date
    until: dt.date


def window(until: dt.date, years: int) -> tuple[dt.date, int]:
    """The first day and length (days) of the YEARS-long window ending on UNTIL."""
    try:
        start = until.replace(year=until.year - years) + dt.timedelta(days=1)
    except ValueError:  # 29 February
        start = until.replace(year=until.year - years, day=28) + dt.timedelta(days=1)
    return start, (until - start).days + 1


def day_weights(start: dt.date, n_days: int) -> np.ndarray:
    days = np.array([start + dt.timedelta(days=i) for i in range(n_days)])
    w = WEEKDAY_FACTOR[[d.weekday() for d in days]].astype(float)
    ordinal = np.array([d.toordinal() for d in days])
    for tet in TET:
        w += 0.9 * np.exp(-0.5 * ((ordinal - tet.toordinal()) / 6.0) ** 2)
    return w / w.sum()


def _draw_categories(rng, mix: dict[str, float], n: int) -> np.ndarray:
    cats = np.array(list(mix))
    p = np.array(list(mix.values()))
    return cats[rng.choice(len(cats), size=n, p=p / p.sum())]


def generate_frame(villages: pd.DataFrame, plan: Plan, n: int, seed: int, until: dt.date,
                   years: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """N incidents as a frame (lon, lat, anchor, time, category, ...); no database needed."""
    rng = np.random.default_rng([seed, 9])
    to_m = Transformer.from_crs(4326, pinned(METRIC_SRID), always_xy=True)
    to_ll = Transformer.from_crs(pinned(METRIC_SRID), 4326, always_xy=True)
    vx, vy = to_m.transform(villages["lon"].to_numpy(), villages["lat"].to_numpy())
    vid = villages["id"].to_numpy()
    radius = np.sqrt(villages["area_m2"].to_numpy() / np.pi)
    pop = villages["population"].to_numpy(float)

    # Markets: beside the most populous village of each commune.
    top = villages.assign(i=np.arange(len(villages)))
    top = top.sort_values(["population", "code"], ascending=[False, True])
    top = top.drop_duplicates("commune_id").sort_values("code")
    mi = top["i"].to_numpy()
    ang = rng.uniform(0, 2 * np.pi, len(mi))
    mx, my = vx[mi] + 100 * np.cos(ang), vy[mi] + 100 * np.sin(ang)
    market_weight = top["commune_id"].map(villages.groupby("commune_id")["population"].sum()).to_numpy(float)

    # Roads: market to the nearest other market, and market to two villages of its commune.
    seg_a, seg_b = [], []
    if len(mi) > 1:
        _, nn = cKDTree(np.column_stack([mx, my])).query(np.column_stack([mx, my]), k=2)
        seg_a += list(mi)
        seg_b += list(mi[nn[:, 1]])
    by_commune = villages.assign(i=np.arange(len(villages))).groupby("commune_id")["i"].apply(np.array)
    for m, cid in zip(mi, top["commune_id"], strict=True):
        others = by_commune[cid][by_commune[cid] != m]
        for o in rng.permutation(others)[:2]:
            seg_a.append(m)
            seg_b.append(o)
    seg_a, seg_b = np.array(seg_a, dtype=int), np.array(seg_b, dtype=int)

    hot_n = max(20, round(HOTSPOT_SHARE * n)) if plan.hotspots else 0
    rest = n - hot_n * len(plan.hotspots)
    if rest < 0:
        raise ValueError(f"Quá ít sự vụ / too few incidents ({n}) for {len(plan.hotspots)} hotspots")
    share = {"village": 0.40, "market": 0.35, "road": 0.25} if len(seg_a) else {"village": 0.6, "market": 0.4}
    counts = dict(zip(share, rng.multinomial(rest, list(share.values())), strict=True))

    parts = []
    # 1. Around village centres, weighted by population.
    k = counts["village"]
    pick = rng.choice(len(vid), size=k, p=pop / pop.sum())
    sigma = np.clip(0.35 * radius[pick], 80, 900)
    parts.append(dict(process="village", x=vx[pick] + rng.normal(0, 1, k) * sigma,
                      y=vy[pick] + rng.normal(0, 1, k) * sigma, anchor=pick,
                      cat=_draw_categories(rng, MIX["village"], k)))
    # 2. Markets.
    k = counts["market"]
    pick = rng.choice(len(mi), size=k, p=market_weight / market_weight.sum())
    parts.append(dict(process="market", x=mx[pick] + rng.normal(0, 120, k),
                      y=my[pick] + rng.normal(0, 120, k),
                      anchor=mi[pick], cat=_draw_categories(rng, MIX["market"], k)))
    # 3. Roads.
    if "road" in counts:
        k = counts["road"]
        s = rng.integers(0, len(seg_a), k)
        t = rng.random(k)
        ax, ay, bx, by = vx[seg_a[s]], vy[seg_a[s]], vx[seg_b[s]], vy[seg_b[s]]
        length = np.hypot(bx - ax, by - ay) + 1e-9
        off = rng.normal(0, 25, k)
        parts.append(dict(process="road", x=ax + t * (bx - ax) - off * (by - ay) / length,
                          y=ay + t * (by - ay) + off * (bx - ax) / length,
                          anchor=np.where(t < 0.5, seg_a[s], seg_b[s]),
                          cat=_draw_categories(rng, MIX["road"], k)))
    # 4. Planted hotspots: last 12 months only.
    index_of = {v: i for i, v in enumerate(vid)}
    for h in plan.hotspots:
        i = index_of[h.village_id]
        mix = MIX["hotspot_youth" if h.youth_heavy else "hotspot_market"]
        parts.append(dict(process="hotspot", x=vx[i] + rng.normal(0, 150, hot_n),
                          y=vy[i] + rng.normal(0, 150, hot_n),
                          anchor=np.full(hot_n, i),
                          cat=_draw_categories(rng, mix, hot_n),
                          youth_heavy=h.youth_heavy))

    start, n_days = window(until, years)
    weights = day_weights(start, n_days)
    last_year = max(0, n_days - 365)
    frames = []
    for p in parts:
        k = len(p["x"])
        if p["process"] == "hotspot":
            w = weights[last_year:] / weights[last_year:].sum()
            day = last_year + rng.choice(n_days - last_year, size=k, p=w)
        else:
            day = rng.choice(n_days, size=k, p=weights)
        youth_p = pd.Series(p["cat"]).map(YOUTH_P).fillna(0.05).to_numpy()
        if p.get("youth_heavy"):
            youth_p = np.full(k, 0.8)
        frames.append(pd.DataFrame({"process": p["process"], "x": p["x"], "y": p["y"], "anchor": p["anchor"],
                                    "category_code": p["cat"], "day": day,
                                    "youth_involved": rng.random(k) < youth_p}))
    f = pd.concat(frames, ignore_index=True)
    # Hour of day by category.
    hour = np.empty(len(f), dtype=int)
    for cat, idx in f.groupby("category_code").indices.items():
        hour[idx] = rng.choice(24, size=len(idx), p=HOURS.get(cat, DEFAULT_HOURS))
    seconds = hour * 3600 + rng.integers(0, 3600, len(f))
    epoch0 = (dt.datetime.combine(start, dt.time()) - dt.datetime(1970, 1, 1)).total_seconds() - 7 * 3600
    f["t"] = epoch0 + f["day"].to_numpy() * 86400.0 + seconds  # Asia/Ho_Chi_Minh is UTC+7
    f["lon"], f["lat"] = to_ll.transform(f["x"].to_numpy(), f["y"].to_numpy())
    f["anchor_village"] = vid[f["anchor"].to_numpy()]
    f["anchor_lon"] = villages["lon"].to_numpy()[f["anchor"].to_numpy()]
    f["anchor_lat"] = villages["lat"].to_numpy()[f["anchor"].to_numpy()]
    cat = f["category_code"].to_numpy()
    n_all = len(f)
    deaths = np.zeros(n_all, dtype=int)
    deaths[cat == "crime/murder"] = 1
    deaths[cat == "traffic"] = (rng.random((cat == "traffic").sum()) < 0.06).astype(int)
    deaths[cat == "fire/explosion"] = (rng.random((cat == "fire/explosion").sum()) < 0.1).astype(int)
    injury_mean = pd.Series(cat).map({"traffic": 0.9, "crime/injury": 1.3, "crime/robbery": 0.25,
                                      "crime/disorder": 0.3, "fire/explosion": 0.8}).fillna(0).to_numpy()
    f["deaths"] = deaths
    f["injuries"] = rng.poisson(injury_mean)
    age = (n_days - 1 - f["day"].to_numpy())
    u = rng.random(n_all)
    solved_p = np.minimum(0.85, 0.15 + age / 365 * 0.6)
    f["status"] = np.where(age < 20, np.where(u < 0.5, "reported", "investigating"),
                           np.where(u < solved_p * 0.6, "closed",
                                    np.where(u < solved_p, "solved", "investigating")))
    f["precision"] = np.array(["exact", "street", "village"])[rng.choice(3, size=n_all, p=[0.9, 0.06, 0.04])]
    # A stable, time-ordered numbering, so external ids read naturally.
    f = f.sort_values(["t", "lon"], kind="stable").reset_index(drop=True)
    f["n"] = np.arange(1, n_all + 1)
    by_process = {k: int(v) for k, v in f["process"].value_counts().sort_index().items()}
    return f, by_process


@contextmanager
def _timed(timings: dict | None, step: int):
    """Seconds per SQL step of insert_incidents (for the benchmark)."""
    t = time.perf_counter()
    yield
    if timings is not None:
        timings[step] = round(time.perf_counter() - t, 2)


STAGE_COLUMNS = ["n", "category_code", "t", "lon7", "lat7", "anchor_village", "anchor_lon7", "anchor_lat7",
                 "youth_involved", "deaths", "injuries", "status", "precision"]


def _stage_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Integers (seconds, 1e-7 degrees ≈ 1 cm) format for COPY many times faster than floats."""
    out = frame.assign(t=frame["t"].round().astype("int64"))
    for col in ("lon", "lat", "anchor_lon", "anchor_lat"):
        out[col + "7"] = (frame[col] * 1e7).round().astype("int64")
    return out[STAGE_COLUMNS]


def insert_incidents(conn: Connection, frame: pd.DataFrame, commune_ids: list[int], on_date: dt.date,
                     id_prefix: str = "demo-inc-", timings: dict | None = None) -> int:
    """COPY into a staging table, assign units set-based, insert into incident; snapped count back.

    Why this shape: points are ordered by geohash so consecutive point-in-polygon tests hit the
    same subdivided part (PostGIS then reuses its prepared geometry); the village is found by
    ST_Intersects alone, and unit_at itself breaks the rare ties (points on a shared edge), so
    the result is exactly unit_at's; the commune is the village's parent (villages tile it).
    """
    with _timed(timings, "copy"):
        execute(conn, """CREATE TEMP TABLE incident_stage (n integer PRIMARY KEY, category_code text,
            t bigint, lon7 bigint, lat7 bigint, anchor_village integer, anchor_lon7 bigint,
            anchor_lat7 bigint, youth_involved boolean, deaths integer, injuries integer, status text,
            precision text) ON COMMIT DROP""")
        copy_frame(conn, "incident_stage", _stage_frame(frame))
    with _timed(timings, "points"):
        execute(conn, """
            CREATE TEMP TABLE incident_pt ON COMMIT DROP AS
            SELECT n, g FROM (SELECT n, ST_SetSRID(ST_MakePoint(lon7 / 1e7, lat7 / 1e7), 4326) AS g
                              FROM incident_stage) s
            ORDER BY ST_GeoHash(g, 9)""")
        execute(conn, "ANALYZE incident_pt")
    with _timed(timings, "intersects"):
        execute(conn, """
            CREATE TEMP TABLE incident_hit ON COMMIT DROP AS
            SELECT DISTINCT p.n, u.id
            FROM incident_pt p
            JOIN admin_unit_part pt ON ST_Intersects(pt.geom, p.g)
            JOIN admin_unit u ON u.id = pt.unit_id
            WHERE u.level = 'village'
              AND u.valid_from <= %(d)s AND (u.valid_to IS NULL OR %(d)s < u.valid_to)""", {"d": on_date})
    with _timed(timings, "ties"):
        execute(conn, """
            CREATE TEMP TABLE incident_village ON COMMIT DROP AS
            SELECT n, min(id) AS id FROM incident_hit GROUP BY n HAVING count(*) = 1
            UNION ALL
            SELECT p.n, unit_at(p.g, 'village', %(d)s)
            FROM incident_pt p WHERE p.n IN (SELECT n FROM incident_hit GROUP BY n HAVING count(*) > 1)
            """, {"d": on_date})
        execute(conn, "CREATE UNIQUE INDEX ON incident_village (n)")
        execute(conn, "ANALYZE incident_village")
    with _timed(timings, "place"):
        execute(conn, """
            CREATE TEMP TABLE incident_placed ON COMMIT DROP AS
            SELECT s.*, v.id AS village_id, v.parent_id AS commune_id,
                   v.id IS NULL OR v.parent_id IS NULL OR NOT (v.parent_id = ANY(%(communes)s)) AS snapped
            FROM incident_stage s
            LEFT JOIN incident_village iv ON iv.n = s.n
            LEFT JOIN admin_unit v ON v.id = iv.id
            """, {"communes": commune_ids})
        snapped = read_frame(conn, "SELECT count(*) AS k FROM incident_placed WHERE snapped").iloc[0, 0]
    with _timed(timings, "insert"):
        execute(conn, """
            INSERT INTO incident (external_id, category_code, occurred_at, precision, deaths, injuries,
                                  youth_involved, status, source, description, commune_id, village_id,
                                  commune_now_id, village_now_id, is_demo, geom)
            SELECT %(prefix)s || lpad(p.n::text, 7, '0'), p.category_code, to_timestamp(p.t), p.precision,
                   p.deaths, p.injuries, p.youth_involved, p.status, 'antt demo',
                   'Dữ liệu mẫu / demo: ' || c.name_vi,
                   CASE WHEN p.snapped THEN a.parent_id ELSE p.commune_id END,
                   CASE WHEN p.snapped THEN p.anchor_village ELSE p.village_id END,
                   -- today's units (migration 0006) are these when they are open-ended (the
                   -- demo's map is the current one); else the trigger looks them up
                   CASE WHEN a.valid_to IS NULL THEN
                        CASE WHEN p.snapped THEN a.parent_id ELSE p.commune_id END END,
                   CASE WHEN a.valid_to IS NULL THEN
                        CASE WHEN p.snapped THEN p.anchor_village ELSE p.village_id END END,
                   true,
                   ST_SetSRID(CASE WHEN p.snapped THEN ST_MakePoint(p.anchor_lon7 / 1e7, p.anchor_lat7 / 1e7)
                                   ELSE ST_MakePoint(p.lon7 / 1e7, p.lat7 / 1e7) END, 4326)
            FROM incident_placed p
            JOIN incident_category c ON c.code = p.category_code
            JOIN admin_unit a ON a.id = p.anchor_village
            ORDER BY p.n
            """, {"prefix": id_prefix})
    with _timed(timings, "era"):
        place_in_older_eras(conn, id_prefix)
    for table in ("incident_placed", "incident_village", "incident_hit", "incident_pt", "incident_stage"):
        execute(conn, f"DROP TABLE {table}")
    return int(snapped)


def place_in_older_eras(conn: Connection, id_prefix: str) -> None:
    """Demo incidents dated before a unit change get the units valid on their date.

    The set-based placement above uses the demo's (2025) villages; where older units are loaded
    too (the pre-2025 communes), an incident of 2024 belongs to the pre-2025 commune of its
    place and to no village (villages exist only on the 2025 map), as ``unit_at`` says. Only
    the incidents older than the newest unit change are looked at, one by one."""
    execute(conn, """
        WITH era AS (SELECT max(valid_to) AS ended FROM admin_unit
                     WHERE level = 'commune' AND valid_to IS NOT NULL)
        UPDATE incident i
        SET commune_id = unit_at(i.geom, 'commune', (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date),
            village_id = unit_at(i.geom, 'village', (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
        FROM era
        WHERE era.ended IS NOT NULL AND i.is_demo AND i.external_id LIKE %(prefix)s || '%%'
          AND (i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date < era.ended""", {"prefix": id_prefix})


def create_incidents(conn: Connection, villages: pd.DataFrame, plan: Plan, n: int, seed: int,
                     until: dt.date, years: int, commune_ids: list[int], on_date: dt.date,
                     id_prefix: str = "demo-inc-") -> IncidentReport:
    areas = read_frame(conn, "SELECT id, ST_Area(ST_Transform(geom, 3405)) AS area_m2 FROM admin_unit "
                       "WHERE id = ANY(%(ids)s)", {"ids": villages["id"].tolist()})
    villages = villages.merge(areas, on="id", validate="one_to_one")
    frame, by_process = generate_frame(villages, plan, n, seed, until, years)
    snapped = insert_incidents(conn, frame, commune_ids, on_date, id_prefix=id_prefix)
    start, _ = window(until, years)
    return IncidentReport(len(frame), by_process, snapped, start, until)
