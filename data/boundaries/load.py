"""Loaders that put real boundary files into admin_unit (one transaction per call)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import psycopg2
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from data.boundaries import sources
from data.boundaries.check import (
    COMMUNES_2025,
    PROVINCES_2025,
    UnitChecker,
    checked_frames,
    official_codes_2025,
)
from data.boundaries.units import ERA_2025, UpsertResult, prepare_units, upsert_units
from data.importers.core import database_refused
from data.importers.report import ImportReport


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
    """Raised inside a transaction to undo it (dry runs, errors)."""


def _db_codes(conn, level: str, on: dt.date) -> set[str]:
    """Codes of LEVEL units already in the database and valid on ON (possible parents)."""
    return {r[0] for r in conn.exec_driver_sql(
        "SELECT code FROM admin_unit WHERE level = %s AND valid_from <= %s "
        "AND (valid_to IS NULL OR %s < valid_to)", (level, on, on)).fetchall()}


def import_boundaries(engine: Engine, era: str = "2025", path: Path | str | None = None, *,
                      province_code: str | None = None, dry_run: bool = False,
                      provinces_path: Path | str | None = None,
                      districts_path: Path | str | None = None,
                      communes_2009_path: Path | str | None = None,
                      mapping: dict[str, str] | None = None, polygon_parts: bool = False,
                      allow_unlisted_codes: bool = False, crs: str | None = None,
                      progress: Callable[[str, int, int | None], None] | None = None
                      ) -> ImportReport:
    """`antt import boundaries`: one era's units in one transaction (rolled back on dry run).

    era '2025': the sapnhap commune file (default: full resolution) and the 2025 provinces.
    era 'pre2025': the GSO code list CSV, gis.chinhphu.vn district/province polygons and the
    2009 commune polygons matched by name (see data.boundaries.pre2025).
    Every feature is checked first (data.boundaries.check); any error: nothing is written.
    ``mapping`` maps an expected column to the file's (e.g. {'ten_day_du': 'full_name'}).
    """
    from data.boundaries.pre2025 import pre2025_frame

    report = ImportReport(kind=f"boundaries-{era}", source="", dry_run=dry_run)
    if era not in ("2025", "pre2025"):
        report.add(None, "era", f"Giai đoạn không hợp lệ: {era} (2025 hoặc pre2025)",
                   f"Unknown era: {era} (2025 or pre2025)", era)
        return report
    mapping = dict(mapping or {})
    try:
        with engine.begin() as conn:
            if era == "2025":
                path = Path(path or sources.path_of(sources.COMMUNES_2025_FULL))
                report.source = str(path)
                _import_2025(conn, report, path,
                             Path(provinces_path or sources.path_of(sources.PROVINCES_2025)),
                             province_code, mapping, polygon_parts, allow_unlisted_codes, crs,
                             progress)
            else:
                path = Path(path or sources.path_of(sources.UNITS_PRE2025))
                report.source = str(path)
                frame, stats = pre2025_frame(
                    path, districts_path or sources.path_of(sources.DISTRICTS_PRE2025),
                    provinces_path or sources.path_of(sources.PROVINCES_PRE2025),
                    communes_2009_path or sources.path_of(sources.COMMUNES_2009), province_code,
                    report=report, polygon_parts=polygon_parts)
                if stats:
                    report.notes.append(stats.as_text())
                if frame is not None and not report.errors:
                    _pipelined_upsert(conn, [iter([frame])], report, progress)
            if report.rows == 0 and not report.errors:
                report.add(None, "province", f"Không có đơn vị nào cho tỉnh {province_code}",
                           f"No units for province {province_code}", province_code)
            if report.errors:
                raise _Rollback
            if dry_run:
                report.notes.append("dry run: rolled back, nothing written")
                raise _Rollback
    except _Rollback:
        if report.errors:
            report.inserted = report.updated = report.unchanged = 0
    except (DBAPIError, psycopg2.Error) as exc:
        database_refused(report, exc)
        report.inserted = report.updated = report.unchanged = 0
    return report


def _import_2025(conn, report: ImportReport, path: Path, provinces_path: Path,
                 province_code: str | None, mapping: dict[str, str], polygon_parts: bool,
                 allow_unlisted: bool, crs: str | None, progress) -> None:
    """Provinces first (they are the communes' parents), then the communes, streamed."""
    catalogue = official_codes_2025()
    if catalogue is None:
        report.notes.append("danh mục mã 2025 không có, mã không được đối chiếu / the official "
                            "2025 code list is missing: codes were not checked against it")
    common = {"report": report, "mapping": mapping, "province_code": province_code,
              "allow_unlisted": allow_unlisted, "polygon_parts": polygon_parts,
              "crs_option": crs}
    provinces = UnitChecker(provinces_path, PROVINCES_2025,
                            catalogue=catalogue and catalogue["province"], **common)
    province_frames = list(checked_frames(provinces))
    # A provinces file that could not be read says nothing about which parents exist: then
    # communes are not checked against it (its own error is reported).
    parents = (set(provinces.seen) | _db_codes(conn, "province", ERA_2025)
               if provinces.columns is not None and not provinces.failed else None)
    communes = UnitChecker(path, COMMUNES_2025, parents=parents,
                           catalogue=catalogue and catalogue["commune"], **common)
    _pipelined_upsert(conn, [iter(province_frames), checked_frames(communes)], report, progress,
                      count_rows=False)
    report.rows += provinces.features + communes.features


def _pipelined_upsert(conn, streams: list[Iterator[gpd.GeoDataFrame]], report: ImportReport,
                      progress: Callable[[str, int, int | None], None] | None = None,
                      count_rows: bool = True) -> None:
    """Upsert frame after frame; the next frame is read (and checked) while the database writes
    this one. Once any error is found nothing more is sent: the caller rolls back, and the
    rest of the file is still checked so that every bad feature is listed.

    Why a thread: reading and encoding full-resolution polygons is Python work, subdividing and
    indexing them is PostgreSQL work in another process; psycopg2 releases the GIL while a
    statement runs, so the two overlap. One worker keeps the statements in order (provinces
    before their communes) on the one connection, inside the caller's transaction.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for stream in streams:
            for frame in stream:
                if count_rows:
                    report.rows += len(frame)
                if report.errors:
                    continue
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
