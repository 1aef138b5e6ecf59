"""Where the real boundary files are, and readers that normalise them to unit frames.

The files stay in ``../shared/data/boundaries`` (see its SOURCES.md for licences); they are
read from there and never copied into this repository.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

from antt.settings import PROJECT_ROOT
from data.boundaries.units import ERA_2025


def shared_boundaries_dir() -> Path:
    """ANTT_SHARED_BOUNDARIES, else ../shared/data/boundaries beside the checkout."""
    env = os.environ.get("ANTT_SHARED_BOUNDARIES")
    if env:
        return Path(env)
    return PROJECT_ROOT.parent / "shared" / "data" / "boundaries"


def path_of(relative: str) -> Path:
    return shared_boundaries_dir() / relative


COMMUNES_2025_FULL = "post2025_communes_sapnhap/vn_communes_2025_fullres.geojson.gz"
COMMUNES_2025_SIMPLE = "post2025_communes_sapnhap/vn_communes_2025_simplified20m.geojson.gz"
COMMUNES_2025_HAIPHONG = "post2025_communes_sapnhap/haiphong_communes_2025_fullres.geojson"
PROVINCES_2025 = "post2025_communes_sapnhap/vn_provinces_2025.geojson.gz"
LINEAGE_2025 = "mapping_2025_dvhcvn/old_to_new_communes_2025.csv"
UNITS_PRE2025 = "pre2025_units_dvhcvn/vn_units_pre2025_20250301.csv"
COMMUNES_2009 = "pre2025_communes_2009_censusVN2009/vn_communes_2009_censusVN2009.geojson.gz"
COMMUNES_2009_HAIDUONG = "pre2025_communes_2009_censusVN2009/haiduong_communes_2009_censusVN2009.geojson"
DISTRICTS_PRE2025 = "pre2025_units_dvhcvn/vn_districts_gischinhphu.geojson.gz"
DISTRICTS_PRE2025_HAIDUONG = "pre2025_units_dvhcvn/haiduong_districts_gischinhphu.geojson"
PROVINCES_PRE2025 = "pre2025_units_dvhcvn/vn_provinces_gischinhphu.geojson.gz"


def vsi_path(path: Path | str) -> str:
    """The GDAL path: gzip and zip go through GDAL's virtual file systems."""
    p = str(path)
    if p.endswith(".gz") and not p.startswith("/vsigzip/"):
        p = "/vsigzip/" + p
    elif p.endswith(".zip") and not p.startswith("/vsizip/"):
        p = "/vsizip/" + p
    return p


def read_vector(path: Path | str, **kw) -> gpd.GeoDataFrame:
    """Read any vector file pyogrio knows; gzip and zip go through GDAL's virtual files."""
    return pyogrio.read_dataframe(vsi_path(path), **kw)


def communes_2025(path: Path | str, province_code: str | None = None) -> gpd.GeoDataFrame:
    """The sapnhap 2025 commune file as a unit frame (level 'commune', parent province)."""
    where = f"ma_tinh = '{province_code}'" if province_code else None
    src = read_vector(path, where=where)
    return _sapnhap_frame(src.drop(columns=src.geometry.name).to_dict("records"),
                          list(src.geometry.values), src.crs)


def provinces_2025(path: Path | str, province_code: str | None = None) -> gpd.GeoDataFrame:
    where = f"ma_tinh = '{province_code}'" if province_code else None
    src = read_vector(path, where=where)
    return gpd.GeoDataFrame(
        {
            "level": "province",
            "code": src["ma_tinh"].astype(str),
            "name": src["ten"],
            "full_name": src["ten_day_du"],
            "province_code": src["ma_tinh"].astype(str),
            "valid_from": ERA_2025,
            "source": "sapnhap.bando.com.vn via thanglequoc/vietnamese-provinces-database",
        },
        geometry=src.geometry.values,
        crs=src.crs,
    )


def _sapnhap_frame(props: list[dict], geoms: list, crs=4326) -> gpd.GeoDataFrame:
    """Sapnhap commune properties + geometries -> a unit frame (level 'commune')."""
    src = pd.DataFrame(props)
    return gpd.GeoDataFrame(
        {
            "level": "commune",
            "code": src["ma_xa"].astype(str),
            "name": src["ten"],
            "full_name": src["ten_day_du"],
            "parent_level": "province",
            "parent_code": src["ma_tinh"].astype(str),
            "province_code": src["ma_tinh"].astype(str),
            "valid_from": ERA_2025,
            "source": "sapnhap.bando.com.vn via thanglequoc/vietnamese-provinces-database",
        },
        geometry=geoms,
        crs=crs,
    )


def communes_2025_chunks(path: Path | str, province_code: str | None = None,
                         chunk: int = 200) -> Iterator[gpd.GeoDataFrame]:
    """The 2025 commune file in frames of CHUNK communes, read as a stream.

    Why: the full-resolution file is 190 MB of GeoJSON; GDAL parses it whole (about 15 s CPU
    and 400+ MB) before the first row can be written. GDAL writes one feature per line, so we
    stream lines, parse each feature's geometry with GEOS (shapely.from_geojson) and overlap
    reading with writing. Files in any other layout go through pyogrio in one piece.
    """
    p = str(path)
    opener = gzip.open if p.endswith(".gz") else open
    with opener(p, "rt", encoding="utf-8") as fh:
        head = fh.read(4096)
        if '\n{ "type": "Feature"' not in head:
            yield communes_2025(path, province_code)
            return
        fh.seek(0)
        props: list[dict] = []
        geoms: list = []
        for line in fh:
            s = line.strip().rstrip(",")
            if not s.startswith('{ "type": "Feature"'):
                continue
            cut = s.find(', "geometry":')
            feature = json.loads(s[:cut] + "}") if cut > 0 else json.loads(s)
            prop = feature["properties"]
            if province_code and str(prop.get("ma_tinh")) != province_code:
                continue
            props.append(prop)
            geoms.append(shapely.from_geojson(s))
            if len(props) == chunk:
                yield _sapnhap_frame(props, geoms)
                props, geoms = [], []
        if props:
            yield _sapnhap_frame(props, geoms)
