"""Geometry of imported rows: points from lon/lat, x/y or the file's geometry; polygons repaired.

Why here and not in SQL: these checks need the user's row numbers and a reason per row (empty,
wrong type, swapped latitude/longitude, outside Vietnam) before anything touches the database.
Coordinates are converted with ``antt.crs.to_wgs84`` so VN-2000 always uses EPSG:6960.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS

from antt.crs import WGS84, to_wgs84
from data.importers.fields import LAT_ALIASES, LON_ALIASES, X_ALIASES, Y_ALIASES
from data.importers.read import SourceTable
from data.importers.report import ImportReport, Repair

# The same box as the CHECK constraints in the schema (mainland, Hoàng Sa and Trường Sa).
VN_BOX = (102.0, 6.0, 118.0, 23.5)


@dataclass
class Points:
    lon: np.ndarray  # NaN where a row has no point (allowed only when geometry is optional)
    lat: np.ndarray


def _inside_box(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = VN_BOX
    return (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)


def _number(v: object) -> float:
    if v is None:
        return np.nan
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    s = str(v).strip().replace(" ", "")
    if s.count(",") == 1 and "." not in s:
        s = s.replace(",", ".")  # Vietnamese decimal comma: 105,85
    try:
        return float(s)
    except ValueError:
        return np.inf  # marks "present but not a number"


def resolve_crs(source: SourceTable, crs_option: str | None, report: ImportReport) -> CRS | None:
    try:
        if crs_option:
            return CRS.from_user_input(crs_option)
    except Exception:  # noqa: BLE001 - pyproj raises several types for bad input
        report.add(None, "crs", f"Hệ tọa độ không hợp lệ: {crs_option}",
                   f"Unknown CRS: {crs_option}", crs_option)
        return None
    return source.crs or CRS.from_epsg(WGS84)


def read_points(source: SourceTable, crs: CRS | None, mapping: dict[str, str],
                report: ImportReport, required: bool = True) -> Points:
    """Points in EPSG:4326 for every row, with one Issue per bad row."""
    n = len(source.rows)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    if crs is None:
        return Points(lon, lat)
    if source.geometry is not None and not ({"lon", "x"} & set(mapping)):
        xs, ys = _points_from_geometry(source, report, required)
        xcol = ycol = None
    else:
        xcol, ycol = _coordinate_columns(source, crs, mapping, report, required)
        if xcol is None:
            return Points(lon, lat)
        xs = np.array([_number(v) for v in source.frame[xcol]], dtype=float)
        ys = np.array([_number(v) for v in source.frame[ycol]], dtype=float)
        for i in np.flatnonzero(np.isinf(xs) | np.isinf(ys)):
            report.add(source.rows[i], "geometry", "Tọa độ không phải là số",
                       "Coordinate is not a number",
                       f"{source.frame[xcol][i]}, {source.frame[ycol][i]}")
        missing = np.isnan(xs) | np.isnan(ys)
        if required:
            for i in np.flatnonzero(missing & ~(np.isinf(xs) | np.isinf(ys))):
                report.add(source.rows[i], "geometry", "Thiếu tọa độ", "Missing coordinates")
    ok = np.isfinite(xs) & np.isfinite(ys)
    if ok.any():
        tr = to_wgs84(crs.to_wkt())
        lon[ok], lat[ok] = tr.transform(xs[ok], ys[ok])
    inside = _inside_box(lon, lat)
    for i in np.flatnonzero(ok & ~inside):
        if crs.is_geographic and _inside_box(np.array([lat[i]]), np.array([lon[i]]))[0]:
            report.add(source.rows[i], "geometry",
                       "Kinh độ và vĩ độ bị đảo ngược (đổi chỗ thì điểm nằm trong Việt Nam)",
                       "Longitude and latitude are swapped (swapped back, the point is in "
                       "Vietnam)", f"{xs[i]}, {ys[i]}")
        else:
            report.add(source.rows[i], "geometry", "Điểm nằm ngoài lãnh thổ Việt Nam",
                       "The point is outside Vietnam", f"{xs[i]}, {ys[i]}")
        lon[i] = lat[i] = np.nan
    return Points(lon, lat)


def _coordinate_columns(source: SourceTable, crs: CRS, mapping: dict[str, str],
                        report: ImportReport, required: bool) -> tuple[str | None, str | None]:
    cols = set(source.frame.columns)

    def pick(name: str, aliases: tuple[str, ...]) -> str | None:
        if name in mapping:
            return mapping[name] if mapping[name] in cols else None
        return next((a for a in aliases if a in cols), None)

    if crs.is_geographic:
        x, y = pick("lon", LON_ALIASES), pick("lat", LAT_ALIASES)
        if x is None or y is None:
            x, y = pick("x", X_ALIASES), pick("y", Y_ALIASES)
    else:
        x, y = pick("x", X_ALIASES), pick("y", Y_ALIASES)
        if x is None or y is None:
            x, y = pick("lon", LON_ALIASES), pick("lat", LAT_ALIASES)
    if (x is None or y is None) and required:
        report.add(None, "geometry",
                   "Thiếu cột tọa độ (kinh_do/vi_do, lon/lat hoặc x/y)",
                   "Missing coordinate columns (kinh_do/vi_do, lon/lat or x/y)")
    if x is None or y is None:
        return None, None
    return x, y


def _points_from_geometry(source: SourceTable, report: ImportReport,
                          required: bool) -> tuple[np.ndarray, np.ndarray]:
    geoms = np.asarray(source.geometry.values, dtype=object)
    n = len(geoms)
    xs = np.full(n, np.nan)
    ys = np.full(n, np.nan)
    for i, g in enumerate(geoms):
        row = source.rows[i]
        if i in source.broken:
            report.add(row, "geometry", f"Hình học hỏng: {source.broken[i]}",
                       f"Broken geometry: {source.broken[i]}")
            continue
        if g is None or g.is_empty:
            if required:
                report.add(row, "geometry", "Hình học rỗng", "Empty geometry")
            continue
        if g.geom_type == "MultiPoint" and len(g.geoms) == 1:
            g = g.geoms[0]
        if g.geom_type != "Point":
            report.add(row, "geometry", f"Sai loại hình học: {g.geom_type}, cần Point",
                       f"Wrong geometry type: {g.geom_type}, expected Point")
            continue
        if not (np.isfinite(g.x) and np.isfinite(g.y)):
            report.add(row, "geometry", "Hình học hỏng (tọa độ không hữu hạn)",
                       "Broken geometry (non-finite coordinates)")
            continue
        xs[i], ys[i] = g.x, g.y
    return xs, ys


def read_polygons(source: SourceTable, crs: CRS | None, report: ImportReport) -> list:
    """MultiPolygons in EPSG:4326 (None for bad rows); invalid ones repaired and reported."""
    n = len(source.rows)
    out: list = [None] * n
    if source.geometry is None:
        report.add(None, "geometry", "Tệp không có hình học (cần GeoJSON/GPKG/Shapefile)",
                   "The file has no geometry (needs GeoJSON/GPKG/Shapefile)")
        return out
    if crs is None:
        return out
    tr = to_wgs84(crs.to_wkt())
    for i, g in enumerate(np.asarray(source.geometry.values, dtype=object)):
        row = source.rows[i]
        if i in source.broken:
            report.add(row, "geometry", f"Hình học hỏng: {source.broken[i]}",
                       f"Broken geometry: {source.broken[i]}")
            continue
        if g is None or g.is_empty:
            report.add(row, "geometry", "Hình học rỗng", "Empty geometry")
            continue
        if g.geom_type not in ("Polygon", "MultiPolygon"):
            report.add(row, "geometry", f"Sai loại hình học: {g.geom_type}, cần Polygon",
                       f"Wrong geometry type: {g.geom_type}, expected Polygon")
            continue
        if not shapely.is_valid(g):
            reason = shapely.is_valid_reason(g)
            fixed = shapely.make_valid(g)
            polys = shapely.get_parts(fixed)
            polys = [p for p in polys if p.geom_type in ("Polygon", "MultiPolygon") and p.area > 0]
            if not polys:
                report.add(row, "geometry", f"Hình học hỏng, không sửa được ({reason})",
                           f"Broken geometry that cannot be repaired ({reason})")
                continue
            g = shapely.union_all(polys)
            source_repairs(report, row, f"make_valid: {reason}")
        if g.geom_type == "Polygon":
            g = shapely.MultiPolygon([g])
        g = shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
        b = g.bounds
        if not (_inside_box(np.array([b[0], b[2]]), np.array([b[1], b[3]])).all()):
            report.add(row, "geometry", "Hình nằm ngoài lãnh thổ Việt Nam",
                       "The polygon is outside Vietnam")
            continue
        out[i] = g
    return out


def source_repairs(report: ImportReport, row: int, what: str) -> None:
    report.repairs.append(Repair(row, what))
