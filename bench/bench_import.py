"""Import speed on real-sized data, in a throwaway cluster (never the developer's .antt/).

1. All 3,321 communes + 34 provinces of 2025 at full resolution (7.1 M vertices): target < 60 s,
   peak memory < 2 GB; then a second run, which must add none.
   Then the pre-2025 era and the lineage (area shares) nationally, for the figures.
2. 100,000 incidents from a CSV generated here: uniform random points inside random communes of
   all of Vietnam (rejection sampling in the full-resolution polygons), random past dates and
   categories. Target < 20 s, peak memory < 2 GB.
   Peer: the schema's per-row path (INSERT with commune_id NULL, so the assign_units trigger calls
   unit_at() row by row) for the same 100,000 points, inside a rolled-back transaction.

Wall time and CPU time (Python process + the PostgreSQL backend that did the work, from
/proc) are both printed: on a loaded machine wall time includes waiting for a CPU.
Each step runs in its own spawned process, so its peak RSS (ru_maxrss, of the Python process)
is its own; the PostgreSQL backend's peak (VmHWM of the backend that did the work) is printed
beside it. Run: `antt bench run import` (takes a few minutes).
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

N_INCIDENTS = 100_000
TARGET_BOUNDARIES_S = 60.0
TARGET_INCIDENTS_S = 20.0
TARGET_MEMORY_MB = 2048.0


def _backend_cpu_s(conn) -> float | None:
    """CPU seconds (user + system) of this connection's PostgreSQL backend so far."""
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_peak_mb(conn) -> float | None:
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _step_boundaries(url: str, queue) -> None:
    from antt.db import make_engine
    from data.boundaries.load import import_boundaries

    eng = make_engine(url, pool_size=1, max_overflow=0)
    with eng.connect() as conn:
        cpu0 = _backend_cpu_s(conn)
    t, c = time.perf_counter(), time.process_time()
    report = import_boundaries(eng, "2025")
    seconds, py_cpu = time.perf_counter() - t, time.process_time() - c
    with eng.connect() as conn:
        backend = _backend_peak_mb(conn)
        db_cpu = (_backend_cpu_s(conn) or 0) - (cpu0 or 0)
    queue.put({"seconds": seconds, "inserted": report.inserted, "updated": report.updated,
               "unchanged": report.unchanged,
               "errors": len(report.errors), "repairs": len(report.repairs),
               "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "backend_mb": backend,
               "py_cpu": py_cpu, "db_cpu": db_cpu})


def _step_incidents(url: str, path: str, queue) -> None:
    from antt.db import make_engine
    from data.importers.core import import_points

    eng = make_engine(url, pool_size=1, max_overflow=0)
    with eng.connect() as conn:
        cpu0 = _backend_cpu_s(conn)
    t, c = time.perf_counter(), time.process_time()
    report = import_points(eng, "incidents", path)
    seconds, py_cpu = time.perf_counter() - t, time.process_time() - c
    with eng.connect() as conn:
        backend = _backend_peak_mb(conn)
        db_cpu = (_backend_cpu_s(conn) or 0) - (cpu0 or 0)
    queue.put({"seconds": seconds, "inserted": report.inserted, "updated": report.updated,
               "errors": len(report.errors), "first_errors": [e.reason_en for e in
                                                              report.sorted_errors()[:3]],
               "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "backend_mb": backend,
               "py_cpu": py_cpu, "db_cpu": db_cpu})


def _step_pre2025_lineage(url: str, queue) -> None:
    from antt.db import make_engine
    from data.boundaries.lineage import import_lineage
    from data.boundaries.load import import_boundaries

    eng = make_engine(url, pool_size=1, max_overflow=0)
    t = time.perf_counter()
    pre = import_boundaries(eng, "pre2025")
    t_pre = time.perf_counter() - t
    t = time.perf_counter()
    lin = import_lineage(eng)
    t_lin = time.perf_counter() - t
    queue.put({"pre_s": t_pre, "pre_inserted": pre.inserted, "pre_notes": pre.notes,
               "lin_s": t_lin, "lin_inserted": lin.inserted, "lin_notes": lin.notes,
               "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def _run(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def write_incident_csv(url: str, path: Path, n: int = N_INCIDENTS, seed: int = 7) -> None:
    """n random points inside random 2025 communes (full resolution), past dates, real categories."""
    import numpy as np
    import shapely

    from antt.db import make_engine

    eng = make_engine(url)
    with eng.connect() as conn:
        communes = conn.exec_driver_sql(
            "SELECT code, ST_AsBinary(geom) FROM admin_unit WHERE level = 'commune' "
            "AND valid_to IS NULL ORDER BY code").fetchall()
        cats = [r[0] for r in conn.exec_driver_sql("SELECT code FROM incident_category ORDER BY 1")]
    eng.dispose()
    rng = np.random.default_rng(seed)
    geoms = shapely.from_wkb([bytes(g) for _, g in communes])
    which = rng.integers(0, len(geoms), n)
    lon = np.empty(n)
    lat = np.empty(n)
    for k in np.unique(which):
        idx = np.flatnonzero(which == k)
        g = geoms[k]
        shapely.prepare(g)
        x0, y0, x1, y1 = g.bounds
        filled = 0
        while filled < len(idx):
            m = (len(idx) - filled) * 4 + 16
            xs, ys = rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)
            ok = shapely.contains_xy(g, xs, ys)
            take = min(ok.sum(), len(idx) - filled)
            lon[idx[filled:filled + take]] = xs[ok][:take]
            lat[idx[filled:filled + take]] = ys[ok][:take]
            filled += take
    start = np.datetime64("2025-07-01T00:00")
    minutes = rng.integers(0, 60 * 24 * 480, n)  # 2025-07-01 .. ~2026-10
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["ma", "loai", "ngay", "kinh_do", "vi_do", "thanh_thieu_nien", "trang_thai"])
        for i in range(n):
            when = str(start + np.timedelta64(int(minutes[i]), "m")).replace("T", " ")
            w.writerow([f"B{i:06d}", cats[int(rng.integers(0, len(cats)))], when,
                        f"{lon[i]:.7f}", f"{lat[i]:.7f}", int(rng.random() < 0.2), "reported"])


