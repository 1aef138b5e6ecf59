"""Incidents across the 2025 merger on the Hải Phòng demo: are they all counted, and what does
keeping them placed cost (issue 13).

Steps, in a throwaway embedded cluster (fsync off):
1. the real Hải Phòng 2025 province and communes, then `antt demo` (10,000 incidents over 3
   years, ~1,000 villages);
2. the demo's incidents written to a CSV file, deleted, and imported with `antt import
   incidents`, with only the 2025 map: each is placed in the units of its date (none for a
   pre-2025 date) and in today's units;
3. the pre-2025 boundaries of provinces 31 and 30 (the old Hải Phòng and Hải Dương, merged into
   the new Hải Phòng) loaded afterwards: the statement trigger gives every pre-2025 incident its
   pre-2025 commune (timed);
4. totals over the whole period by hexagon (500 m), village (the Gi* input), commune and
   province, and "cùng kỳ" for the last 12 months; then the same import again with both maps
   loaded (incidents outside every pre-2025 commune counted, not refused).
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

UNTIL = dt.date(2026, 10, 31)


def _export(engine, path: Path) -> int:
    with engine.begin() as conn:
        rows = conn.execute(text("SELECT external_id, category_code, occurred_at, ST_X(geom), "
                                 "ST_Y(geom) FROM incident ORDER BY id")).all()
        conn.execute(text("DELETE FROM incident"))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ma", "loai", "ngay", "kinh_do", "vi_do"])
        for ext, cat, at, lon, lat in rows:
            w.writerow([ext, cat, at.isoformat(), repr(lon), repr(lat)])
    return len(rows)


def _import(engine, path: Path) -> None:
    from data.importers.core import import_points

    t = time.perf_counter()
    rep = import_points(engine, "incidents", path)
    print(f"  import of {rep.rows:,} incidents in {time.perf_counter() - t:.1f} s: inserted "
          f"{rep.inserted:,}, updated {rep.updated:,}, errors {len(rep.errors)}, "
          f"outside every unit of their date's era {rep.outside_era:,}")


def _totals(engine) -> None:
    from geo.filters import IncidentFilter
    from geo.grid import hex_counts
    from geo.hotspots import village_hotspots
    from geo.timeseries import monthly_series, same_period_last_year

    flt = IncidentFilter(dt.date(2023, 1, 1), UNTIL)
    with engine.connect() as conn:
        n, old, placed = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE occurred_at < '2025-07-01 00:00+07'), "
            "count(*) FILTER (WHERE village_id IS NOT NULL) FROM incident")).one()
    t = time.perf_counter()
    hexes = int(hex_counts(engine, 500, flt, province_code="31", on=UNTIL,
                           with_geometry=False)["count"].sum())
    villages = int(village_hotspots(engine, flt, province_code="31", on=UNTIL,
                                    with_geometry=False)["count"].sum())
    communes = int(monthly_series(engine, flt, "commune", province_code="31", on=UNTIL)["count"].sum())
    sp = same_period_last_year(engine, IncidentFilter(dt.date(2025, 11, 1), UNTIL), "commune",
                               province_code="31", on=UNTIL)
    print(f"  {n:,} incidents, {old:,} before 1 July 2025, {placed:,} with a village of their date")
    print(f"  whole period: hexagons {hexes:,}, village Gi* input {villages:,}, communes {communes:,} "
          f"({time.perf_counter() - t:.1f} s)")
    print(f"  cùng kỳ 2025-11-01..2026-10-31 over the province: {int(sp['count'].sum()):,} against "
          f"{float(sp['count_last_year'].sum()):,.0f} a year earlier")


def main() -> None:
    from antt.cluster import EmbeddedCluster
    from antt.db import make_engine
    from antt.migrate import upgrade
    from data.boundaries import sources
    from data.boundaries.load import import_boundaries, load_2025
    from data.demo.generate import EXISTING, generate

    home = Path(tempfile.mkdtemp(prefix="antt-bench-merger-"))
    cluster = EmbeddedCluster(home=home, fast=True, dbname="antt_bench")
    url = cluster.up()
    engine = make_engine(url)
    try:
        upgrade(url)
        load_2025(engine, sources.path_of(sources.COMMUNES_2025_HAIPHONG), province_code="31")
        t = time.perf_counter()
        res = generate(engine, EXISTING, province_code="31", incidents=10_000, until=UNTIL,
                       password_for=lambda role: f"bench-{role}-pass")
        print(f"  demo in {time.perf_counter() - t:.1f} s: {res.counts['villages']:,} villages, "
              f"{res.counts['incidents']:,} incidents")
        path = home / "incidents.csv"
        _export(engine, path)
        print("1. the 2025 map only:")
        _import(engine, path)
        _totals(engine)
        t = time.perf_counter()
        for code in ("31", "30"):
            rep = import_boundaries(engine, "pre2025", province_code=code)
            print(f"  pre-2025 units of province {code}: {rep.inserted:,}")
        print(f"2. pre-2025 map loaded after the incidents ({time.perf_counter() - t:.1f} s, "
              "their own-date communes filled by the trigger):")
        _totals(engine)
        _export(engine, path)
        print("3. both maps loaded, incidents imported again:")
        _import(engine, path)
        _totals(engine)
    finally:
        engine.dispose()
        cluster.destroy()


if __name__ == "__main__":
    main()
