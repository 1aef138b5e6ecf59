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
from data.boundaries.sources import read_vector

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


def gso_units(csv_path: Path | str, province_code: str | None = None) -> pd.DataFrame:
    """Provinces, districts and communes of the GSO list as unit rows (no geometry yet)."""
    src = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
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


def pre2025_frame(csv_path: Path | str, districts_path: Path | str | None,
                  provinces_path: Path | str | None, communes_2009_path: Path | str | None,
                  province_code: str | None = None) -> tuple[gpd.GeoDataFrame, MatchStats | None]:
    """All pre-2025 units with the best geometry we have, ready for prepare_units."""
    units = gso_units(csv_path, province_code)
    geom = np.full(len(units), None, dtype=object)
    pop = np.full(len(units), None, dtype=object)
    index = {(lv, c): i for i, (lv, c) in enumerate(zip(units["level"], units["code"], strict=True))}
    for path, level, col in ((provinces_path, "province", "ma_tinh"),
                             (districts_path, "district", "ma_huyen")):
        if path is None:
            continue
        shapes = read_vector(path)
        for code, g in zip(shapes[col].astype(str), shapes.geometry.values, strict=True):
            i = index.get((level, code))
            if i is not None:
                geom[i] = g
    stats = None
    extra = []
    if communes_2009_path is not None:
        c2009 = read_vector(communes_2009_path)
        gso_c = units[units["level"] == "commune"]
        if province_code:
            names = set(gso_c["_pkey"])
            c2009 = c2009[c2009["province_vn"].map(key).replace(PROVINCE_RENAMES).isin(names)]
            c2009 = c2009.reset_index(drop=True)
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
