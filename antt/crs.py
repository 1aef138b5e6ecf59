"""Coordinate reference systems, with VN-2000's datum shift pinned.

Why: a VN-2000 CRS without a pinned datum transformation silently lands ~200-400 m off in
WGS 84. We always pin EPSG:6960 ("VN-2000 to WGS 84 (2)", 7-parameter Helmert, ~1 m, no
grids) — the same parameters PostGIS carries as towgs84 for 3405/4756/5897 — in pyproj and in
the spatial_ref_sys rows we add.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

from pyproj import CRS, Transformer
from pyproj._crs import CoordinateOperation
from pyproj.crs import BoundCRS

VN2000_TO_WGS84 = 6960
VN2000_GEOG = 4756
# A metric CRS for all of Vietnam (UTM 48N on WGS 84): areas, distances, grids and kernels.
METRIC_SRID = 3405  # VN-2000 / UTM zone 48N
WGS84 = 4326


def is_vn2000(crs: CRS) -> bool:
    geodetic = crs.geodetic_crs
    return geodetic is not None and (geodetic.to_epsg() == VN2000_GEOG or "VN-2000" in geodetic.name)


@lru_cache
def pinned(crs_input: str | int) -> CRS:
    """The CRS, bound to WGS 84 through EPSG:6960 when it is VN-2000 based."""
    crs = CRS.from_user_input(crs_input)
    if is_vn2000(crs) and not crs.is_bound:
        op = CoordinateOperation.from_epsg(VN2000_TO_WGS84)
        return BoundCRS(crs, CRS.from_epsg(WGS84), op)
    return crs


@lru_cache
def to_wgs84(crs_input: str | int) -> Transformer:
    """A lon/lat transformer from the given CRS to EPSG:4326 (VN-2000 shift pinned)."""
    return Transformer.from_crs(pinned(crs_input), CRS.from_epsg(WGS84), always_xy=True)


def spatial_ref_sys_row(epsg: int) -> tuple[int, str, str]:
    """(srid, WKT1 with TOWGS84, proj4 with +towgs84) for inserting into spatial_ref_sys."""
    crs = pinned(epsg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return epsg, crs.to_wkt("WKT1_GDAL"), crs.to_proj4()
