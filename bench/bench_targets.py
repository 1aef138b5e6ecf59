"""The year's plan on country-sized data: KPIs of every commune in one call, and a province
roll-up report (data, maps, DOCX, XLSX).

Data: bench_analytics' national set (3,321 communes at full resolution, ~36,500 villages,
~55,000 models, 1,000,000 incidents over 3 years), plus what the plan counts, generated in SQL
(seeded): 4 institutions per commune with their 2026 results, every village's 2026 facts, a
forum or two per commune, launch events, and a province plan per province. Set
ANTT_BENCH_HOME=/some/dir to keep the cluster and reuse the data next run (the same directory as
bench_analytics reuses its data too).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, text

from bench.bench_analytics import INCIDENTS, _build, _ready, peak_mb, timed

ON = dt.date(2026, 10, 31)

PLAN_DATA = [
    ("institutions", """
    INSERT INTO institution (kind, name, commune_id, village_id, is_demo, geom)
    SELECT (ARRAY['agency', 'school', 'school', 'enterprise'])[k], 'Đơn vị ' || k || ' ' || v.code,
           v.parent_id, v.id, true, ST_PointOnSurface(v.geom)
    FROM (SELECT DISTINCT ON (parent_id) id, code, parent_id, geom FROM admin_unit
          WHERE level = 'village' ORDER BY parent_id, code) v, generate_series(1, 4) k"""),
    ("institution_year", """
    INSERT INTO institution_year (institution_id, year, antt_safe, festival_held, launched, movement_class)
    SELECT id, 2026, random() < 0.85, random() < 0.9, random() < 0.8,
           (ARRAY['xuat_sac', 'kha', 'kha', 'trung_binh', 'yeu'])[1 + floor(random() * 5)::int]
    FROM institution"""),
    ("unit_year", """
    INSERT INTO unit_year (unit_id, year, festival_held, movement_class, launched, is_demo)
    SELECT id, 2026, random() < 0.9,
           (ARRAY['xuat_sac', 'kha', 'kha', 'trung_binh', 'yeu'])[1 + floor(random() * 5)::int],
           random() < 0.85, true
    FROM admin_unit WHERE level = 'village'"""),
    ("events", """
    INSERT INTO movement_event (kind, title, held_on, commune_id, participants, is_demo)
    SELECT k, k || ' ' || c.code, DATE '2026-02-01' + floor(random() * 250)::int, c.id,
           50 + floor(random() * 300)::int, true
    FROM admin_unit c, (VALUES ('forum'), ('forum'), ('launch')) e(k)
    WHERE c.level = 'commune' AND random() < 0.8"""),
    ("plans", """
    WITH p AS (INSERT INTO plan (unit_level, unit_code, year, title, is_demo)
               SELECT 'province', code, 2026, 'Kế hoạch 2026', true FROM admin_unit WHERE level = 'province'
               RETURNING id)
    INSERT INTO plan_target (plan_id, target_code, threshold)
    SELECT p.id, d.code, d.default_threshold FROM p CROSS JOIN target_def d WHERE d.builtin"""),
]


def _build_plan(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL jit = off"))
        conn.execute(text("SELECT setseed(0.1908)"))
        for step, sql in PLAN_DATA:
            t = time.perf_counter()
            n = conn.execute(text(sql)).rowcount
            print(f"  {step}: {n:,} rows in {time.perf_counter() - t:.0f} s", flush=True)
        conn.execute(text("ANALYZE"))
        conn.execute(text("CREATE TABLE bench_targets_ready (at timestamptz DEFAULT now())"))


def _plan_ready(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT to_regclass('bench_targets_ready') IS NOT NULL")).scalar_one())


def _measure(engine: Engine) -> None:
    from geo import kpi
    from reports.data import build_report
    from reports.writers import to_docx, to_xlsx

    with engine.connect() as conn:
        sizes = conn.execute(text("""
            SELECT (SELECT count(*) FROM admin_unit WHERE level = 'commune') AS communes,
                   (SELECT count(*) FROM admin_unit WHERE level = 'village') AS villages,
                   (SELECT count(*) FROM security_model) AS models,
                   (SELECT count(*) FROM institution) AS institutions,
                   (SELECT count(*) FROM movement_event) AS events,
                   (SELECT count(*) FROM incident) AS incidents""")).one()
        province = conn.execute(text("""
            SELECT c.province_code, count(*) FROM admin_unit c WHERE c.level = 'commune'
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1""")).one()
        incidents_in = conn.execute(text("""
            SELECT count(*) FROM incident i JOIN admin_unit c ON c.id = i.commune_id
            WHERE c.province_code = :p AND i.occurred_at >= '2024-11-01' AND i.occurred_at < '2026-11-01'"""),
            {"p": province.province_code}).scalar_one()
    print(f"data: {sizes.communes:,} communes, {sizes.villages:,} villages, {sizes.models:,} models, "
          f"{sizes.institutions:,} institutions, {sizes.events:,} events, {sizes.incidents:,} incidents")

    df, first, warm = timed(lambda: kpi.kpis(engine, ON), repeat=3)
    summary = kpi.unit_summary(df)
    print(f"KPIs of all {df['code'].nunique():,} communes in one call ({len(df):,} commune-target rows, "
          f"{int(summary['met'].sum()):,} targets met): first {first:.2f} s, warm {warm:.2f} s; "
          f"peak Python memory {peak_mb(lambda: kpi.kpis(engine, ON)):.0f} MB")
    vdf, first, warm = timed(lambda: kpi.kpis(engine, ON, level="village"), repeat=2)
    print(f"KPIs of all {vdf['code'].nunique():,} villages in one call ({len(vdf):,} rows): "
          f"first {first:.2f} s, warm {warm:.2f} s")
    one = summary.iloc[len(summary) // 2]["code"]
    _, first, warm = timed(lambda: kpi.kpis(engine, ON, commune_code=one), repeat=3)
    print(f"KPIs of one commune ({one}): first {first:.3f} s, warm {warm:.3f} s")

    pcode = province.province_code
    t = time.perf_counter()
    report = build_report(engine, "province", pcode, "year", 2026, maps=False)
    t_data = time.perf_counter() - t
    t = time.perf_counter()
    report = build_report(engine, "province", pcode, "year", 2026, maps=True)
    t_all = time.perf_counter() - t
    t = time.perf_counter()
    docx = to_docx(report)
    t_docx = time.perf_counter() - t
    t = time.perf_counter()
    xlsx = to_xlsx(report)
    t_xlsx = time.perf_counter() - t
    total = next(r for r in report.tables["incidents"].rows if r["code"] == "*")
    print(f"province roll-up report {pcode} ({province.count} communes, {incidents_in:,} incidents in the "
          f"two compared periods; {total['count']} this period vs {total['count_last_year']}): "
          f"tables {t_data:.2f} s, with the 2 maps {t_all:.2f} s, "
          f"DOCX {t_docx:.2f} s ({len(docx) / 1e6:.1f} MB), "
          f"XLSX {t_xlsx:.2f} s ({len(xlsx) / 1e3:.0f} kB); end to end {t_all + t_docx + t_xlsx:.2f} s")
    t = time.perf_counter()
    commune_report = build_report(engine, "commune", one, "year", 2026, maps=True)
    to_docx(commune_report)
    print(f"commune report {one} with maps and DOCX: {time.perf_counter() - t:.2f} s")


def main() -> None:
    from antt.cluster import EmbeddedCluster
    from antt.db import make_engine

    keep = os.environ.get("ANTT_BENCH_HOME")
    home = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="antt-bench-targets-"))
    home.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(home=home, fast=True, dbname="antt_bench")
    url = cluster.up()
    engine = make_engine(url, connect_args={"options": "-c jit=off"})
    try:
        if not _ready(engine):
            print(f"building the national data in {home} ({INCIDENTS:,} incidents) ...")
            _build(engine, url)
        else:
            from antt.migrate import upgrade

            upgrade(url)  # data kept from an older schema: bring it to head
        if not _plan_ready(engine):
            print("adding the plan's data ...")
            _build_plan(engine)
        _measure(engine)
    finally:
        engine.dispose()
        if keep:
            cluster.down()
        else:
            cluster.destroy()


if __name__ == "__main__":
    main()
