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

    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores "
          "(the figures move with it)")
    df, first, warm = timed(lambda: kpi.kpis(engine, ON), repeat=3)
    summary = kpi.unit_summary(df)
    print(f"KPIs of all {df['code'].nunique():,} communes in one call ({len(df):,} commune-target rows, "
          f"{int(summary['met'].sum()):,} targets met): first {first:.2f} s, warm {warm:.2f} s; "
          f"peak Python memory {peak_mb(lambda: kpi.kpis(engine, ON)):.0f} MB")
    _kpi_split(engine)
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
    _report_job(engine, pcode)
    t = time.perf_counter()
    commune_report = build_report(engine, "commune", one, "year", 2026, maps=True)
    to_docx(commune_report)
    print(f"commune report {one} with maps and DOCX: {time.perf_counter() - t:.2f} s")


def _kpi_split(engine: Engine, repeat: int = 3) -> None:
    """Where the national KPI call's time goes, each part timed in turn under the same load:
    the statement alone (execute + fetch on the DBAPI cursor), the rest of ``kpi.kpis`` (frame,
    types), and the statement as it was before the scope box was dropped for the whole country
    (a condition that keeps every commune turns the box on; the same rows come back)."""
    import statistics

    from geo import kpi

    params = {"on": ON, "year": ON.year, "province_code": None, "commune_code": None}
    order = " ORDER BY code, position, target"
    now_sql = kpi.kpi_sql("commune", kpi.scope_sql(None, None)) + order
    boxed_sql = kpi.kpi_sql("commune", " AND true") + order
    times: dict[str, list[float]] = {"sql": [], "boxed": [], "call": []}
    rows: dict[str, int] = {}
    for _ in range(repeat):
        for name, sql in (("sql", now_sql), ("boxed", boxed_sql)):
            with engine.connect() as conn:
                t = time.perf_counter()
                result = conn.execute(text(sql), params)
                rows[name] = len(result.cursor.fetchall())
                times[name].append(time.perf_counter() - t)
        t = time.perf_counter()
        kpi.kpis(engine, ON)
        times["call"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    assert rows["sql"] == rows["boxed"]
    print(f"  of which the statement (execute + fetch) {med['sql']:.2f} s, the rest of kpis() "
          f"{max(0.0, med['call'] - med['sql']):.2f} s (frame and types); the statement with the "
          f"whole-country box (before) {med['boxed']:.2f} s; medians of {repeat}")


def _report_job(engine: Engine, pcode: str) -> None:
    """The province roll-up as the web page asks for it: a job (antt.jobs) writing DOCX, XLSX
    and HTML into report_file, polled for progress as /jobs/{id} does."""
    from antt import jobs
    from api.reports import JOB_KIND  # importing api.reports registers the job kind

    params = {"level": "province", "code": pcode, "kind": "year", "year": 2026, "start": "2025-11-01",
              "end": ON.isoformat(), "annex": False, "sees_points": False, "maps": True,
              "formats": ["docx", "xlsx", "html"],
              "principal": {"username": "bench", "role": "committee", "scope_level": "province",
                            "scope_code": pcode}}
    t = time.perf_counter()
    job_id = jobs.submit(engine, JOB_KIND, params, owner="bench", owner_role="committee")
    seen: list[tuple[float, str]] = []
    while True:
        state = jobs.get(engine, job_id)
        if not seen or (state.progress, state.message) != seen[-1]:
            seen.append((state.progress, state.message or ""))
        if state.finished:
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - t
    result = jobs.result(engine, job_id) or {}
    sizes = ", ".join(f"{f['format'].upper()} {f['bytes'] / 1e3:.0f} kB" for f in result.get("files", []))
    print(f"province roll-up {pcode} as a job ({state.status}): {elapsed:.2f} s end to end, "
          f"{len(seen)} distinct progress states seen by polling every 0.2 s; files {sizes}")
    with engine.begin() as conn:  # the bench's own job and files go
        conn.execute(text("DELETE FROM job WHERE id = :id"), {"id": job_id})


def main() -> None:
    from antt.cluster import EmbeddedCluster
    from antt.db import make_engine

    keep = os.environ.get("ANTT_BENCH_HOME")
    home = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="antt-bench-targets-"))
    home.mkdir(parents=True, exist_ok=True)
    cluster = EmbeddedCluster(home=home, fast=True, dbname="antt_bench")
    url = cluster.up()
    engine = make_engine(url)
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
