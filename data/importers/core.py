"""The import pipeline: parse -> validate -> stage -> check -> write, in ONE transaction.

Why this shape: every bad row must be reported (not just the first), and a file with any bad row
must write nothing. So Python validates every cell and collects issues, the rows that parsed are
staged in SQL where the spatial checks run set-based, and only a clean file is written; otherwise
the transaction is rolled back. ``--dry-run`` runs all of it and rolls back too. The functions
take an Engine and return an ImportReport, so the API can reuse them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg2
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from data.importers.fields import parse_fields, resolve_columns
from data.importers.geometry import read_points, resolve_crs
from data.importers.kinds import POINT_KINDS, Kind
from data.importers.read import FileRejected, SourceTable, read_source
from data.importers.report import ImportFailed, ImportReport
from data.importers.stage import STAGE, assign_units, copy_rows, create_stage, report_outside, stage_columns

Progress = Callable[[str, int, int], None]  # (step, advance, total)


@dataclass
class ImportOptions:
    crs: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    sheet: str | None = None
    encoding: str | None = None
    layer: str | None = None
    progress: Progress | None = None
    polygon_parts: bool = False  # villages: keep the polygon parts of GeometryCollections


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """['code=ma_xa', 'name=Tên'] -> {'code': 'ma_xa', 'name': 'ten'} (user columns normalised)."""
    from data.importers.read import normalise_column

    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--map cần dạng field=column / --map needs field=column: {pair!r}")
        key, col = pair.split("=", 1)
        out[key.strip()] = normalise_column(col)
    return out


def load_source(path: Path | str, options: ImportOptions, report: ImportReport) -> SourceTable | None:
    try:
        source = read_source(path, sheet=options.sheet, encoding=options.encoding,
                             layer=options.layer)
    except FileRejected as exc:
        report.add(None, "file", exc.vi, exc.en, str(path))
        return None
    report.rows = len(source.rows)
    for pos, cells in sorted(source.unreadable.items()):
        found, _, expected = cells.partition("/")  # "cells in the row/columns in the header"
        report.add(source.rows[pos], "row",
                   f"Dòng có {found} ô nhưng tiêu đề có {expected} cột; tệp bị cắt cụt hoặc lệch "
                   "cột? Cần mỗi dòng đủ các cột của tiêu đề",
                   f"The row has {found} cells but the header has {expected} columns; is the file "
                   "cut off or are columns shifted? Expected every row to have the header's "
                   "columns")
    if source.unreadable:
        source = source.without(set(source.unreadable))
    if report.rows == 0:
        report.add(None, "file",
                   "Tệp không có dòng dữ liệu nào (chỉ có tiêu đề hoặc rỗng); cần ít nhất một dòng",
                   "The file has no data rows (a header only, or nothing); expected at least one "
                   "row", str(path))
        return None
    if source.encoding and source.encoding not in ("utf-8", "xlsx"):
        report.notes.append(f"encoding: {source.encoding} -> UTF-8 (NFC)")
    return source


def note_unused_columns(source: SourceTable, used: set[str | None], report: ImportReport) -> None:
    """Name the file's columns no field reads: they are not imported, and the user should know."""
    report.unused_columns = [source.original_columns.get(c, c) for c in source.frame.columns
                             if c not in used]


def database_refused(report: ImportReport, exc: Exception) -> None:
    """Last resort: the database refused what the checks let through. Named, nothing written
    (the transaction is rolled back), never a traceback."""
    orig = getattr(exc, "orig", exc)
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    report.add(None, "database", f"Cơ sở dữ liệu từ chối dữ liệu, không ghi gì: {first}",
               f"The database refused the data; nothing was written: {first}")


def check_duplicates(values: list, rows: list[int], field_name: str, report: ImportReport,
                      bad: set[int]) -> None:
    first: dict[object, int] = {}
    for i, v in enumerate(values):
        if v is None:
            continue
        if v in first:
            report.add(rows[i], field_name, f"Mã trùng trong tệp (đã có ở dòng {first[v]})",
                       f"Duplicate {field_name} in the file (first at row {first[v]})", v)
            bad.add(i)
        else:
            first[v] = rows[i]


