"""Geometry of imported rows: points from lon/lat, x/y or the file's geometry; polygons repaired.

Why here and not in SQL: these checks need the user's row numbers and a reason per row (empty,
wrong type, swapped latitude/longitude, outside Vietnam) before anything touches the database.
Coordinates are converted with ``antt.crs.to_wgs84`` so VN-2000 always uses EPSG:6960.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer

from antt.crs import METRIC_SRID, WGS84, to_wgs84
from data.importers.fields import LAT_ALIASES, LON_ALIASES, X_ALIASES, Y_ALIASES
from data.importers.read import SourceTable
from data.importers.report import ImportReport, Repair

# The same box as the CHECK constraints in the schema (mainland, Hoàng Sa and Trường Sa).
VN_BOX = (102.0, 6.0, 118.0, 23.5)


@dataclass
class Points:
    lon: np.ndarray  # NaN where a row has no point (allowed only when geometry is optional)
    lat: np.ndarray
    columns: tuple[str, ...] = ()  # the coordinate columns read (none for a vector geometry)


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
    used: tuple[str, ...] = ()
    if source.geometry is not None and not ({"lon", "x"} & set(mapping)):
        xs, ys = _points_from_geometry(source, report, required)
    else:
        xcol, ycol = _coordinate_columns(source, crs, mapping, report, required)
        if xcol is None:
            return Points(lon, lat)
        used = (xcol, ycol)
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
            # Metres read as degrees (a shapefile without .prj, a VN-2000 export): say --crs.
            hint_vi, hint_en = (". Tệp không ghi hệ tọa độ và tọa độ trông như mét (VN-2000): hãy "
                                "chỉ rõ --crs, ví dụ --crs EPSG:3405",
                                ". The file names no CRS and the coordinates look like metres "
                                "(VN-2000): give --crs, e.g. --crs EPSG:3405") if (
                source.crs is None and crs.is_geographic and max(abs(xs[i]), abs(ys[i])) > 1000
            ) else ("", "")
            report.add(source.rows[i], "geometry",
                       "Điểm nằm ngoài lãnh thổ Việt Nam; cần kinh độ 102–118, vĩ độ 6–23.5 (WGS 84)"
                       + hint_vi,
                       "The point is outside Vietnam; expected longitude 102–118 and latitude "
                       "6–23.5 (WGS 84)" + hint_en, f"{xs[i]}, {ys[i]}")
        lon[i] = lat[i] = np.nan
    return Points(lon, lat, used)


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


POLYGONAL = ("Polygon", "MultiPolygon")
EXPECTED_VI = "cần Polygon hoặc MultiPolygon"
EXPECTED_EN = "expected a Polygon or MultiPolygon"


@dataclass
class PolygonCheck:
    """What one feature's polygon turned out to be: a MultiPolygon in EPSG:4326, or a problem
    (Vietnamese, English), and the repair made on the way (with areas in m², EPSG:3405)."""

    geom: shapely.MultiPolygon | None = None
    vi: str | None = None
    en: str | None = None
    repair: str | None = None
    area_before_m2: float | None = None
    area_after_m2: float | None = None

    @property
    def ok(self) -> bool:
        return self.geom is not None


def _fail(vi: str, en: str) -> PolygonCheck:
    return PolygonCheck(vi=vi, en=en)


def broken_reason(message: str) -> tuple[str, str]:
    """GEOS's parse error for a feature, said as what is wrong and what is expected."""
    if "closed linestring" in message:
        return ("Vòng ranh giới không khép kín (điểm cuối khác điểm đầu); cần mỗi vòng kết thúc "
                "tại đúng điểm bắt đầu",
                "A ring is not closed (its last point differs from its first); expected every "
                "ring to end at the point where it starts")
    if "number of points in LinearRing" in message:
        return ("Vòng ranh giới có ít hơn 4 điểm; cần ít nhất 4 điểm (điểm đầu lặp lại ở cuối)",
                "A ring has fewer than 4 points; expected at least 4 (the first repeated last)")
    return (f"Hình học hỏng: {message}; {EXPECTED_VI} hợp lệ",
            f"Broken geometry: {message}; {EXPECTED_EN} that can be read")


@lru_cache
def _to_metric() -> Transformer:
    return Transformer.from_crs(WGS84, METRIC_SRID, always_xy=True)


