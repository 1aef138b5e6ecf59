"""Demo villages: centre points per commune, Voronoi cells, names and 2009-census populations."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection

from data.boundaries import sources
from data.boundaries.units import prepare_units, upsert_units
from data.demo.names import SYNTHETIC_LABEL, village_names
from data.demo.sql import copy_frame, execute, read_frame
from geo.villages import voronoi_village_cells

PEOPLE_PER_HOUSEHOLD = (3.3, 4.1)
DENSITY_PER_KM2 = {"phường": 6000.0, "xã": 900.0}  # fallback when the census has no match


def demo_communes(conn: Connection, province_codes: list[str], on_date: dt.date) -> pd.DataFrame:
    """Communes of the demo provinces valid on the date, in code order (the generation order)."""
    return read_frame(conn, """
        SELECT id, code, name, full_name, kind, province_code, population, is_synthetic,
               valid_from, ST_Area(ST_Transform(geom, 3405)) / 1e6 AS area_km2
        FROM admin_unit
        WHERE level = 'commune' AND province_code = ANY(%(p)s) AND geom IS NOT NULL
          AND valid_from <= %(d)s AND (valid_to IS NULL OR %(d)s < valid_to)
        ORDER BY code""", {"p": province_codes, "d": on_date})


def census_population(conn: Connection, communes: pd.DataFrame) -> pd.Series:
    """2009 census population per commune id: census communes whose interior point falls in it.

    Why points, not areas: the 2009 communes nest almost exactly inside the 2025 merged
    communes, so a point-in-polygon join (on the subdivided parts) is both fast and right.
    """
    path = sources.path_of(sources.COMMUNES_2009)
    if not path.exists() or communes.empty:
        return pd.Series(dtype=float)
    bounds = read_frame(conn, "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                        "(SELECT ST_Extent(geom) AS e FROM admin_unit WHERE id = ANY(%(ids)s)) t",
                        {"ids": communes["id"].tolist()}).iloc[0].tolist()
    census = sources.read_vector(path, bbox=tuple(bounds), columns=["population"])
    if census.empty:
        return pd.Series(dtype=float)
    points = shapely.point_on_surface(census.geometry.values)
    execute(conn, "CREATE TEMP TABLE census_point (lon float8, lat float8, population float8) "
                  "ON COMMIT DROP")
    copy_frame(conn, "census_point", pd.DataFrame({
        "lon": shapely.get_x(points), "lat": shapely.get_y(points),
        "population": pd.to_numeric(census["population"], errors="coerce")}).dropna())
    found = read_frame(conn, """
        SELECT pt.unit_id AS id, sum(c.population) AS population
        FROM census_point c
        JOIN admin_unit_part pt ON ST_Intersects(pt.geom, ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326))
        WHERE pt.unit_id = ANY(%(ids)s)
        GROUP BY pt.unit_id""", {"ids": communes["id"].tolist()})
    execute(conn, "DROP TABLE census_point")
    return found.set_index("id")["population"].astype(float)


def create_villages(conn: Connection, communes: pd.DataFrame, per_commune: int, seed: int,
                    on_date: dt.date) -> pd.DataFrame:
    """Generate, tessellate and upsert villages; return them (id, code, commune, centre, people)."""
    rng = np.random.default_rng([seed, 2])
    spread = max(0, min(2, per_commune - 2))
    counts = np.maximum(1, per_commune + rng.integers(-spread, spread + 1, len(communes)))
    stage = pd.DataFrame({"commune_id": communes["id"].to_numpy(), "n": counts,
                          "seed": (seed * 7919 + np.arange(len(communes)) * 104729) % 2_000_000_000 + 1})
    centres = read_frame(conn, """
        SELECT s.commune_id, d.path[1] AS k, ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat
        FROM unnest(%(c)s::int[], %(n)s::int[], %(s)s::int[]) AS s(commune_id, n, seed)
        JOIN admin_unit u ON u.id = s.commune_id,
        LATERAL ST_Dump(ST_GeneratePoints(u.geom, s.n, s.seed)) d
        ORDER BY s.commune_id, k""", {"c": stage["commune_id"].tolist(), "n": stage["n"].tolist(),
                                      "s": stage["seed"].tolist()})
    census = census_population(conn, communes)
    people = communes.set_index("id")
    rows = []
    for cid, group in centres.groupby("commune_id", sort=False):
        c = people.loc[cid]
        n = len(group)
        names = village_names(c["kind"], n, rng)
        if c["is_synthetic"]:
            names = [f"{nm} {SYNTHETIC_LABEL}" for nm in names]
        total = c["population"] if pd.notna(c["population"]) else census.get(cid, np.nan)
        source = "2009 census" if pd.isna(c["population"]) and pd.notna(total) else "commune"
        if pd.isna(total) or total <= 0:
            density = DENSITY_PER_KM2.get(c["kind"], DENSITY_PER_KM2["xã"])
            total = max(3000.0, c["area_km2"] * density * rng.uniform(0.7, 1.3))
            source = "plausible"
        shares = rng.dirichlet(np.full(n, 4.0))
        pop = np.maximum(80, np.round(shares * total)).astype(int)
        households = np.round(pop / rng.uniform(*PEOPLE_PER_HOUSEHOLD, n)).astype(int)
        for i, (lon, lat) in enumerate(zip(group["lon"], group["lat"], strict=True)):
            rows.append({"code": f"{c['code']}.{i + 1:02d}", "commune_id": cid,
                         "commune_code": c["code"], "province_code": c["province_code"],
                         "full_name": names[i], "population": int(pop[i]),
                         "households": int(households[i]), "population_source": source,
                         "valid_from": c["valid_from"], "is_synthetic": bool(c["is_synthetic"]),
                         "lon": float(lon), "lat": float(lat)})
    villages = pd.DataFrame(rows)
    cells = voronoi_village_cells(conn, villages[["code", "commune_id", "lon", "lat"]], on_date)
    frame = gpd.GeoDataFrame({
        "level": "village", "code": villages["code"], "name": villages["full_name"],
        "full_name": villages["full_name"], "parent_level": "commune",
        "parent_code": villages["commune_code"], "province_code": villages["province_code"],
        "population": villages["population"], "households": villages["households"],
        "valid_from": villages["valid_from"], "source": "antt demo",
        "is_demo": True, "is_synthetic": villages["is_synthetic"],
    }, geometry=cells.geometry.values, crs=4326)
    execute(conn, "ANALYZE admin_unit")  # boundaries may have just been loaded: plan with real counts
    upsert_units(conn, prepare_units(frame))
    # Fresh statistics, or the incident join may scan points per part instead of parts per point.
    execute(conn, "ANALYZE admin_unit")
    execute(conn, "ANALYZE admin_unit_part")
    ids = read_frame(conn, "SELECT id, code FROM admin_unit WHERE level = 'village' AND is_demo "
                     "AND code = ANY(%(c)s)", {"c": villages["code"].tolist()})
    villages = villages.merge(ids, on="code", validate="one_to_one")
    villages["name"] = villages["full_name"]
    villages["commune_name"] = villages["commune_id"].map(people["full_name"])
    return villages