def import_points(engine: Engine, kind_name: str, path: Path | str,
                  options: ImportOptions | None = None) -> ImportReport:
    """Import one file of a point kind (incidents, models, fire-groups, institutions, ...)."""
    options = options or ImportOptions()
    kind = POINT_KINDS[kind_name]
    report = ImportReport(kind=kind.name, source=str(path), dry_run=options.dry_run)
    source = load_source(path, options, report)
    if source is None:
        return report
    columns = resolve_columns(kind.fields, list(source.frame.columns), options.mapping, report)
    parsed = parse_fields(kind.fields, columns, source.frame, source.rows, report)
    check_duplicates(parsed.values["external_id"], source.rows, "external_id", report,
                      parsed.bad_rows)
    crs = resolve_crs(source, options.crs, report)
    points = read_points(source, crs, options.mapping, report,
                         required=kind.point == "required")
    note_unused_columns(source, set(columns.values()) | set(points.columns), report)
    try:
        with engine.begin() as conn:
            if kind.resolve:
                kind.resolve(conn, parsed, source.rows, report)
            _stage_and_write(conn, kind, source, parsed, points, report, options)
            if report.errors or options.dry_run:
                raise ImportFailed(report)
    except ImportFailed:
        report.inserted = report.updated = 0
    except (DBAPIError, psycopg2.Error) as exc:
        database_refused(report, exc)
        report.inserted = report.updated = 0
    id_col = columns.get("external_id")
    if id_col is not None:
        report.name_codes(dict(zip(source.rows, source.frame[id_col], strict=True)))
    return report


def _stage_and_write(conn: Connection, kind: Kind, source: SourceTable, parsed, points,
                     report: ImportReport, options: ImportOptions) -> None:
    error_rows = {e.row for e in report.errors}
    bad_rows = parsed.bad_rows | {i for i, r in enumerate(source.rows) if r in error_rows}
    today = dt.date.today()
    on_dates = parsed.values.get("on_date") or [today] * len(source.rows)
    names = [f.name for f in kind.fields] + list(kind.extra_columns)
    create_stage(conn, stage_columns(kind.fields, kind.extra_columns))
    good = [i for i in range(len(source.rows)) if i not in bad_rows]
    total = len(good)
    tick = (lambda n: options.progress("stage", n, total)) if options.progress else None

    def records():
        for i in good:
            lon, lat = points.lon[i], points.lat[i]
            yield [source.rows[i], None if np.isnan(lon) else float(lon),
                   None if np.isnan(lat) else float(lat), on_dates[i] or today,
                   *[parsed.values[n][i] for n in names]]

    copy_rows(conn, ["row_no", "lon", "lat", "on_date", *names], records(), progress=tick)
    for sql in kind.prepare_sql:
        conn.exec_driver_sql(sql)
    assign_units(conn)
    report_outside(conn, report)
    if kind.point == "optional":
        need_village = kind.table == "launch_point"
        missing = conn.exec_driver_sql(
            f"SELECT row_no FROM {STAGE} WHERE geom IS NULL "
            + ("AND village_id IS NULL " if need_village else "") + "ORDER BY row_no").fetchall()
        for (row_no,) in missing:
            report.add(row_no, "geometry",
                       "Thiếu vị trí: cần tọa độ hoặc mã thôn/cơ quan có vị trí",
                       "No location: give coordinates or a host village/institution", None)
    if report.errors or options.dry_run:
        if not report.errors:
            report.notes.append(f"dry run: {total} rows valid, nothing written")
        return
    if options.progress:
        options.progress("write", 0, 1)
    # Units are assigned above, set-based; tell the per-row trigger not to redo it (0003a).
    conn.exec_driver_sql("SET LOCAL antt.units_assigned = 'on'")
    flags = [r[0] for r in conn.exec_driver_sql(kind.write_sql).fetchall()]
    conn.exec_driver_sql("SET LOCAL antt.units_assigned = 'off'")
    report.inserted = sum(1 for f in flags if f)
    report.updated = len(flags) - report.inserted
    for sql in kind.after_sql:
        conn.exec_driver_sql(sql)
    if options.progress:
        options.progress("write", 1, 1)
