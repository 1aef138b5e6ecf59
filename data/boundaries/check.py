"""Boundary files checked feature by feature before anything is written.

Why: a boundary file made outside the project can lack a column, be cut off, hold points or
GeometryCollections, unclosed rings, self-crossing polygons, duplicate or unknown codes, or
coordinates outside Vietnam. Each of these is reported with the file, the feature number (from 1)
and its code, the field, what is wrong and what is expected, in Vietnamese and English; the
import then writes nothing. Self-crossing polygons are repaired, and every repair is reported
with the area it changed (m², EPSG:3405). One checker serves communes and provinces of 2025
and the polygon files of the pre-2025 era.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
import shapely.errors
from pyproj import CRS

from antt.crs import WGS84, to_wgs84
from data.boundaries import sources
from data.boundaries.units import ERA_2025
from data.importers.fields import text_problem
from data.importers.geometry import polygon_of
from data.importers.read import (
    FileRejected,
    SourceTable,
    check_readable,
    looks_garbled,
    read_source,
    tidy_frame,
)
from data.importers.report import ImportReport, Repair

SAPNHAP = "sapnhap.bando.com.vn via thanglequoc/vietnamese-provinces-database"
FEATURE_PREFIX = '{ "type": "Feature"'
LEVEL_VI = {"province": "tỉnh", "district": "huyện", "commune": "xã", "village": "thôn"}


@dataclass(frozen=True)
class Layout:
    """The columns one kind of boundary file must hold, and the unit it makes."""

    level: str
    code: str                          # column with the unit's code
    name: str | None = None            # column with the bare name ('Thành Đông')
    full_name: str | None = None       # column with the full name ('Phường Thành Đông')
    parent: str | None = None          # column with the parent unit's code
    parent_level: str | None = None
    digits: int = 5                    # GSO codes: province 2, district 3, commune 5 digits
    parent_digits: int | None = None
    source: str = SAPNHAP

    @property
    def expected(self) -> list[str]:
        return [c for c in (self.code, self.name, self.full_name, self.parent) if c]


COMMUNES_2025 = Layout("commune", "ma_xa", "ten", "ten_day_du", "ma_tinh", "province", 5, 2)
PROVINCES_2025 = Layout("province", "ma_tinh", "ten", "ten_day_du", digits=2)


PREDECESSORS_2025 = "post2025_communes_sapnhap/vn_units_2025_predecessors_sapnhap.csv"


@lru_cache
def official_codes_2025() -> dict[str, frozenset[str]] | None:
    """Province and commune codes of the 2025 map, or None when no list is at hand.

    Two official-derived lists exist and disagree on two communes (Ba Chẽ 06970 / 06978,
    Ia Mơ 23737 / 23938): the GSO list behind the lineage file (dvhcvn) and the sapnhap
    predecessor list. A code in either is accepted; a code in neither is an error."""
    provinces: set[str] = set()
    communes: set[str] = set()
    lineage = sources.path_of(sources.LINEAGE_2025)
    if lineage.exists():
        with lineage.open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                provinces.add(r["new_ma_tinh"])
                communes.add(r["new_ma_xa"])
    predecessors = sources.path_of(PREDECESSORS_2025)
    if predecessors.exists():
        with predecessors.open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                (provinces if r["level"] == "tinh" else communes).add(r["ma"])
    if not communes:
        return None
    return {"province": frozenset(provinces), "commune": frozenset(communes)}


# -- reading ---------------------------------------------------------------------------------
def _rejected(path: Path, exc: Exception) -> FileRejected:
    return FileRejected(f"Không đọc được tệp {path.name}: {exc}; cần GeoJSON, GeoPackage hoặc "
                        "Shapefile (.zip) đầy đủ",
                        f"Cannot read {path.name}: {exc}; expected a complete GeoJSON, "
                        "GeoPackage or zipped Shapefile")


def _open_text(path: Path):
    return (gzip.open(path, "rt", encoding="utf-8-sig") if path.name.lower().endswith(".gz")
            else path.open("r", encoding="utf-8-sig"))


def read_chunks(path: Path | str, chunk: int = 200) -> Iterator[SourceTable]:
    """The file as tables of about CHUNK features; FileRejected when it cannot be read (which
    may come after some chunks: a file cut off at the end is found only there).

    GDAL's one-feature-per-line GeoJSON (the shared 190 MB national file) is streamed line by
    line so reading overlaps writing; any other file is read whole by GDAL (read_source)."""
    p = Path(path)
    check_readable(p)
    if p.name.lower().endswith((".geojson", ".json", ".geojson.gz", ".json.gz")):
        try:
            with _open_text(p) as fh:
                head = fh.read(4096)
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise _rejected(p, exc) from exc
        if "\n" + FEATURE_PREFIX in head and '"crs"' not in head:
            yield from _stream_lines(p, chunk)
            return
    table = read_source(p)
    if table.geometry is None:
        raise FileRejected(f"Tệp {p.name} không có hình học; cần GeoJSON, GeoPackage hoặc "
                           "Shapefile (.zip)",
                           f"{p.name} has no geometry; expected GeoJSON, GeoPackage or a zipped "
                           "Shapefile")
    yield table


def _parse_feature_line(s: str) -> tuple[dict | None, object, str | None, str | None]:
    """(properties, geometry, why GEOS refused the geometry, why the line is not a feature)."""
    cut = s.find(', "geometry":')
    feature = None
    geom_text = None
    if cut > 0 and s.endswith("}"):  # a line cut short is left to json.loads, which names it
        try:
            feature = json.loads(s[:cut] + "}")
            geom_text = s[cut + len(', "geometry":'): s.rfind("}")].strip()
        except ValueError:
            feature = None
    if feature is None:
        try:
            feature = json.loads(s)
        except ValueError as exc:
            return None, None, None, str(exc)
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            return None, None, None, "not a GeoJSON Feature"
        geom_text = json.dumps(feature.get("geometry"))
    props = feature.get("properties")
    props = props if isinstance(props, dict) else {}
    if not geom_text or geom_text == "null":
        return props, None, None, None
    try:
        return props, shapely.from_geojson(geom_text), None, None
    except shapely.errors.GEOSException as exc:
        return props, None, str(exc).split(": ", 1)[-1], None


def _table(props: list[dict], geoms: list, rows: list[int], broken: dict[int, str],
           unreadable: dict[int, str]) -> SourceTable:
    frame, _, original = tidy_frame(pd.DataFrame(props, index=range(len(props))), first_row=1)
    texts = " ".join(str(v) for c in frame.columns for v in frame[c] if isinstance(v, str))
    if looks_garbled(texts):
        raise FileRejected(
            "Văn bản trong tệp bị lỗi mã hóa (không phải UTF-8 tiếng Việt)",
            "Text in the file is garbled (not UTF-8 Vietnamese)")
    return SourceTable(frame, rows, geometry=gpd.GeoSeries(geoms, crs=WGS84),
                       crs=CRS.from_epsg(WGS84), encoding="utf-8", original_columns=original,
                       broken=broken, unreadable=unreadable)


def _stream_lines(p: Path, chunk: int) -> Iterator[SourceTable]:
    props: list[dict] = []
    geoms: list = []
    rows: list[int] = []
    broken: dict[int, str] = {}
    unreadable: dict[int, str] = {}
    tail: list[str] = []
    index = 0
    try:
        with _open_text(p) as fh:
            for line in fh:
                s = line.strip()
                # Header lines ('{', '"type": ...', '"features": [') come before the first
                # feature and the closing ']' '}' after the last. Any other line in between is
                # a feature, however it is spaced, or a named unreadable one: never skipped.
                if not s:
                    continue
                if not s.startswith(FEATURE_PREFIX):
                    header = index == 0 and (s == "{" or not s.startswith("{"))
                    if header or s in ("]", "}") or (index > 0 and tail):
                        tail.append(s)
                        continue
                tail = []
                index += 1
                prop, geom, why_geom, why_line = _parse_feature_line(s.rstrip(","))
                pos = len(rows)
                rows.append(index)
                props.append(prop or {})
                geoms.append(geom)
                if why_line is not None:
                    unreadable[pos] = why_line
                elif why_geom is not None:
                    broken[pos] = why_geom
                if len(rows) == chunk:
                    yield _table(props, geoms, rows, broken, unreadable)
                    props, geoms, rows, broken, unreadable = [], [], [], {}, {}
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise _rejected(p, exc) from exc
    if rows:
        yield _table(props, geoms, rows, broken, unreadable)
    if tail[-2:] != ["]", "}"]:
        raise FileRejected(
            f"Tệp {p.name} bị cắt cụt sau đối tượng thứ {index} (thiếu ']' và '}}' ở cuối); "
            "cần tệp GeoJSON đầy đủ",
            f"{p.name} is cut off after feature {index} (the closing ']' and '}}' are "
            "missing); expected the complete GeoJSON file")


# -- checking --------------------------------------------------------------------------------
def resolve_file_columns(file: str, expected: list[str], table: SourceTable,
                         mapping: dict[str, str], report: ImportReport) -> dict[str, str] | None:
    """Map every expected column to one of the file's (``--map`` first), or name what is
    missing with the columns found, the ones expected and the closest found names. Columns
    nobody reads are listed in the report (never silently dropped)."""
    found = list(table.frame.columns)
    original = table.original_columns
    shown_found = ", ".join(original.get(c, c) for c in found) or "-"
    shown_expected = ", ".join(expected)
    chosen: dict[str, str] = {}
    ok = True
    for col in expected:
        if col in mapping and (mapping[col] in found or col not in found):
            # (a --map given for one file of an import may not concern the other)
            actual = mapping[col]
            if actual in found:
                chosen[col] = actual
                continue
            report.add(None, col, f"Cột '{actual}' (--map {col}=...) không có trong tệp; có: "
                       f"{shown_found}", f"Column '{actual}' given with --map {col}=... is not in "
                       f"the file; found: {shown_found}", actual, file=file)
            ok = False
            continue
        if col in found:
            chosen[col] = col
            continue
        close = difflib.get_close_matches(col, [c for c in found if c not in expected], n=2,
                                          cutoff=0.6)
        hint_vi = hint_en = ""
        if close:
            names = [f"'{original.get(c, c)}'" for c in close]
            hint_vi = f". Có phải {' hoặc '.join(names)}? Dùng --map {col}=<cột>"
            hint_en = f". Did you mean {' or '.join(names)}? Use --map {col}=<column>"
        report.add(None, col, f"Thiếu cột '{col}'; có: {shown_found}; cần: {shown_expected}"
                   f"{hint_vi}", f"Missing column '{col}'; found: {shown_found}; expected: "
                   f"{shown_expected}{hint_en}", file=file)
        ok = False
    if not ok:
        return None
    used = set(chosen.values())
    report.unused_columns += [f"{file}: {original.get(c, c)}" for c in found if c not in used]
    return chosen


def _code_text(v: object, digits: int) -> tuple[str | None, bool]:
    """(code as text, whether leading zeros were restored). A number loses its leading zeros in
    spreadsheets and shapefiles (Hà Nội '01' -> 1); those are restored, text is kept as is."""
    if v is None:
        return None, False
    if isinstance(v, bool):
        return str(v), False
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer()):
        s = str(int(v))
        return (s.zfill(digits), len(s) < digits) if int(v) >= 0 else (s, False)
    return str(v).strip() or None, False


def _well_formed(code: str | None, digits: int | None) -> bool:
    return code is not None and code.isascii() and code.isdigit() and (
        digits is None or len(code) == digits)


@dataclass
class UnitChecker:
    """Checks the features of one boundary file, chunk by chunk, and keeps what it learnt
    (codes seen, for duplicates and as parents of the next file)."""

    path: Path
    layout: Layout
    report: ImportReport
    mapping: dict[str, str] = field(default_factory=dict)
    province_code: str | None = None
    parents: set[str] | None = None          # codes the parent column may name
    catalogue: frozenset[str] | None = None  # official codes of this level (None: not checked)
    allow_unlisted: bool = False
    polygon_parts: bool = False
    crs_option: str | None = None
    valid_from: object = ERA_2025
    columns: dict[str, str] | None = None
    seen: dict[str, int] = field(default_factory=dict)
    unlisted: list[str] = field(default_factory=list)
    padded: int = 0
    features: int = 0
    failed: bool = False                     # the file could not be read (FileRejected)

    @property
    def file(self) -> str:
        return self.path.name

    def _add(self, row: int | None, field_name: str, vi: str, en: str, value: object = None,
             code: object = None) -> None:
        self.report.add(row, field_name, vi, en, value, file=self.file, code=code)

    def resolve_columns(self, table: SourceTable) -> bool:
        self.columns = resolve_file_columns(self.file, self.layout.expected, table, self.mapping,
                                            self.report)
        return self.columns is not None

    def _crs_transformer(self, table: SourceTable):
        crs = table.crs
        if self.crs_option:
            try:
                crs = CRS.from_user_input(self.crs_option)
            except Exception:  # noqa: BLE001 - pyproj raises several types for bad input
                self._add(None, "crs", f"Hệ tọa độ không hợp lệ: {self.crs_option}",
                          f"Unknown CRS: {self.crs_option}", self.crs_option)
                return False
        if crs is None or crs.equals(CRS.from_epsg(WGS84), ignore_axis_order=True):
            return None
        return to_wgs84(crs.to_wkt())

    def _text(self, row: int, code: str | None, col: str | None, value: object) -> str | None:
        if col is None:
            return None
        if value is None or (isinstance(value, str) and not value.strip()):
            self._add(row, col, f"Thiếu giá trị '{col}'; cần tên đơn vị",
                      f"'{col}' is empty; expected the unit's name", None, code)
            return None
        text = str(value).strip()
        problem = text_problem(text)
        if problem:
            self._add(row, col, *problem, repr(text), code)
            return None
        return text

    def check(self, table: SourceTable) -> gpd.GeoDataFrame:
        """The good features of TABLE as a unit frame (errors for the others)."""
        lay = self.layout
        if self.columns is None and not self.resolve_columns(table):
            return _empty_frame()
        transformer = self._crs_transformer(table)
        if transformer is False:
            return _empty_frame()
        cols = self.columns
        frame = table.frame
        out: list[dict] = []
        geoms: list = []
        geom_values = table.geometry.values if table.geometry is not None else [None] * len(table.rows)
        for i, row in enumerate(table.rows):
            if i in table.unreadable:
                self._add(row, "file", f"Không đọc được đối tượng thứ {row} "
                          f"({table.unreadable[i]}); tệp bị cắt cụt hoặc hỏng?",
                          f"Feature {row} cannot be read ({table.unreadable[i]}); is the file "
                          "cut off or damaged?")
                continue
            code, padded = _code_text(frame[cols[lay.code]].iloc[i], lay.digits)
            parent = None
            if lay.parent:
                parent, parent_padded = _code_text(frame[cols[lay.parent]].iloc[i],
                                                   lay.parent_digits or 0)
                # Only a well-formed code of another province is left out: an empty or
                # malformed one is not known to be elsewhere, and is reported below.
                if self.province_code and parent != self.province_code and _well_formed(
                        parent, lay.parent_digits):
                    continue
            elif (self.province_code and lay.level == "province" and code != self.province_code
                  and _well_formed(code, lay.digits)):
                continue
            self.features += 1
            bad = False
            if code is None:
                self._add(row, lay.code, f"Thiếu mã {LEVEL_VI[lay.level]}; cần {lay.digits} chữ số",
                          f"The {lay.level} code is empty; expected {lay.digits} digits")
                bad = True
            elif not (code.isascii() and code.isdigit() and len(code) == lay.digits):
                self._add(row, lay.code, f"Mã {LEVEL_VI[lay.level]} '{code}' sai dạng; cần "
                          f"{lay.digits} chữ số (mã của Tổng cục Thống kê)",
                          f"The {lay.level} code '{code}' is malformed; expected {lay.digits} "
                          "digits (a General Statistics Office code)", code, code)
                bad = True
            elif code in self.seen:
                self._add(row, lay.code, f"Mã {code} trùng trong tệp (đã có ở đối tượng thứ "
                          f"{self.seen[code]}); cần mỗi mã một lần",
                          f"Duplicate code {code} in the file (first at feature "
                          f"{self.seen[code]}); expected each code once", code, code)
                bad = True
            else:
                self.seen[code] = row
                self.padded += padded
                if self.catalogue is not None and code not in self.catalogue:
                    if self.allow_unlisted:
                        self.unlisted.append(code)
                    else:
                        self._add(row, lay.code,
                                  f"Mã {LEVEL_VI[lay.level]} {code} không có trong danh mục mã "
                                  "chính thức 2025 (3.321 xã, 34 tỉnh: GSO, sapnhap); nếu là mã "
                                  "mới, dùng --allow-unlisted-codes",
                                  f"The {lay.level} code {code} is not in the official 2025 code "
                                  "lists (3,321 communes, 34 provinces: GSO, sapnhap); if it is a "
                                  "new code, use --allow-unlisted-codes", code, code)
                        bad = True
            if lay.parent:
                if parent is None:
                    self._add(row, lay.parent, f"Thiếu mã {LEVEL_VI[lay.parent_level]} cấp trên",
                              f"The parent {lay.parent_level} code is empty; expected "
                              f"{lay.parent_digits} digits", None, code)
                    bad = True
                elif self.parents is not None and parent not in self.parents:
                    self._add(row, lay.parent,
                              f"{LEVEL_VI[lay.parent_level].capitalize()} cấp trên {parent} không "
                              "tồn tại (không có trong tệp tỉnh hay cơ sở dữ liệu)",
                              f"The parent {lay.parent_level} {parent} does not exist (neither in "
                              "the provinces file nor in the database)", parent, code)
                    bad = True
                else:
                    self.padded += parent_padded
            name = self._text(row, code, cols.get(lay.name) if lay.name else None,
                              frame[cols[lay.name]].iloc[i] if lay.name else None)
            full = self._text(row, code, cols.get(lay.full_name) if lay.full_name else None,
                              frame[cols[lay.full_name]].iloc[i] if lay.full_name else None)
            if (lay.name and name is None) or (lay.full_name and full is None):
                bad = True
            poly = polygon_of(geom_values[i], table.broken.get(i), transformer or None,
                              polygon_parts=self.polygon_parts)
            if not poly.ok:
                self._add(row, "geometry", poly.vi, poly.en, None, code)
                continue
            if poly.repair:
                self.report.repairs.append(Repair(row, poly.repair, self.file, code,
                                                  poly.area_before_m2, poly.area_after_m2))
            if bad:
                continue
            unit = {"level": lay.level, "code": code, "name": name, "full_name": full,
                    "valid_from": self.valid_from, "source": lay.source}
            if lay.parent:
                unit |= {"parent_level": lay.parent_level, "parent_code": parent,
                         "province_code": parent if lay.parent_level == "province" else None}
            elif lay.level == "province":
                unit["province_code"] = code
            out.append(unit)
            geoms.append(poly.geom)
        if not out:
            return _empty_frame()
        return gpd.GeoDataFrame(pd.DataFrame(out), geometry=geoms, crs=WGS84)

    def finish(self) -> None:
        """Notes for what was accepted on request or restored (never silently)."""
        if self.unlisted:
            shown = ", ".join(self.unlisted[:20]) + (" …" if len(self.unlisted) > 20 else "")
            self.report.notes.append(
                f"{self.file}: {len(self.unlisted)} mã ngoài danh mục 2025 được nhận theo yêu cầu "
                f"/ codes not in the official 2025 list accepted on request: {shown}")
        if self.padded:
            self.report.notes.append(
                f"{self.file}: {self.padded} mã dạng số được thêm số 0 ở đầu / numeric codes "
                "given their leading zeros back")


def _empty_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"level": [], "code": []}, geometry=[], crs=WGS84)


def checked_frames(checker: UnitChecker, chunk: int = 200) -> Iterator[gpd.GeoDataFrame]:
    """Read CHECKER's file chunk by chunk and yield the good units of each chunk; a file that
    cannot be read becomes one error naming it."""
    try:
        for table in read_chunks(checker.path, chunk):
            frame = checker.check(table)
            if len(frame):
                yield frame
            if checker.columns is None:  # columns missing: the rest would repeat the same error
                return
    except FileRejected as exc:
        checker.failed = True
        checker._add(None, "file", exc.vi, exc.en, str(checker.path))
    finally:
        checker.finish()
