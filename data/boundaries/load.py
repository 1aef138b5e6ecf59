"""Loaders that put real boundary files into admin_unit (one transaction per call)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Engine

from data.boundaries import sources
from data.boundaries.units import UpsertResult, prepare_units, upsert_units
from data.importers.report import ImportReport, Repair


def load_2025(engine: Engine, communes_path: Path | str | None = None,
              provinces_path: Path | str | None = None,
              province_code: str | None = None) -> UpsertResult:
    """Load 2025 provinces and communes (optionally one province) in one transaction."""
    communes_path = communes_path or sources.path_of(sources.COMMUNES_2025_FULL)
    provinces_path = provinces_path or sources.path_of(sources.PROVINCES_2025)
    provinces = prepare_units(sources.provinces_2025(provinces_path, province_code))
    communes = prepare_units(sources.communes_2025(communes_path, province_code))
    with engine.begin() as conn:
        a = upsert_units(conn, provinces)
        b = upsert_units(conn, communes)
    return UpsertResult(a.inserted + b.inserted, a.updated + b.updated)


class _Rollback(Exception):
    """Raised inside a transaction to undo it (dry runs)."""


def _geometry_repairs(frame: gpd.GeoDataFrame, report: ImportReport, offset: int = 0) -> None:
    """Report every invalid polygon; upsert_units repairs it with ST_MakeValid in SQL.
    Rows are counted from 1 within the file (after the --province filter)."""
    geoms = frame.geometry.values
    present = ~(shapely.is_missing(geoms))
    invalid = np.flatnonzero(present & ~shapely.is_valid(geoms))
    for i in invalid:
        reason = shapely.is_valid_reason(geoms[i])
        report.repairs.append(Repair(offset + int(i) + 1, f"{frame['level'].iloc[i]} "
                                     f"{frame['code'].iloc[i]}: ST_MakeValid ({reason})"))


def import_boundaries(engine: Engine, era: str = "2025", path: Path | str | None = None, *,
                      province_code: str | None = None, dry_run: bool = False,
                      provinces_path: Path | str | None = None,
                      districts_path: Path | str | None = None,
                      communes_2009_path: Path | str | None = None,
                      progress: Callable[[str, int, int | None], None] | None = None
                      ) -> ImportReport:
    """`antt import boundaries`: one era's units in one transaction (rolled back on dry run).

    era '2025': the sapnhap commune file (default: full resolution) and the 2025 provinces.
    era 'pre2025': the GSO code list CSV, gis.chinhphu.vn district/province polygons and the
    2009 commune polygons matched by name (see data.boundaries.pre2025).
    """
    from data.boundaries.pre2025 import pre2025_frame

    report = ImportReport(kind=f"boundaries-{era}", source="", dry_run=dry_run)
    if era == "2025":
        path = Path(path or sources.path_of(sources.COMMUNES_2025_FULL))
        provinces_path = provinces_path or sources.path_of(sources.PROVINCES_2025)
        streams = [iter([sources.provinces_2025(provinces_path, province_code)]),
                   sources.communes_2025_chunks(path, province_code)]
    elif era == "pre2025":
        path = Path(path or sources.path_of(sources.UNITS_PRE2025))
        frame, stats = pre2025_frame(
            path, districts_path or sources.path_of(sources.DISTRICTS_PRE2025),
            provinces_path or sources.path_of(sources.PROVINCES_PRE2025),
            communes_2009_path or sources.path_of(sources.COMMUNES_2009), province_code)
        streams = [iter([frame])]
        if stats:
            report.notes.append(stats.as_text())
    else:
        report.add(None, "era", f"Giai đoạn không hợp lệ: {era} (2025 hoặc pre2025)",
                   f"Unknown era: {era} (2025 or pre2025)", era)
        return report
    report.source = str(path)
    try:
        with engine.begin() as conn:
            _pipelined_upsert(conn, streams, report, progress)
            if report.rows == 0:
                report.add(None, "province", f"Không có đơn vị nào cho tỉnh {province_code}",
                           f"No units for province {province_code}", province_code)
                raise _Rollback
            if dry_run:
                report.notes.append("dry run: rolled back, nothing written")
                raise _Rollback
    except _Rollback:
        pass
    return report


def _pipelined_upsert(conn, streams: list[Iterator[gpd.GeoDataFrame]], report: ImportReport,
                      progress: Callable[[str, int, int | None], None] | None = None) -> None:
    """Upsert frame after frame; the next frame is read while the database writes this one.

    Why a thread: reading and encoding full-resolution polygons is Python work, subdividing and
    indexing them is PostgreSQL work in another process; psycopg2 releases the GIL while a
    statement runs, so the two overlap. One worker keeps the statements in order (provinces
    before their communes) on the one connection, inside the caller's transaction.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for stream in streams:
            offset = 0
            for frame in stream:
                _geometry_repairs(frame, report, offset)
                offset += len(frame)
                report.rows += len(frame)
                units = prepare_units(frame)
                if pending is not None:
                    _count(report, pending.result(), progress)
                pending = pool.submit(upsert_units, conn, units)
        if pending is not None:
            _count(report, pending.result(), progress)


def _count(report: ImportReport, result: UpsertResult, progress=None) -> None:
    report.inserted += result.inserted
    report.updated += result.updated
    report.unchanged += result.unchanged
    if progress is not None:
        progress("đơn vị / units", result.total + result.unchanged, None)  # total unknown while streaming
