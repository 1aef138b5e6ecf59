"""Analytics on country-sized data: coverage, Gi*, KDE (and DBSCAN, emerging hot spots).

Data: all 3,321 communes of 2025 (full resolution), ~36,500 generated villages (11 per commune,
Voronoi cells clipped to the commune), ~55,000 models, 1,000,000 incidents over 3 years, generated
in SQL (seeded) in a throwaway embedded cluster (fsync off). (data.demo's generator stopped at
country scale on a sliver village when this was written, so the bench makes its own.) Set
ANTT_BENCH_HOME=/some/dir to keep the cluster and reuse the data next run.

Coverage within R is memoised (geo.reach): the bench times it with an empty memo, warm, and
right after one model is added.

Targets (issue 3): coverage for every commune < 2 s; Gi* for one province-year on 250 m
hexagons < 1 s, with the speed ratio against esda on the same cells and weights; KDE for one
commune-year < 0.5 s; peak memory of each < 2 GB.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import resource
import statistics
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

UNTIL = dt.date(2026, 10, 31)
YEAR_START = dt.date(2025, 11, 1)
INCIDENTS = int(os.environ.get("ANTT_BENCH_INCIDENTS", 1_000_000))
VILLAGES_PER_COMMUNE = 11


# Generated in SQL next to the data (one statement per step, seeded): villages are Voronoi
# cells of random points in each commune, clipped to it; models sit in villages; incidents are
# drawn per village in proportion to population, with a few planted hotspot villages.
GENERATE = [
    ("villages", """
    INSERT INTO admin_unit (level, code, name, name_search, parent_id, province_code, population,
                            households, valid_from, source, is_synthetic, geom)
    SELECT 'village', c.code || lpad(v.k::text, 3, '0'), 'Thôn ' || v.k, 'thon ' || v.k, c.id,
           c.province_code, p.pop, (p.pop / 3.7)::int, '2025-07-01', 'bench', true, v.g
    FROM (SELECT id, code, province_code, geom FROM admin_unit WHERE level = 'commune') c,
         LATERAL (
            SELECT row_number() OVER () AS k,
                   ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_Intersection(cell, c.geom)), 3)) AS g
            FROM ST_Dump(ST_VoronoiPolygons(ST_GeneratePoints(c.geom, :per_commune, 7))) AS d(path, cell)
         ) v,
         LATERAL (SELECT (300 + 4000 * random())::int AS pop) p
    WHERE NOT ST_IsEmpty(v.g) AND ST_Area(v.g) > 0"""),
    ("models", """
    INSERT INTO security_model (type_code, name, founded_on, status, status_since, commune_id,
                                village_id, is_demo, geom)
    SELECT (ARRAY['to_tu_quan','dong_ho_tu_quan','camera_antt','tai_hoa_nhap','an_toan_giao_thong',
                  'thanh_thieu_nien'])[1 + floor(random() * 6)::int],
           'Mô hình ' || v.code, DATE '2018-01-01' + floor(random() * 3000)::int,
           CASE WHEN random() < 0.08 THEN 'suspended' ELSE 'active' END,
           DATE '2024-01-01' + floor(random() * 700)::int, v.parent_id, v.id, true, d.geom
    FROM admin_unit v, LATERAL ST_Dump(ST_GeneratePoints(v.geom, 1 + floor(random() * 3)::int, v.id)) d
    WHERE v.level = 'village' AND random() < 0.85"""),
    ("ratings", """
    INSERT INTO model_rating (model_id, rating, rated_on)
    SELECT id, (ARRAY['tot','kha','trung_binh','yeu'])[1 + floor(random() * 4)::int],
           founded_on + 200 FROM security_model"""),
    ("incidents", """
    WITH w AS (
        SELECT v.id, v.parent_id, v.geom,
               v.population * CASE WHEN random() < 0.01 THEN 12 ELSE 1 END AS weight
        FROM admin_unit v WHERE v.level = 'village'
    ), n AS (
        SELECT id, parent_id, geom,
               round(CAST(:incidents AS float8) * weight / sum(weight::float8) OVER ())::int AS n FROM w
    )
    INSERT INTO incident (category_code, occurred_at, youth_involved, deaths, injuries, commune_id,
                          village_id, commune_now_id, village_now_id, is_demo, geom)
    SELECT (ARRAY['crime/theft','crime/theft','crime/fraud/online','crime/disorder','crime/injury',
                  'crime/drugs','traffic','traffic','fire/fire','violation'])[1 + floor(random() * 10)::int],
           TIMESTAMPTZ '2023-11-01 00:00+07' + random() * INTERVAL '1096 days',
           random() < 0.15, (random() < 0.02)::int, (random() < 0.1)::int, n.parent_id, n.id,
           n.parent_id, n.id, true, d.geom
    FROM n, LATERAL ST_Dump(ST_GeneratePoints(n.geom, n.n, n.id)) d
    WHERE n.n > 0"""),
]


def _build(engine: Engine, url: str) -> None:
    from antt.migrate import upgrade
    from data.boundaries.load import load_2025

    upgrade(url)
    with engine.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'commune'")).scalar_one()
    if not have:
        t = time.perf_counter()
        load_2025(engine)
        print(f"  boundaries loaded in {time.perf_counter() - t:.0f} s")
    with engine.begin() as conn:
        conn.execute(text("SELECT setseed(0.2025)"))
        for step, sql in GENERATE:
            t = time.perf_counter()
            params = {"per_commune": VILLAGES_PER_COMMUNE, "incidents": INCIDENTS}
            n = conn.execute(text(sql), params).rowcount
            print(f"  {step}: {n:,} rows in {time.perf_counter() - t:.0f} s", flush=True)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        conn.execute(text("CREATE TABLE bench_ready (at timestamptz DEFAULT now())"))
        conn.execute(text("INSERT INTO bench_ready DEFAULT VALUES"))


def _ready(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT to_regclass('bench_ready') IS NOT NULL")).scalar_one())


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[Any, float, float]:
    """(result, first run s, median of the warm runs s)."""
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times[0], statistics.median(times[1:]) if repeat > 1 else times[0]


def peak_mb(fn: Callable[[], Any]) -> float:
    """Peak Python-side allocation (numpy included) during one call, in MB."""
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def _measure(engine: Engine) -> None:
    import numpy as np
    from esda.getisord import G_Local
    from libpysal.weights import WSP

    from geo.clusters import incident_clusters
    from geo.coverage import commune_coverage, village_coverage
    from geo.emerging import emerging_hotspots
    from geo.filters import IncidentFilter
    from geo.getis_ord import gi_star
    from geo.hotspots import hex_hotspots, neighbours
    from geo.kde import grid_png, incident_points, kde_grid

    year = IncidentFilter(YEAR_START, UNTIL)
    with engine.connect() as conn:
        sizes = conn.execute(text("""
            SELECT (SELECT count(*) FROM admin_unit WHERE level = 'commune') AS communes,
                   (SELECT count(*) FROM admin_unit WHERE level = 'village') AS villages,
                   (SELECT count(*) FROM security_model) AS models,
                   (SELECT count(*) FROM incident) AS incidents""")).one()
        province = conn.execute(text("""
            SELECT c.province_code, count(*) FROM incident i JOIN admin_unit c ON c.id = i.commune_id
            WHERE i.occurred_at >= :s AND i.occurred_at < :e
            GROUP BY 1 ORDER BY 2 DESC LIMIT 1"""), {"s": YEAR_START, "e": UNTIL}).one()
        commune = conn.execute(text("""
            SELECT c.code, count(*) FROM incident i JOIN admin_unit c ON c.id = i.commune_id
            WHERE i.occurred_at >= :s AND i.occurred_at < :e
            GROUP BY 1 ORDER BY 2 DESC LIMIT 1"""), {"s": YEAR_START, "e": UNTIL}).one()
    print(f"data: {sizes.communes:,} communes, {sizes.villages:,} villages, {sizes.models:,} models, "
          f"{sizes.incidents:,} incidents")
    rows = []

    def report(name: str, target: float | None, first: float, warm: float, mem: float, extra: str = ""):
        ok = "" if target is None else ("OK " if warm < target else "SLOW ")
        tgt = f"(target < {target} s)" if target else ""
        rows.append(name)
        print(f"{ok}{name}: first {first:.3f} s, warm {warm:.3f} s {tgt}; peak Python memory {mem:.0f} MB"
              f"{'; ' + extra if extra else ''}")

    # 1. coverage of every commune: the counts (covered villages, models by rating/type, fire
    # groups, institutions, festival), then with population/area within R (buffer overlays)
    cov, first, warm = timed(lambda: commune_coverage(engine, UNTIL, radius_m=None))
    report(f"coverage, all {len(cov):,} communes (counts, shares, covered flag)", 2.0, first, warm,
           peak_mb(lambda: commune_coverage(engine, UNTIL, radius_m=None)),
           f"{int(cov['covered'].sum()):,} communes covered")
    vc, first, warm = timed(lambda: village_coverage(engine, UNTIL), repeat=2)
    report(f"coverage, all {len(vc):,} villages", None, first, warm,
           peak_mb(lambda: village_coverage(engine, UNTIL)), f"{int(vc['covered'].sum()):,} covered")
    # with population/area within R: the buffer overlays are memoised (geo.reach), so measure
    # the empty memo (first call after an import), the warm call, and the call after one model
    # is added (only the communes whose grown box holds it are overlaid again)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE reach_cache"))
    one = cov.sort_values("villages").iloc[-1]["province_code"]
    pc, first, warm = timed(lambda: commune_coverage(engine, UNTIL, radius_m=500, province_code=one),
                            repeat=2)
    report(f"coverage with population/area within 500 m, province {one} ({len(pc)} communes), "
           "first = empty memo", None, first, warm,
           peak_mb(lambda: commune_coverage(engine, UNTIL, radius_m=500, province_code=one)))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE reach_cache"))
    full, first, warm = timed(lambda: commune_coverage(engine, UNTIL, radius_m=500))
    mem = peak_mb(lambda: commune_coverage(engine, UNTIL, radius_m=500))  # warm; tracing slows it
    report(f"coverage with population/area within 500 m, all {len(full):,} communes, "
           "first = empty memo (every overlay computed), warm = memo filled", 2.0, first, warm, mem,
           f"median population share within R {full['population_within_r_share'].dropna().median():.2f}")
    with engine.begin() as conn:  # a planner adds one model: its communes' keys change
        conn.execute(text("""
            INSERT INTO security_model (type_code, name, founded_on, status, is_demo, geom)
            SELECT 'to_tu_quan', 'bench: one new model', DATE '2026-01-01', 'active', true,
                   ST_PointOnSurface(geom) FROM admin_unit
            WHERE level = 'village' ORDER BY id LIMIT 1 OFFSET 20000"""))
    try:
        t = time.perf_counter()
        after = commune_coverage(engine, UNTIL, radius_m=500)
        elapsed = time.perf_counter() - t
        report(f"coverage within 500 m, all {len(after):,} communes, right after one model is added",
               2.0, elapsed, elapsed, 0.0)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM security_model WHERE name = 'bench: one new model'"))

    # 2. Gi* for one province-year on 250 m hexagons, end to end, then ours vs esda
    pcode = province.province_code
    hs, first, warm = timed(lambda: hex_hotspots(engine, 250, year, province_code=pcode, with_geometry=False))
    report(f"Gi* province {pcode} year ({province.count:,} incidents, {len(hs):,} hexagons of 250 m, "
           "SQL counts + weights + Gi* + local Moran; first run also builds the area's hexagon set, "
           "cached after)", 1.0, first, warm,
           peak_mb(lambda: hex_hotspots(engine, 250, year, province_code=pcode, with_geometry=False)),
           f"{int((hs['bin'] == 3).sum())} hexagons at +3")
    xy = hs[["x", "y"]].to_numpy()
    y = hs["count"].to_numpy(float)
    band = np.sqrt(3) * 250 * 1.01
    w, _, t_w = timed(lambda: neighbours(xy, band, None))
    _, _, t_ours = timed(lambda: gi_star(y, w), repeat=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not fully connected": islands, expected
        W = WSP(w).to_W(silence_warnings=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs, _, t_esda = timed(lambda: G_Local(y, W, transform="B", star=True, permutations=0), repeat=3)
    diff = float(np.abs(gi_star(y, w).z - theirs.Zs).max())
    print(f"   weights (cKDTree, {w.nnz:,} links) {t_w * 1000:.1f} ms; Gi* ours {t_ours * 1000:.1f} ms vs "
          f"esda G_Local {t_esda * 1000:.1f} ms on the same cells and weights: {t_esda / t_ours:.1f}x "
          f"faster; max |z diff| {diff:.2e}")

    # 3. KDE for one commune-year (100 m cells, default bandwidth) and its PNG
    ccode = commune.code

    def kde() -> Any:
        return kde_grid(engine, year, cell_m=100, commune_code=ccode)

    grid, first, warm = timed(kde)
    report(f"KDE commune {ccode} year ({grid.n_points:,} incidents, {grid.density.size:,} cells of 100 m, "
           f"bandwidth {grid.bandwidth_m:.0f} m)", 0.5, first, warm, peak_mb(kde))
    xyk, wk = incident_points(engine, year, commune_code=ccode)
    _, first, warm = timed(lambda: grid_png(grid, xyk, wk, max_pixels=1024))
    report("KDE PNG 1024 px (Web Mercator, exact per pixel)", None, first, warm,
           peak_mb(lambda: grid_png(grid, xyk, wk, max_pixels=1024)))

    # extras: DBSCAN and emerging hot spots on the same province-year
    cl, first, warm = timed(lambda: incident_clusters(engine, year, eps_m=150, min_points=10,
                                                      province_code=pcode), repeat=2)
    report(f"DBSCAN province {pcode} year (eps 150 m, min 10)", None, first, warm, 0.0, f"{len(cl)} clusters")
    em, first, warm = timed(lambda: emerging_hotspots(engine, year, cell_m=500, province_code=pcode),
                            repeat=2)
    cats = em["category"].value_counts().to_dict()
    report(f"emerging hot spots province {pcode}, 12 months, 500 m", None, first, warm, 0.0, str(cats))
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
          "(all of the above, Python side; PostgreSQL runs in its own processes)")
    peaks = _backend_peaks_mb(engine)
    if peaks:
        print(f"PostgreSQL: the {len(peaks)} backends that did the work peaked at {max(peaks):.0f} MB RSS "
              "(VmHWM, shared buffers they touched included)")
    else:
        print("PostgreSQL backend memory: not readable here (/proc of another user's processes)")


def _backend_peaks_mb(engine: Engine) -> list[float]:
    """VmHWM of every backend of the bench database still open in the pool (they did the work)."""
    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND backend_type = 'client backend'")).scalars().all()
    peaks = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peaks


def main() -> None:
    from antt.cluster import EmbeddedCluster
    from antt.db import make_engine

    keep = os.environ.get("ANTT_BENCH_HOME")
    home = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="antt-bench-analytics-"))
    home.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(home=home, fast=True, dbname="antt_bench")
    url = cluster.up()
    engine = make_engine(url)
    try:
        if not _ready(engine):
            print(f"building the data in {home} (once; set ANTT_BENCH_HOME to keep it) ...")
            _build(engine, url)
        _measure(engine)
    finally:
        engine.dispose()
        if keep:
            cluster.down()
        else:
            cluster.destroy()


if __name__ == "__main__":
    main()