def peer_per_row_trigger(url: str) -> tuple[float, int]:
    """The same points through the per-row trigger (commune_id NULL), rolled back."""
    from antt.db import make_engine

    eng = make_engine(url)
    with eng.connect() as conn:
        tx = conn.begin()
        t = time.perf_counter()
        conn.exec_driver_sql(
            "INSERT INTO incident (external_id, category_code, occurred_at, youth_involved, "
            "status, geom) SELECT 'peer-' || external_id, category_code, occurred_at, "
            "youth_involved, status, geom FROM incident")
        seconds = time.perf_counter() - t
        agree = conn.exec_driver_sql(
            "SELECT count(*) FROM incident a JOIN incident b ON b.external_id = "
            "'peer-' || a.external_id WHERE a.commune_id IS NOT DISTINCT FROM b.commune_id"
        ).scalar_one()
        tx.rollback()
    eng.dispose()
    return seconds, agree


def main() -> None:
    from antt.cluster import EmbeddedCluster
    from antt.migrate import upgrade

    home = Path(tempfile.mkdtemp(prefix="antt-bench-import-"))
    cluster = EmbeddedCluster(home=home, fast=True, dbname="postgres")
    cluster.up()
    try:
        url = cluster.url("postgres")
        upgrade(url)
        b1 = _run(_step_boundaries, url)
        print(f"boundaries 2025 full resolution: {b1['seconds']:.1f} s "
              f"(target {TARGET_BOUNDARIES_S:.0f} s, ratio {b1['seconds'] / TARGET_BOUNDARIES_S:.2f})"
              f"; inserted {b1['inserted']}, updated {b1['updated']}, errors {b1['errors']}, "
              f"repairs reported {b1['repairs']}")
        print(f"  CPU: python {b1['py_cpu']:.1f} s + postgres backend {b1['db_cpu']:.1f} s "
              f"(wall time on a shared machine includes waiting for the CPU)")
        print(f"  peak RSS python {b1['rss_mb']:.0f} MB, postgres backend {b1['backend_mb'] or 0:.0f} MB"
              f" (target < {TARGET_MEMORY_MB:.0f} MB)")
        b2 = _run(_step_boundaries, url)
        print(f"boundaries second run: {b2['seconds']:.1f} s; inserted {b2['inserted']} "
              f"(must be 0), updated {b2['updated']}, unchanged {b2['unchanged']}")
        pl = _run(_step_pre2025_lineage, url)
        print(f"pre-2025 era (GSO list + district polygons + 2009 communes): {pl['pre_s']:.1f} s, "
              f"{pl['pre_inserted']} units; {'; '.join(pl['pre_notes'])}")
        print(f"lineage: {pl['lin_s']:.1f} s, {pl['lin_inserted']} rows; {'; '.join(pl['lin_notes'])}"
              f"; peak RSS python {pl['rss_mb']:.0f} MB")
        csv_path = home / "incidents.csv"
        t = time.perf_counter()
        write_incident_csv(url, csv_path)
        print(f"generated {N_INCIDENTS:,} incidents over all of Vietnam in "
              f"{time.perf_counter() - t:.1f} s ({csv_path.stat().st_size / 1e6:.1f} MB CSV)")
        inc = _run(_step_incidents, url, str(csv_path))
        print(f"incidents import: {inc['seconds']:.1f} s (target {TARGET_INCIDENTS_S:.0f} s, ratio "
              f"{inc['seconds'] / TARGET_INCIDENTS_S:.2f}); inserted {inc['inserted']}, "
              f"errors {inc['errors']} {inc['first_errors']}")
        print(f"  CPU: python {inc['py_cpu']:.1f} s + postgres backend {inc['db_cpu']:.1f} s")
        print(f"  {N_INCIDENTS / inc['seconds']:,.0f} rows/s; peak RSS python {inc['rss_mb']:.0f} MB, "
              f"postgres backend {inc['backend_mb'] or 0:.0f} MB (target < {TARGET_MEMORY_MB:.0f} MB)")
        peer_s, agree = peer_per_row_trigger(url)
        print(f"peer: per-row trigger insert of the same {inc['inserted']:,} points: {peer_s:.1f} s "
              f"(INSERT only, no parsing); commune agreement {agree:,}/{inc['inserted']:,}; "
              f"whole import / peer insert = {inc['seconds'] / peer_s:.2f}")
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
