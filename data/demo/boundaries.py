"""The demo's province: real 2025 boundaries from a file, or a deterministic synthetic one.

Both write through ``data.boundaries.units.upsert_units`` on the caller's connection, so the
whole demo stays one transaction.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from sqlalchemy import Connection

from antt.crs import METRIC_SRID, pinned
from data.boundaries import sources
from data.boundaries.units import ERA_2025, prepare_units, upsert_units
from data.demo.names import SYNTHETIC_LABEL
from data.demo.sql import execute, read_frame

SYNTHETIC_PROVINCE = "99"  # no real province uses this code
SYNTHETIC_CENTRE = (105.95, 21.45)  # lon, lat: inland, north of the Red River delta
SYNTHETIC_RADIUS_M = 22_000.0
SYNTHETIC_GRID = (6, 5)  # 30 communes


class DemoBoundaryError(ValueError):
    """The boundary file cannot be used for the demo."""


def load_boundary_file(conn: Connection, path: Path | str, province_code: str | None = None) -> list[str]:
    """Load a 2025 commune file (sapnhap layout) and its provinces; return the province codes."""
    path = Path(path)
    if not path.exists():
        raise DemoBoundaryError(f"Không có tệp ranh giới / boundary file not found: {path}")
    try:
        communes = sources.communes_2025(path, province_code)
    except KeyError as exc:
        raise DemoBoundaryError(
            f"Tệp ranh giới thiếu cột {exc} / boundary file lacks column {exc}: expected the 2025 "
            "commune layout (ma_xa, ten, ten_day_du, ma_tinh)") from exc
    if communes.empty:
        raise DemoBoundaryError(f"Tệp ranh giới không có xã / no communes in {path}")
    codes = sorted(communes["province_code"].unique())
    provinces_path = sources.path_of(sources.PROVINCES_2025)
    provinces = None
    if provinces_path.exists():
        provinces = sources.provinces_2025(provinces_path)
        provinces = provinces[provinces["code"].isin(codes)]
    if provinces is not None and len(provinces) == len(codes):
        upsert_units(conn, prepare_units(provinces))
    else:  # no province file: the province is the union of its communes, made in SQL below
        stub = pd.DataFrame({"level": "province", "code": codes, "name": codes, "full_name": None,
                             "kind": None, "province_code": codes, "valid_from": ERA_2025})
        stub["full_name"] = [f"Tỉnh {c}" for c in codes]
        upsert_units(conn, prepare_units(gpd.GeoDataFrame(stub, geometry=[None] * len(codes))))
    upsert_units(conn, prepare_units(communes))
    execute(conn, """
        UPDATE admin_unit p SET geom = (SELECT ST_Multi(ST_Union(c.geom)) FROM admin_unit c
                                        WHERE c.level = 'commune' AND c.province_code = p.code
                                          AND c.valid_from = p.valid_from)
        WHERE p.level = 'province' AND p.geom IS NULL AND p.code = ANY(%(codes)s)""",
            {"codes": codes})
    return codes


def _blob(rng: np.random.Generator, to_lonlat: Transformer, cx: float, cy: float) -> shapely.Polygon:
    """A smooth irregular province outline (radius modulated by a few random harmonics)."""
    theta = np.linspace(0, 2 * np.pi, 73)[:-1]
    r = np.ones_like(theta)
    for k in (2, 3, 5):
        r += rng.uniform(0.04, 0.10) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    x, y = cx + SYNTHETIC_RADIUS_M * r * np.cos(theta), cy + SYNTHETIC_RADIUS_M * r * np.sin(theta)
    lon, lat = to_lonlat.transform(x, y)
    return shapely.Polygon(np.column_stack([lon, lat]))


def create_synthetic_province(conn: Connection, seed: int) -> list[str]:
    """~30 communes as Voronoi cells (computed in SQL, metres) of a jittered grid in a blob."""
    rng = np.random.default_rng([seed, 1])
    to_metric = Transformer.from_crs(4326, pinned(METRIC_SRID), always_xy=True)
    to_lonlat = Transformer.from_crs(pinned(METRIC_SRID), 4326, always_xy=True)
    cx, cy = to_metric.transform(*SYNTHETIC_CENTRE)
    outline = _blob(rng, to_lonlat, cx, cy)
    nx, ny = SYNTHETIC_GRID
    step_x, step_y = 2 * SYNTHETIC_RADIUS_M / nx, 2 * SYNTHETIC_RADIUS_M / ny
    gx, gy = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
    sx = cx - SYNTHETIC_RADIUS_M + gx.ravel() * step_x + rng.uniform(-0.3, 0.3, nx * ny) * step_x
    sy = cy - SYNTHETIC_RADIUS_M + gy.ravel() * step_y + rng.uniform(-0.3, 0.3, nx * ny) * step_y
    rows = read_frame(conn, """
        WITH outline AS (SELECT ST_Transform(ST_GeomFromText(%(wkt)s, 4326), %(srid)s) AS g),
        sites AS (
          SELECT ST_SetSRID(ST_MakePoint(x, y), %(srid)s) AS p
          FROM unnest(%(x)s::float8[], %(y)s::float8[]) AS t(x, y)
        ),
        cells AS (
          SELECT (ST_Dump(ST_VoronoiPolygons(ST_Collect(p), 0,
                  (SELECT ST_Expand(g, 5000) FROM outline)))).geom AS c
          FROM sites
        )
        SELECT ST_X(ST_Transform(ST_PointOnSurface(x.g), 4326)) AS lon,
               ST_Y(ST_Transform(ST_PointOnSurface(x.g), 4326)) AS lat,
               ST_Distance(ST_PointOnSurface(x.g), ST_Centroid(o.g)) AS dist_m,
               ST_AsBinary(ST_Transform(x.g, 4326)) AS wkb
        FROM cells, outline o, LATERAL (SELECT ST_Intersection(cells.c, o.g) AS g) x
        WHERE ST_Area(x.g) > 1e6
        """, {"wkt": outline.wkt, "srid": METRIC_SRID, "x": sx.tolist(), "y": sy.tolist()})
    # Reading order: north to south, west to east, so "Xã Mẫu 01" is the north-west one.
    rows = rows.assign(row=(-rows["lat"] / 0.05).round(), col=rows["lon"]).sort_values(["row", "col"])
    rows = rows.reset_index(drop=True)
    urban = set(rows["dist_m"].nsmallest(5).index)  # the central five are wards
    codes = [f"{SYNTHETIC_PROVINCE}{i + 1:03d}" for i in range(len(rows))]
    full_names = [f"{'Phường' if i in urban else 'Xã'} Mẫu {i + 1:02d} {SYNTHETIC_LABEL}"
                  for i in range(len(rows))]
    areas_km2 = gpd.GeoSeries(shapely.from_wkb([bytes(b) for b in rows["wkb"]]), crs=4326).to_crs(
        pinned(METRIC_SRID)).area / 1e6
    density = np.where(rows.index.isin(list(urban)), rng.uniform(4000, 9000, len(rows)),
                       rng.uniform(600, 1400, len(rows)))
    population = (areas_km2.to_numpy() * density).round().astype(int)
    communes = gpd.GeoDataFrame({
        "level": "commune", "code": codes, "name": full_names, "full_name": full_names,
        "parent_level": "province", "parent_code": SYNTHETIC_PROVINCE,
        "province_code": SYNTHETIC_PROVINCE, "population": population,
        "households": (population / 3.6).round().astype(int), "valid_from": ERA_2025,
        "source": "antt demo (synthetic)", "is_demo": True, "is_synthetic": True,
    }, geometry=shapely.from_wkb([bytes(b) for b in rows["wkb"]]), crs=4326)
    pname = f"Tỉnh Mẫu {SYNTHETIC_LABEL}"
    province = gpd.GeoDataFrame({
        "level": ["province"], "code": [SYNTHETIC_PROVINCE], "name": [pname], "full_name": [pname],
        "province_code": [SYNTHETIC_PROVINCE], "population": [int(population.sum())],
        "households": [int((population / 3.6).round().sum())], "valid_from": [ERA_2025],
        "source": ["antt demo (synthetic)"], "is_demo": [True], "is_synthetic": [True],
    }, geometry=[shapely.union_all(communes.geometry.values)], crs=4326)
    upsert_units(conn, prepare_units(province))
    upsert_units(conn, prepare_units(communes))
    return [SYNTHETIC_PROVINCE]