def area_m2(g) -> float:
    """Area in m² in EPSG:3405 (VN-2000 / UTM 48N) of a lon/lat geometry (drawn area for an
    invalid one: the shoelace sum, where a bowtie's lobes cancel)."""
    if g is None or g.is_empty:
        return 0.0
    tr = _to_metric()
    metric = shapely.transform(g, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
    return float(shapely.area(metric))


def _polygon_parts(g) -> list:
    return [p for p in shapely.get_parts(g) if p.geom_type in POLYGONAL and not p.is_empty]


def _collection_parts(g) -> tuple[list, list[str]]:
    """Polygon parts of a (nested) GeometryCollection, and the types of the other parts."""
    polys, others = [], []
    for part in shapely.get_parts(g):
        if part.geom_type == "GeometryCollection":
            p, o = _collection_parts(part)
            polys += p
            others += o
        elif part.geom_type in POLYGONAL:
            polys += _polygon_parts(part)
        else:
            others.append(part.geom_type)
    return polys, others


def polygon_of(g, broken: str | None = None, transformer: Transformer | None = None, *,
               polygon_parts: bool = False) -> PolygonCheck:
    """Check one feature's geometry as an administrative area and make it a valid MultiPolygon
    in EPSG:4326. Why one function: communes, provinces, districts and villages are refused or
    repaired for the same reasons, with the same words.

    ``transformer`` converts the file's CRS to EPSG:4326 (None: already lon/lat).
    ``polygon_parts``: the user asked to keep only the polygon parts of a GeometryCollection.
    Self-crossing and other invalid polygons are repaired (shapely.make_valid, as PostGIS's
    ST_MakeValid), and the area before and after is measured in EPSG:3405.
    """
    if broken is not None:
        return _fail(*broken_reason(broken))
    if g is None:
        return _fail(f"Không có hình học (null); {EXPECTED_VI}", f"No geometry (null); {EXPECTED_EN}")
    kind = g.geom_type
    if g.is_empty:
        return _fail(f"Hình học rỗng ({kind} không có tọa độ); {EXPECTED_VI} có diện tích",
                     f"Empty geometry ({kind} with no coordinates); {EXPECTED_EN} with an area")
    repair = None
    if kind == "GeometryCollection":
        polys, others = _collection_parts(g)
        listed = ", ".join(dict.fromkeys([p.geom_type for p in polys] + others))
        if not polys:
            return _fail(f"Sai loại hình học: GeometryCollection ({listed}) không có phần đa giác;"
                         f" {EXPECTED_VI}",
                         f"Wrong geometry type: GeometryCollection ({listed}) has no polygon "
                         f"part; {EXPECTED_EN}")
        if not polygon_parts:
            return _fail(f"Sai loại hình học: GeometryCollection ({listed}); {EXPECTED_VI} "
                         "(thêm --polygon-parts để chỉ lấy các phần đa giác)",
                         f"Wrong geometry type: GeometryCollection ({listed}); {EXPECTED_EN} "
                         "(add --polygon-parts to keep only its polygon parts)")
        g = shapely.MultiPolygon([q for p in polys for q in shapely.get_parts(p)])
        repair = (f"GeometryCollection: kept {len(polys)} polygon part"
                  f"{'s' if len(polys) != 1 else ''}, dropped {len(others)} "
                  f"({', '.join(others) or '-'})")
    elif kind not in POLYGONAL:
        return _fail(f"Sai loại hình học: {kind}; {EXPECTED_VI}",
                     f"Wrong geometry type: {kind}; {EXPECTED_EN}")
    g = shapely.force_2d(g)
    coords = shapely.get_coordinates(g)
    if not np.isfinite(coords).all():
        return _fail("Tọa độ không hữu hạn (NaN hoặc vô cực); cần số thực",
                     "Non-finite coordinates (NaN or infinity); expected numbers")
    if transformer is not None:
        g = shapely.transform(g, lambda xy: np.column_stack(transformer.transform(xy[:, 0],
                                                                                  xy[:, 1])))
    b = g.bounds
    x0, y0, x1, y1 = VN_BOX
    if not all(np.isfinite(b)) or b[0] < x0 or b[2] > x1 or b[1] < y0 or b[3] > y1:
        shown = ", ".join(f"{v:.6g}" for v in b)
        return _fail(f"Nằm ngoài lãnh thổ Việt Nam: khung ({shown}); cần kinh độ {x0:g}–{x1:g}, "
                     f"vĩ độ {y0:g}–{y1:g} (WGS 84). Nếu tọa độ là mét (VN-2000), hãy chỉ rõ --crs",
                     f"Outside Vietnam: bounds ({shown}); expected longitude {x0:g}–{x1:g} and "
                     f"latitude {y0:g}–{y1:g} (WGS 84). If the coordinates are metres "
                     "(VN-2000), give --crs")
    out = PolygonCheck()
    if not shapely.is_valid(g):
        reason = shapely.is_valid_reason(g)
        fixed = _polygon_parts(shapely.make_valid(g))
        before = area_m2(g)
        if not fixed or sum(p.area for p in fixed) == 0:
            return _fail(f"Đa giác không hợp lệ ({reason}) và sửa xong không còn diện tích; "
                         f"{EXPECTED_VI} có diện tích",
                         f"Invalid polygon ({reason}) with no area left once repaired; "
                         f"{EXPECTED_EN} with an area")
        g = shapely.union_all(fixed) if len(fixed) > 1 else fixed[0]
        g = shapely.MultiPolygon(_polygon_parts(g)) if g.geom_type != "MultiPolygon" else g
        what = f"make_valid: {reason}"
        repair = f"{repair}; {what}" if repair else what
        out.area_before_m2, out.area_after_m2 = before, area_m2(g)
    elif repair is not None:
        out.area_after_m2 = area_m2(g)
        out.area_before_m2 = out.area_after_m2
    if g.geom_type == "Polygon":
        g = shapely.MultiPolygon([g])
    out.geom, out.repair = g, repair
    return out


def read_polygons(source: SourceTable, crs: CRS | None, report: ImportReport,
                  polygon_parts: bool = False) -> list:
    """MultiPolygons in EPSG:4326 (None for bad rows); invalid ones repaired and reported."""
    n = len(source.rows)
    out: list = [None] * n
    if source.geometry is None:
        report.add(None, "geometry", "Tệp không có hình học (cần GeoJSON/GPKG/Shapefile)",
                   "The file has no geometry (needs GeoJSON/GPKG/Shapefile)")
        return out
    if crs is None:
        return out
    tr = None if crs.equals(CRS.from_epsg(WGS84)) else to_wgs84(crs.to_wkt())
    for i, g in enumerate(np.asarray(source.geometry.values, dtype=object)):
        row = source.rows[i]
        check = polygon_of(g, source.broken.get(i), tr, polygon_parts=polygon_parts)
        if not check.ok:
            report.add(row, "geometry", check.vi, check.en)
            continue
        if check.repair:
            report.repairs.append(Repair(row, check.repair, area_before_m2=check.area_before_m2,
                                         area_after_m2=check.area_after_m2))
        out[i] = check.geom
    return out

