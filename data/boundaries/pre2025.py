"""The pre-1 July 2025 era: GSO code list, district/province polygons, 2009 commune polygons.

How the eras are represented (one admin_unit table, validity [valid_from, valid_to)):

* 2025 era: valid_from 2025-07-01, valid_to NULL (34 provinces, 3,321 communes, no districts).
* pre-2025 era: valid_from -infinity, valid_to 2025-07-01. Codes come from the GSO list of
  1 March 2025 (63 provinces / 696 districts / 10,047 communes). Province and district polygons
  come from gis.chinhphu.vn (~2019; Quảng Ninh missing). Commune polygons exist only from the
  2009 census package, which has no GSO codes: a 2009 commune is matched to a GSO commune by
  province + district + commune name folded without diacritics, then by province + commune name
  when that is unique. A matched GSO commune gets the 2009 polygon and 2009 population.
  Unmatched 2009 communes (merged away between 2009 and 2025) are kept as 2009-only units with
  code ``2009-<census id>`` and source saying so, valid like the rest of the era, so the
  pre-2025 commune layer still covers the country; unit_at on a pre-2025 date can then return
  such a unit.

Same code in both eras (e.g. 11113 Tân Kỳ before and after) is fine: the unique key is
(level, code, valid_from).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from antt.text import fold, strip_kind
from data.boundaries.check import Layout, UnitChecker, checked_frames, resolve_file_columns
from data.importers.geometry import polygon_of
from data.importers.read import FileRejected, read_source
from data.importers.report import ImportReport, Repair

ERA_END = dt.date(2025, 7, 1)
SOURCE_GSO = "GSO code list 2025-03-01 via daohoangson/dvhcvn"
SOURCE_GIS = "gis.chinhphu.vn (~2019) via daohoangson/dvhcvn"
SOURCE_2009 = "censusVN2009 (2009 boundary, 2009 census population)"
SOURCE_2009_ONLY = "censusVN2009 only: 2009 commune with no GSO code (merged before 2025)"

# Provinces whose name changed between 2009 and 2025 (folded bare names: 2009 -> GSO).
PROVINCE_RENAMES = {"thuathienhue": "hue"}


def key(name: object) -> str:
    """Bare folded name for matching: 'Phường 01' == 'P. 1'? no: 'Phường 01' == 'Phường 1'."""
    if not isinstance(name, str):
        return ""
    bare = fold(strip_kind(name))
    bare = re.sub(r"\b0+(\d)", r"\1", bare)
    return re.sub(r"[^a-z0-9]", "", bare)


@dataclass
class MatchStats:
    gso_communes: int
    polygons_2009: int
    matched_full: int
    matched_province: int
    unmatched_2009: int

    def as_text(self) -> str:
        return (f"2009 polygons {self.polygons_2009}: matched to GSO by province+district+name "
                f"{self.matched_full}, by province+name {self.matched_province}, kept as "
                f"2009-only {self.unmatched_2009}; GSO communes {self.gso_communes}")


GSO_COLUMNS = ["ma_tinh", "ten_tinh", "ma_huyen", "ten_huyen", "loai_huyen", "ma_xa", "ten_xa",
               "loai_xa"]
C2009_COLUMNS = ["commune_id", "province_vn", "district_vn", "commune_vn", "population"]
PROVINCES_PRE2025 = Layout("province", "ma_tinh", digits=2, source=SOURCE_GIS)
DISTRICTS_PRE2025 = Layout("district", "ma_huyen", parent="ma_tinh", parent_level="province",
                           digits=3, parent_digits=2, source=SOURCE_GIS)


def read_gso(csv_path: Path | str, report: ImportReport) -> pd.DataFrame | None:
    """The GSO code list, checked row by row (columns, code forms, duplicate commune codes,
    names); None when it has errors (each is in the report)."""
    file = Path(csv_path).name
    try:
        table = read_source(csv_path)
    except FileRejected as exc:
        report.add(None, "file", exc.vi, exc.en, str(csv_path), file=file)
        return None
    cols = resolve_file_columns(file, GSO_COLUMNS, table, {}, report)
    if cols is None:
        return None
    if not table.rows:
        report.add(None, "file", "Tệp chỉ có dòng tiêu đề, không có dòng dữ liệu nào",
                   "The file has a header but no data rows", file=file)
        return None
    for pos, cells in sorted(table.unreadable.items()):
        found, _, expected = cells.partition("/")
        report.add(table.rows[pos], "row", f"Dòng có {found} ô nhưng tiêu đề có {expected} cột "
                   "(tệp bị cắt cụt hoặc lệch cột?)", f"The row has {found} cells but the header "
                   f"has {expected} columns (is the file cut off or are columns shifted?)",
                   file=file)
    if table.unreadable:
        return None
    src = pd.DataFrame({c: ["" if v is None else str(v).strip() for v in table.frame[c]]
                        for c in GSO_COLUMNS})
    bad = False
    seen: dict[str, int] = {}
    for i, row in enumerate(table.rows):
        for col, digits, optional in (("ma_tinh", 2, False), ("ma_huyen", 3, False),
                                      ("ma_xa", 5, True)):
            v = src[col].iat[i]
            if v == "" and optional:
                continue
            if not (v.isascii() and v.isdigit() and len(v) == digits):
                report.add(row, col, f"Mã '{v}' sai dạng; cần {digits} chữ số",
                           f"Code '{v}' is malformed; expected {digits} digits", v, file=file,
                           code=v or None)
                bad = True
        code = src["ma_xa"].iat[i]
        if code:
            if code in seen:
                report.add(row, "ma_xa", f"Mã xã {code} trùng (đã có ở dòng {seen[code]})",
                           f"Duplicate commune code {code} (first at row {seen[code]})", code,
                           file=file, code=code)
                bad = True
            seen.setdefault(code, row)
        for col in ("ten_tinh", "ten_huyen") + (("ten_xa",) if code else ()):
            if not src[col].iat[i]:
                report.add(row, col, f"Thiếu tên '{col}'", f"'{col}' is empty", None, file=file,
                           code=code or None)
                bad = True
    return None if bad else src


def gso_units(src: pd.DataFrame | Path | str, province_code: str | None = None) -> pd.DataFrame:
    """Provinces, districts and communes of the GSO list as unit rows (no geometry yet)."""
    if not isinstance(src, pd.DataFrame):
        src = pd.read_csv(src, dtype=str, keep_default_na=False)
    if province_code:
        src = src[src["ma_tinh"] == province_code]
    common = {"valid_from": None, "valid_to": ERA_END, "source": SOURCE_GSO}
    prov = src.drop_duplicates("ma_tinh")
    provinces = pd.DataFrame({"level": "province", "code": prov["ma_tinh"],
                              "full_name": prov["ten_tinh"], "name": prov["ten_tinh"],
                              "kind": prov["ten_tinh"].map(_province_kind),
                              "province_code": prov["ma_tinh"], **common})
    dist = src.drop_duplicates("ma_huyen")
    districts = pd.DataFrame({"level": "district", "code": dist["ma_huyen"],
                              "full_name": dist["ten_huyen"], "name": dist["ten_huyen"],
                              "kind": dist["loai_huyen"].str.lower(),
                              "parent_level": "province", "parent_code": dist["ma_tinh"],
                              "province_code": dist["ma_tinh"], **common})
    com = src[src["ma_xa"] != ""]
    communes = pd.DataFrame({"level": "commune", "code": com["ma_xa"],
                             "full_name": com["ten_xa"], "name": com["ten_xa"],
                             "kind": com["loai_xa"].str.lower(),
                             "parent_level": "district", "parent_code": com["ma_huyen"],
                             "province_code": com["ma_tinh"], **common,
                             "_pkey": com["ten_tinh"].map(key), "_dkey": com["ten_huyen"].map(key),
                             "_ckey": com["ten_xa"].map(key)})
    return pd.concat([provinces, districts, communes], ignore_index=True)


def _population(value: object) -> int | None:
    """2009 census population; 0 means 'no figure' in this file (78 communes), not nobody."""
    if value is None or pd.isna(value) or int(value) <= 0:
        return None
    return int(value)


def _province_kind(full_name: str) -> str:
    return "thành phố" if full_name.lower().startswith("thành phố") else "tỉnh"


def match_2009(gso_communes: pd.DataFrame, c2009: gpd.GeoDataFrame) -> tuple[pd.Series, MatchStats]:
    """For every 2009 polygon (by position) the GSO commune code it matches, or None."""
    pk = c2009["province_vn"].map(key).replace(PROVINCE_RENAMES)
    dk = c2009["district_vn"].map(key)
    ck = c2009["commune_vn"].map(key)
    full = gso_communes["_pkey"] + "|" + gso_communes["_dkey"] + "|" + gso_communes["_ckey"]
    prov = gso_communes["_pkey"] + "|" + gso_communes["_ckey"]
    codes = gso_communes["code"].to_numpy()

    def unique_index(keys: pd.Series) -> dict[str, str]:
        counts = keys.value_counts()
        return {k: c for k, c in zip(keys, codes, strict=True) if counts[k] == 1}

    by_full, by_prov = unique_index(full), unique_index(prov)
    k_full = (pk + "|" + dk + "|" + ck)
    k_prov = (pk + "|" + ck)
    # A 2009 key that occurs twice is ambiguous: neither copy is matched.
    dup_full = k_full.duplicated(keep=False).to_numpy()
    dup_prov = k_prov.duplicated(keep=False).to_numpy()
    out: list[str | None] = []
    used: set[str] = set()
    n_full = n_prov = 0
    for i, (kf, kp) in enumerate(zip(k_full, k_prov, strict=True)):
        code = by_full.get(kf) if not dup_full[i] else None
        if code is not None and code not in used:
            n_full += 1
        else:
            code = by_prov.get(kp) if not dup_prov[i] else None
            if code is not None and code not in used:
                n_prov += 1
            else:
                code = None
        if code is not None:
            used.add(code)
        out.append(code)
    stats = MatchStats(len(gso_communes), len(c2009), n_full, n_prov,
                       sum(1 for c in out if c is None))
    return pd.Series(out, index=c2009.index, dtype=object), stats


def _polygons(path: Path | str, layout: Layout, gso_codes: set[str], report: ImportReport,
              province_code: str | None, polygon_parts: bool) -> dict[str, object]:
    """Checked polygons of a gis.chinhphu.vn file by code. Codes not in the GSO list (districts
    dissolved before 2025) are not imported, and the report says which."""
    checker = UnitChecker(Path(path), layout, report, province_code=province_code,
                          polygon_parts=polygon_parts)
    out: dict[str, object] = {}
    for frame in checked_frames(checker):
        out.update(zip(frame["code"], frame.geometry.values, strict=True))
    unknown = sorted(set(out) - gso_codes)
    if unknown:
        report.notes.append(f"{Path(path).name}: {len(unknown)} mã không có trong danh mục GSO, "
                            f"không nhập / codes not in the GSO list, not imported: "
                            f"{', '.join(unknown)}")
    return {c: g for c, g in out.items() if c in gso_codes}


def read_2009(path: Path | str, report: ImportReport, province_names: set[str] | None,
              polygon_parts: bool) -> gpd.GeoDataFrame | None:
    """The 2009 commune polygons (only those of the chosen province), checked feature by
    feature; None when the file has errors."""
    file = Path(path).name
    try:
        table = read_source(path)
    except FileRejected as exc:
        report.add(None, "file", exc.vi, exc.en, str(path), file=file)
        return None
    cols = resolve_file_columns(file, C2009_COLUMNS, table, {}, report)
    if cols is None:
        return None
    frame = table.frame
    keep = list(range(len(table.rows)))
    if province_names is not None:
        pk = frame["province_vn"].map(key).replace(PROVINCE_RENAMES)
        keep = [i for i in keep if pk.iat[i] in province_names]
    rows, geoms, ok = [], [], True
    seen: dict[int, int] = {}
    values = table.geometry.values if table.geometry is not None else [None] * len(table.rows)
    for i in keep:
        row = table.rows[i]
        cid, pop = frame["commune_id"].iat[i], frame["population"].iat[i]
        try:
            cid = int(cid)
        except (TypeError, ValueError):
            report.add(row, "commune_id", "commune_id không phải số nguyên",
                       "commune_id is not a whole number", cid, file=file)
            ok = False
            continue
        if cid in seen:
            report.add(row, "commune_id", f"commune_id {cid} trùng (đã có ở đối tượng {seen[cid]})",
                       f"Duplicate commune_id {cid} (first at feature {seen[cid]})", cid,
                       file=file, code=cid)
            ok = False
        seen.setdefault(cid, row)
        if pop is not None and not (isinstance(pop, (int, float)) and pop == pop):
            report.add(row, "population", "Dân số không phải số", "population is not a number",
                       pop, file=file, code=cid)
            ok = False
        check = polygon_of(values[i], table.broken.get(i), polygon_parts=polygon_parts)
        if not check.ok:
            report.add(row, "geometry", check.vi, check.en, file=file, code=cid)
            ok = False
            continue
        if check.repair:
            report.repairs.append(Repair(row, check.repair, file, str(cid), check.area_before_m2,
                                         check.area_after_m2))
        rows.append(i)
        geoms.append(check.geom)
    if not ok:
        return None
    out = frame.iloc[rows][C2009_COLUMNS].reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry=geoms, crs=4326)


def pre2025_frame(csv_path: Path | str, districts_path: Path | str | None,
                  provinces_path: Path | str | None, communes_2009_path: Path | str | None,
                  province_code: str | None = None, *, report: ImportReport | None = None,
                  polygon_parts: bool = False,
                  ) -> tuple[gpd.GeoDataFrame | None, MatchStats | None]:
    """All pre-2025 units with the best geometry we have, ready for prepare_units; (None, None)
    when any input has errors (every one is in REPORT)."""
    report = report if report is not None else ImportReport(kind="boundaries-pre2025",
                                                            source=str(csv_path))
    src = read_gso(csv_path, report)
    if src is None:
        return None, None
    units = gso_units(src, province_code)
    geom = np.full(len(units), None, dtype=object)
    pop = np.full(len(units), None, dtype=object)
    index = {(lv, c): i for i, (lv, c) in enumerate(zip(units["level"], units["code"], strict=True))}
    for path, layout in ((provinces_path, PROVINCES_PRE2025), (districts_path, DISTRICTS_PRE2025)):
        if path is None:
            continue
        codes = set(units.loc[units["level"] == layout.level, "code"])
        shapes = _polygons(path, layout, codes, report, province_code, polygon_parts)
        for code, g in shapes.items():
            geom[index[(layout.level, code)]] = g
    stats = None
    extra = []
    if communes_2009_path is not None:
        gso_c = units[units["level"] == "commune"]
        c2009 = read_2009(communes_2009_path, report,
                          set(gso_c["_pkey"]) if province_code else None, polygon_parts)
        if c2009 is None or report.errors:
            return None, None
        codes, stats = match_2009(gso_c, c2009)
        district_by_key = {
            (p, d): c for p, d, c in zip(gso_c["_pkey"], gso_c["_dkey"], gso_c["parent_code"],
                                         strict=True)}
        province_by_key = dict(zip(gso_c["_pkey"], gso_c["province_code"], strict=False))
        for j, code in enumerate(codes):
            row = c2009.iloc[j]
            if code is not None:
                i = index[("commune", code)]
                geom[i] = row.geometry
                pop[i] = _population(row["population"])
                units.loc[i, "source"] = f"{SOURCE_GSO}; polygon+population: {SOURCE_2009}"
                continue
            pk = key(row["province_vn"])
            pk = PROVINCE_RENAMES.get(pk, pk)
            district = district_by_key.get((pk, key(row["district_vn"])))
            name = row["commune_vn"] if isinstance(row["commune_vn"], str) else (
                f"Không tên / unnamed ({int(row['commune_id'])})")  # 2 polygons have no name
            extra.append({
                "level": "commune", "code": f"2009-{int(row['commune_id'])}",
                "full_name": name, "name": name, "kind": None,
                "parent_level": "district" if district else "province",
                "parent_code": district or province_by_key.get(pk),
                "province_code": province_by_key.get(pk), "valid_from": None,
                "valid_to": ERA_END, "source": SOURCE_2009_ONLY,
                "population": _population(row["population"]),
                "_geom": row.geometry})
    if report.errors:
        return None, None
    units["population"] = pop
    units = units.drop(columns=[c for c in units.columns if c.startswith("_")])
    frame = gpd.GeoDataFrame(units, geometry=list(geom), crs=4326)
    if extra:
        more = pd.DataFrame(extra)
        frame = pd.concat([frame, gpd.GeoDataFrame(more.drop(columns="_geom"),
                                                   geometry=list(more["_geom"]), crs=4326)],
                          ignore_index=True)
        frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=4326)
    from antt.text import kind_of

    frame["kind"] = [k if isinstance(k, str) and k else (kind_of(f) if isinstance(f, str) else None)
                     for k, f in zip(frame["kind"], frame["full_name"], strict=True)]
    frame["name"] = frame["name"].map(strip_kind)
    return frame, stats
