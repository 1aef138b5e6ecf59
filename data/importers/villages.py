"""Village import: polygons when the user has them, else Voronoi cells around centre points.

Why both: no open village boundaries exist for Vietnam (see the shared SOURCES.md); communes
often have only a list of village centres. Then each village gets the part of its commune
nearest to its centre (``geo.villages.voronoi_village_cells``, computed in SQL in metres).
Import ALL villages of a commune in one file: cells partition the commune among the centres of
that import. Villages belong to the current era (valid from 2025-07-01) and are upserted by
(level 'village', code, valid_from), so a re-import updates them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg2
import shapely
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from antt.crs import METRIC_SRID
from data.boundaries.units import ERA_2025, prepare_units, upsert_units
from data.importers.core import (
    ImportOptions,
    check_duplicates,
    database_refused,
    load_source,
    note_unused_columns,
)
from data.importers.fields import Field, parse_fields, resolve_columns
from data.importers.geometry import read_points, read_polygons, resolve_crs
from data.importers.report import ImportFailed, ImportReport, Repair

# A village given with its commune code may lie a little outside that commune (digitising; it
# is then moved just inside, and reported); farther than this it is an error, not a move.
MAX_OUTSIDE_M = 1000.0

VILLAGE_KINDS = {"thon": "thôn", "xom": "xóm", "ap": "ấp", "ban": "bản", "lang": "làng",
                 "to dan pho": "tổ dân phố", "tdp": "tổ dân phố", "khu pho": "khu phố",
                 "khu": "khu", "village": "thôn", "to": "tổ dân phố"}

FIELDS = (
    Field("code", required=True, aliases=("ma_thon", "ma", "ma_to_dan_pho")),
    Field("name", required=True, aliases=("ten", "ten_thon", "ten_to_dan_pho")),
    Field("kind", "enum", aliases=("loai", "cap"), choices=VILLAGE_KINDS),
    Field("commune_code", aliases=("ma_xa", "ma_phuong", "commune")),
    Field("population", "int", aliases=("dan_so", "so_dan", "nhan_khau"), minimum=0),
    Field("households", "int", aliases=("so_ho", "ho"), minimum=0),
)


def _is_polygon_file(source) -> bool:
    if source.geometry is None:
        return False
    types = {g.geom_type for g in source.geometry.values if g is not None and not g.is_empty}
    return bool(types & {"Polygon", "MultiPolygon"})


def import_villages(engine: Engine, path: Path | str,
                    options: ImportOptions | None = None) -> ImportReport:
    options = options or ImportOptions()
    report = ImportReport(kind="villages", source=str(path), dry_run=options.dry_run)
    source = load_source(path, options, report)
    if source is None:
        return report
    cols = resolve_columns(FIELDS, list(source.frame.columns), options.mapping, report)
    parsed = parse_fields(FIELDS, cols, source.frame, source.rows, report)
    check_duplicates(parsed.values["code"], source.rows, "code", report, parsed.bad_rows)
    crs = resolve_crs(source, options.crs, report)
    polygons = _is_polygon_file(source)
    used = set(cols.values())
    if polygons:
        geoms = read_polygons(source, crs, report, polygon_parts=options.polygon_parts)
    else:
        pts = read_points(source, crs, options.mapping, report, required=True)
        used |= set(pts.columns)
        geoms = [None if np.isnan(x) else shapely.Point(x, y) for x, y in zip(pts.lon, pts.lat,
                                                                              strict=True)]
    note_unused_columns(source, used, report)
    try:
        with engine.begin() as conn:
            _write(conn, source, parsed, geoms, polygons, report, options)
            if report.errors or options.dry_run:
                raise ImportFailed(report)
    except ImportFailed:
        report.inserted = report.updated = 0
    except (DBAPIError, psycopg2.Error) as exc:
        database_refused(report, exc)
        report.inserted = report.updated = 0
    return report


def _communes(conn: Connection, source, parsed, geoms, report: ImportReport) -> list:
    """The commune (id, code, province_code) of each row: by code, else by where it lies."""
    today = dt.date.today()
    n = len(source.rows)
    codes = parsed.values["commune_code"]
    wkb = [None if g is None else shapely.to_wkb(shapely.point_on_surface(g), hex=True)
           for g in geoms]
    rows = conn.exec_driver_sql(
        """
        SELECT t.i, coalesce(by_code.id, by_place.id), coalesce(by_code.code, by_place.code),
               coalesce(by_code.province_code, by_place.province_code), by_code.id IS NOT NULL,
               CASE WHEN by_code.id IS NOT NULL AND t.wkb IS NOT NULL THEN ST_Distance(
                   ST_Transform(by_code.geom, %(metric)s),
                   ST_Transform(ST_SetSRID(ST_GeomFromWKB(decode(t.wkb, 'hex')), 4326),
                                %(metric)s)) END
        FROM unnest(%(codes)s::text[], %(wkb)s::text[]) WITH ORDINALITY AS t(code, wkb, i)
        LEFT JOIN admin_unit by_code ON by_code.level = 'commune' AND by_code.code = t.code
             AND by_code.valid_from <= %(d)s
             AND (by_code.valid_to IS NULL OR %(d)s < by_code.valid_to)
        LEFT JOIN LATERAL (
             SELECT u.id, u.code, u.province_code FROM admin_unit u
             WHERE t.code IS NULL AND t.wkb IS NOT NULL
               AND u.id = unit_at(ST_SetSRID(ST_GeomFromWKB(decode(t.wkb, 'hex')), 4326),
                                  'commune', %(d)s)) by_place ON true
        ORDER BY t.i
        """, {"codes": codes, "wkb": wkb, "d": today, "metric": METRIC_SRID}).fetchall()
    out: list = [None] * n
    for i, cid, ccode, pcode, _by_code, away_m in rows:
        k = int(i) - 1
        if k in parsed.bad_rows:
            continue
        if away_m is not None and away_m > MAX_OUTSIDE_M:
            report.add(source.rows[k], "geometry",
                       f"Thôn nằm cách xã {ccode} {away_m / 1000:,.1f} km; cần nằm trong xã "
                       f"(hoặc cách tối đa {MAX_OUTSIDE_M:,.0f} m). Sai tọa độ hay sai mã xã?",
                       f"The village lies {away_m / 1000:,.1f} km outside commune {ccode}; "
                       f"expected inside it (or within {MAX_OUTSIDE_M:,.0f} m). Wrong coordinates "
                       "or wrong commune code?", codes[k])
            continue
        if cid is None:
            if codes[k] is not None:
                report.add(source.rows[k], "commune_code", "Mã xã không tồn tại",
                           "Unknown commune code", codes[k])
            elif geoms[k] is not None:
                report.add(source.rows[k], "geometry", "Thôn không nằm trong xã/phường nào",
                           "The village is outside every commune")
            continue
        out[k] = (cid, ccode, pcode)
    return out


def _write(conn: Connection, source, parsed, geoms: list, polygons: bool, report: ImportReport,
           options: ImportOptions) -> None:
    from antt.text import strip_kind

    communes = _communes(conn, source, parsed, geoms, report)
    error_rows = {e.row for e in report.errors}
    good = [i for i in range(len(source.rows))
            if i not in parsed.bad_rows and source.rows[i] not in error_rows
            and geoms[i] is not None and communes[i] is not None]
    if report.errors:
        return
    if not polygons:
        from geo.villages import VillageCellError, voronoi_village_cells

        centres = pd.DataFrame({
            "code": [parsed.values["code"][i] for i in good],
            "commune_id": [communes[i][0] for i in good],
            "lon": [geoms[i].x for i in good], "lat": [geoms[i].y for i in good]})
        try:
            cells = voronoi_village_cells(conn, centres, on_date=dt.date.today())
        except VillageCellError as exc:
            report.add(None, "geometry", f"Không tạo được ô Voronoi: {exc}",
                       f"Cannot build Voronoi cells: {exc}")
            return
        for i, moved in zip(good, cells["moved"], strict=True):
            if moved:
                report.repairs.append(Repair(source.rows[i], "centre outside its commune: "
                                                             "moved just inside"))
        geoms = list(geoms)
        for i, g in zip(good, cells.geometry.values, strict=True):
            geoms[i] = g
        report.notes.append(f"{len(good)} village polygons derived as Voronoi cells of the "
                            "centres, clipped to their commune (geo.villages)")
    v = parsed.values
    kinds = [v["kind"][i] for i in good]
    names = [strip_kind(v["name"][i]) for i in good]
    frame = gpd.GeoDataFrame({
        "level": "village", "code": [v["code"][i] for i in good], "kind": kinds, "name": names,
        "full_name": [f"{k.capitalize()} {n}" if k else n for k, n in zip(kinds, names,
                                                                             strict=True)],
        "parent_level": "commune", "parent_code": [communes[i][1] for i in good],
        "province_code": [communes[i][2] for i in good],
        "population": pd.array([v["population"][i] for i in good], dtype="Int64"),
        "households": pd.array([v["households"][i] for i in good], dtype="Int64"),
        "valid_from": ERA_2025,
        "source": f"import: {Path(report.source).name}"
                  + ("" if polygons else " (Voronoi cells of village centres)"),
    }, geometry=[geoms[i] for i in good], crs=4326)
    res = upsert_units(conn, prepare_units(frame))
    report.inserted, report.updated, report.unchanged = res.inserted, res.updated, res.unchanged
