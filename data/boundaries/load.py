"""Loaders that put real boundary files into admin_unit (one transaction per call)."""

from __future__ import annotations

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


def _geometry_repairs(frame: gpd.GeoDataFrame, report: ImportReport) -> None:
    """Report every invalid polygon; upsert_units repairs it with ST_MakeValid in SQL."""
    geoms = frame.geometry.values
    present = ~(shapely.is_missing(geoms))
    invalid = np.flatnonzero(present & ~shapely.is_valid(geoms))
    for i in invalid:
        reason = shapely.is_valid_reason(geoms[i])
        report.repairs.append(Repair(int(i) + 1, f"{frame['level'].iloc[i]} "
                                     f"{frame['code'].iloc[i]}: ST_MakeValid ({reason})"))


def import_boundaries(engine: Engine, era: str = "2025", path: Path | str | None = None, *,
                      province_code: str | None = None, dry_run: bool = False,
                      provinces_path: Path | str | None = None,
                      districts_path: Path | str | None = None,
                      communes_2009_path: Path | str | None = None) -> ImportReport:
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
        frames = [sources.provinces_2025(provinces_path, province_code),
                  sources.communes_2025(path, province_code)]
    elif era == "pre2025":
        path = Path(path or sources.path_of(sources.UNITS_PRE2025))
        frame, stats = pre2025_frame(
            path, districts_path or sources.path_of(sources.DISTRICTS_PRE2025),
            provinces_path or sources.path_of(sources.PROVINCES_PRE2025),
            communes_2009_path or sources.path_of(sources.COMMUNES_2009), province_code)
        frames = [frame]
        if stats:
            report.notes.append(stats.as_text())
    else:
        report.add(None, "era", f"Giai đoạn không hợp lệ: {era} (2025 hoặc pre2025)",
                   f"Unknown era: {era} (2025 or pre2025)", era)
        return report
    report.source = str(path)
    report.rows = sum(len(f) for f in frames)
    if report.rows == 0:
        report.add(None, "province", f"Không có đơn vị nào cho tỉnh {province_code}",
                   f"No units for province {province_code}", province_code)
        return report
    for f in frames:
        _geometry_repairs(f, report)
    prepared = [prepare_units(f) for f in frames]
    try:
        with engine.begin() as conn:
            for units in prepared:
                res = upsert_units(conn, units)
                report.inserted += res.inserted
                report.updated += res.updated
            if dry_run:
                raise _Rollback
    except _Rollback:
        report.notes.append("dry run: rolled back, nothing written")
    return report
