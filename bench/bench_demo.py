"""`antt demo` at scale, and set-based unit assignment against the per-row trigger (the peer).

Scope (ANTT_BENCH_DEMO_SCOPE): 'country' (default; all 3,321 communes of 2025 at full
resolution, 11 villages per commune ≈ 36,500 villages, 1,000,000 incidents over 3 years) or
'haiphong' (114 communes, ~1,000 villages, 200,000 incidents). ANTT_BENCH_DEMO_INCIDENTS
overrides the incident count. Runs in a throwaway embedded cluster (fsync off);
ANTT_BENCH_HOME=/dir keeps it, and the loaded boundaries, for the next run.

Peer: the same 50,000 generated incidents inserted (a) through our staging table + one
set-based join on the subdivided unit parts, and (b) row by row through the assign_units
trigger (unit_at twice per row), both rolled back.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

UNTIL = dt.date(2026, 10, 31)
PEER_SAMPLE = 50_000


def _peer(engine, villages_per_commune: int) -> None:
    from data.demo import incidents as inc
    from data.demo.plan import Plan
    from data.demo.sql import copy_frame, read_frame

    with engine.connect() as conn:
        villages = read_frame(conn, """
            SELECT v.id, v.code, v.parent_id AS commune_id, v.population,
                   ST_X(ST_PointOnSurface(v.geom)) AS lon, ST_Y(ST_PointOnSurface(v.geom)) AS lat,
                   ST_Area(ST_Transform(v.geom, 3405)) AS area_m2
            FROM admin_unit v WHERE v.level = 'village' ORDER BY v.code""")
        commune_ids = [int(x) for x in villages["commune_id"].unique()]
    frame, _ = inc.generate_frame(villages, Plan([], []), PEER_SAMPLE, 99, UNTIL, 3)
    with engine.connect() as conn:
        tx = conn.begin()
        steps: dict = {}
        t = time.perf_counter()
        inc.insert_incidents(conn, frame, commune_ids, UNTIL, id_prefix="peer-", timings=steps)
        set_based = time.perf_counter() - t
        tx.rollback()
    with engine.connect() as conn:
        tx = conn.begin()
        conn.exec_driver_sql("CREATE TEMP TABLE peer_stage (n int, category_code text, t float8, lon float8, "
                             "lat float8)")
        copy_frame(conn, "peer_stage", frame[["n", "category_code", "t", "lon", "lat"]])
        t = time.perf_counter()
        conn.exec_driver_sql(
            "INSERT INTO incident (category_code, occurred_at, is_demo, geom) "
            "SELECT category_code, to_timestamp(t), true, ST_SetSRID(ST_MakePoint(lon, lat), 4326) "
            "FROM peer_stage")
        per_row = time.perf_counter() - t
        tx.rollback()
    print(f"  assignment of {PEER_SAMPLE:,} incidents: set-based {set_based:.2f} s "
          f"({PEER_SAMPLE / set_based:,.0f}/s) vs per-row trigger {per_row:.2f} s "
          f"({PEER_SAMPLE / per_row:,.0f}/s): ratio {per_row / set_based:.1f}x")
    print("  set-based steps (s): " + ", ".join(f"{k} {v}" for k, v in steps.items())
          + "  (insert = the INSERT into incident itself: indexes, foreign keys, trigger no-op)")


def _generate(engine, incidents: int, per_commune: int) -> None:
    from data.demo.generate import EXISTING, generate

    t = time.perf_counter()
    res = generate(engine, EXISTING, incidents=incidents, villages_per_commune=per_commune, years=3,
                   until=UNTIL, password_for=lambda role: f"bench-{role}-pass")
    total = time.perf_counter() - t
    print(f"  demo generated in {total:.1f} s (one transaction): {res.counts}")
    print("  steps (s): " + ", ".join(f"{k} {v}" for k, v in res.extra["timings"].items()))
    inc_s = res.extra["timings"].get(f"incidents ({incidents:,})")
    if inc_s:
        print(f"  incidents: {incidents / inc_s:,.0f} per second (generate + COPY + assign + insert)")
    print("  incidents put back on their anchor village (outside every commune): "
          f"{res.snapped_incidents:,}")


def main() -> None:
    from antt.cluster import EmbeddedCluster
    from antt.db import make_engine
    from antt.migrate import upgrade
    from data.boundaries import sources
    from data.boundaries.load import load_2025
    scope = os.environ.get("ANTT_BENCH_DEMO_SCOPE", "country")
    country = scope == "country"
    incidents = int(os.environ.get("ANTT_BENCH_DEMO_INCIDENTS", 1_000_000 if country else 200_000))
    per_commune = 11 if country else 9
    keep = os.environ.get("ANTT_BENCH_HOME")  # keep the cluster (and loaded boundaries) between runs
    home = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="antt-bench-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(home=home, fast=True, dbname="antt_bench")
    url = cluster.up()
    engine = make_engine(url)
    try:
        upgrade(url)
        t = time.perf_counter()
        with engine.connect() as conn:
            loaded = conn.execute(text("SELECT count(*) FROM admin_unit WHERE level = 'commune' "
                                       "AND NOT is_demo")).scalar_one()
        if loaded != (3321 if country else 114):
            if country:
                load_2025(engine)
            else:
                load_2025(engine, sources.path_of(sources.COMMUNES_2025_HAIPHONG), province_code="31")
            print(f"  boundaries ({scope}) loaded in {time.perf_counter() - t:.1f} s")
        with engine.connect() as conn:
            done = conn.execute(text("SELECT value FROM demo_manifest WHERE key = 'demo'")).scalar()
        if keep and done and done["counts"]["incidents"] == incidents:
            print(f"  demo reused from {home}: {done['counts']}")
        else:
            _generate(engine, incidents, per_commune)
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
        print(f"  database size {size}")
        _peer(engine, per_commune)
    finally:
        engine.dispose()
        if keep:
            cluster.down()
        else:
            cluster.destroy()


if __name__ == "__main__":
    main()
