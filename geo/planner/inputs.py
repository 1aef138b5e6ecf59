"""The planner's inputs, built from the database as arrays: demand, candidates, fixed sites.

Everything spatial is done in SQL in EPSG:3405 (``antt.crs.METRIC_SRID``); what leaves SQL is
one row per demand unit, candidate or model, with its coordinates in metres (x, y) and in
degrees (lon, lat, exactly the stored point's, so a site saved from them lands on the same
metres). Incidents leave SQL only as counts per village or hexagon, never as points.

- **Demand**: villages valid on the date (their ``ST_PointOnSurface``, the point a village is
  reached at) or hexagons of a grid over the scope (side ``cell_m``, 250 m by default; the
  grid of ``geo.grid``). A hexagon's population, households and no-model flag are its
  village's spread evenly over the hexagons whose centres lie in that village (a village
  holding no centre gives all to the hexagon holding its point), so totals are kept exactly
  and a formula weighs a scope the same with either demand.
- **Weight** (``WeightFormula``): population x a + households x b + incidents in the period x c
  + institutions not "An toàn về ANTT" in the year x d + (no active model in the village) x e.
  For roles that see aggregates only, a unit's incident count under ``min_count`` (3) counts
  as 0, the same suppression as the analytics, so no weight reveals a small count.
- **Candidates**: village points, institutions, planned launch points, points the planner
  drew, and hexagon centres inside polygons the planner drew; minus those inside exclusion
  polygons; all inside the scope.
- **Fixed sites**: active models (``geo._db.ACTIVE_SQL``, all types unless one is named)
  within the radius of the scope: what they reach counts as covered.

Scope: a province, a commune (units valid on the date) or a drawn polygon (GeoJSON, EPSG:4326;
the villages whose point lies in it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from sqlalchemy import text

from antt.crs import METRIC_SRID, to_wgs84
from geo._db import ACTIVE_SQL, Bind, connect, frame, valid_on
from geo.filters import IncidentFilter
from geo.grid import hex_cells, hex_centre_sql, hex_centres, hex_index_sql
from geo.placement import incident_unit_sql
from geo.reach import DEFAULT_RADIUS_M, METRES_PER_DEGREE_FLOOR

CANDIDATE_KINDS = ("villages", "institutions", "launch_points", "drawn")


@dataclass(frozen=True)
class Scope:
    """Exactly one of a province code, a commune code or a polygon (GeoJSON geometry text)."""

    province_code: str | None = None
    commune_code: str | None = None
    polygon: str | None = None

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.province_code, self.commune_code, self.polygon)]
        if sum(given) != 1:
            raise ValueError("scope: give exactly one of province_code, commune_code, polygon")

    def params(self) -> dict[str, Any]:
        return {"province_code": self.province_code, "commune_code": self.commune_code,
                "scope_poly": self.polygon}

    def villages_where(self, v: str = "v", c: str = "c") -> str:
        """SQL condition on a village ``v`` (and its commune ``c``) being in scope."""
        if self.commune_code is not None:
            return f"{c}.code = :commune_code"
        if self.province_code is not None:
            return f"{c}.province_code = :province_code"
        return (f"{v}.geom && ST_GeomFromGeoJSON(:scope_poly) AND "
                f"ST_Covers(ST_SetSRID(ST_GeomFromGeoJSON(:scope_poly), 4326), ST_PointOnSurface({v}.geom))")

    def area_sql(self) -> str:
        """SQL for the scope's area: one row, g4326 and g (EPSG:3405)."""
        if self.polygon is not None:
            return (f"SELECT g4326, ST_Transform(g4326, {METRIC_SRID}) AS g FROM "
                    "(SELECT ST_SetSRID(ST_GeomFromGeoJSON(:scope_poly), 4326) AS g4326) t")
        level = "province" if self.province_code is not None else "commune"
        return f"""
        SELECT geom AS g4326, ST_Transform(geom, {METRIC_SRID}) AS g FROM admin_unit
        WHERE level = '{level}' AND code = :area_code AND {valid_on('admin_unit')}
        ORDER BY valid_from DESC LIMIT 1"""

    def area_params(self) -> dict[str, Any]:
        return {**self.params(), "area_code": self.province_code or self.commune_code}


@dataclass(frozen=True)
class WeightFormula:
    """weight = population*a + households*b + incidents*c + institutions_unsafe*d + no_model*e."""

    population: float = 1.0
    households: float = 0.0
    incidents: float = 0.0
    institutions_unsafe: float = 0.0
    no_model: float = 0.0

    TERMS = (("population", "dân số", "population"),
             ("households", "số hộ", "households"),
             ("incidents", "vụ việc trong kỳ", "incidents in the period"),
             ("institutions_unsafe", "cơ sở chưa đạt 'An toàn về ANTT'",
              "institutions not 'An toàn về ANTT'"),
             ("no_model", "[chưa có mô hình hoạt động]", "[no active model]"))

    def __post_init__(self) -> None:
        for name, *_ in self.TERMS:
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"weights.{name} must be finite and >= 0")
        if not any(getattr(self, name) > 0 for name, *_ in self.TERMS):
            raise ValueError("weights: at least one coefficient must be > 0")

    def describe(self) -> dict[str, str]:
        """The formula in words, Vietnamese and English (terms with a 0 coefficient left out)."""
        used = [(getattr(self, n), vi, en) for n, vi, en in self.TERMS if getattr(self, n) > 0]
        return {"vi": " + ".join(f"{a:g} × {vi}" for a, vi, _ in used),
                "en": " + ".join(f"{a:g} × {en}" for a, _, en in used)}

    def apply(self, df: pd.DataFrame) -> np.ndarray:
        """The weight of every row of a demand frame (missing population/households = 0)."""
        w = np.zeros(len(df))
        for name, *_ in self.TERMS:
            coef = getattr(self, name)
            if coef:
                w += coef * pd.to_numeric(df[name], errors="coerce").fillna(0).to_numpy(dtype=float)
        return w


def _suppress(counts: pd.Series, min_count: int | None) -> tuple[pd.Series, pd.Series]:
    counts = counts.fillna(0).astype("int64")
    if not min_count:
        return counts, pd.Series(False, index=counts.index)
    small = (counts > 0) & (counts < min_count)
    return counts.where(~small, 0), small


def scope_units(bind: Bind, on: date, scope: Scope) -> pd.DataFrame:
    """The communes the scope's villages belong to: id, code, name, province_code."""
    return frame(bind, f"""
    SELECT DISTINCT c.id, c.code, c.name, c.province_code
    FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id
    WHERE v.level = 'village' AND {valid_on('v')} AND {scope.villages_where()}
    ORDER BY c.code""", {"on": on, **scope.params()})


def villages(bind: Bind, on: date, scope: Scope, period: IncidentFilter | None = None,
             min_count: int | None = None) -> pd.DataFrame:
    """One row per village in scope valid on ``on``: id, code, name, commune_id, commune_code,
    commune_name, province_code, population, households, lon, lat, x, y (its point on surface),
    incidents (in ``period``; under ``min_count`` -> 0 and ``incidents_suppressed``),
    institutions, institutions_unsafe (no "An toàn về ANTT" record for the year of ``on``),
    models (active models hosted), no_model (1 when none)."""
    where, params = (period or IncidentFilter()).sql("i")
    df = frame(bind, f"""
    WITH v AS MATERIALIZED (
        SELECT v.id, v.code, COALESCE(v.full_name, v.name) AS name, c.id AS commune_id,
               c.code AS commune_code, COALESCE(c.full_name, c.name) AS commune_name,
               c.province_code, v.population, v.households, ST_PointOnSurface(v.geom) AS pt,
               ST_Envelope(v.geom) AS env
        FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id
        WHERE v.level = 'village' AND {valid_on('v')} AND {scope.villages_where()}
    ),
    bx AS MATERIALIZED (SELECT ST_SetSRID(ST_Extent(env), 4326) AS box FROM v),
    -- each incident in the village valid on :on that holds it (geo.placement: its stored village
    -- while valid, else by location), so incidents written before the 2025 merger count too
    inc AS (SELECT t.vid AS village_id, count(*) AS n FROM (
                SELECT {incident_unit_sql('i', 'village')} AS vid FROM incident i, bx
                WHERE i.geom && bx.box AND {where}) t
            WHERE t.vid IN (SELECT id FROM v) GROUP BY t.vid),
    ins AS (SELECT s.village_id, count(*) AS n,
                   count(*) FILTER (WHERE NOT COALESCE(iy.antt_safe, false)) AS unsafe
            FROM institution s LEFT JOIN institution_year iy ON iy.institution_id = s.id AND iy.year = :year
            WHERE s.village_id IN (SELECT id FROM v) GROUP BY s.village_id),
    mo AS (SELECT m.village_id, count(*) AS n FROM security_model m
           WHERE m.village_id IN (SELECT id FROM v) AND {ACTIVE_SQL} GROUP BY m.village_id)
    SELECT v.id, v.code, v.name, v.commune_id, v.commune_code, v.commune_name, v.province_code,
           v.population, v.households, ST_X(v.pt) AS lon, ST_Y(v.pt) AS lat,
           ST_X(ST_Transform(v.pt, {METRIC_SRID})) AS x, ST_Y(ST_Transform(v.pt, {METRIC_SRID})) AS y,
           COALESCE(inc.n, 0) AS incidents, COALESCE(ins.n, 0) AS institutions,
           COALESCE(ins.unsafe, 0) AS institutions_unsafe, COALESCE(mo.n, 0) AS models
    FROM v LEFT JOIN inc ON inc.village_id = v.id LEFT JOIN ins ON ins.village_id = v.id
    LEFT JOIN mo ON mo.village_id = v.id
    ORDER BY v.commune_code, v.code""", {"on": on, "year": on.year, **scope.params(), **params})
    df["incidents"], df["incidents_suppressed"] = _suppress(df["incidents"], min_count)
    df["no_model"] = (df["models"] == 0).astype("int64")
    for col in ("id", "commune_id", "institutions", "institutions_unsafe", "models"):
        df[col] = df[col].astype("int64")
    return df


def hexagons(bind: Bind, on: date, scope: Scope, cell_m: float = 250.0,
             period: IncidentFilter | None = None, min_count: int | None = None,
             village_frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per hexagon of side ``cell_m`` touching the scope: i, j, x, y, lon, lat,
    village_id (the village holding its centre, or None), population, households and no_model
    (its village's, spread evenly over the village's hexagons: see the module docstring),
    incidents (binned in SQL; suppressed like ``villages``), institutions_unsafe."""
    if not (cell_m > 0):
        raise ValueError("cell_m must be > 0")
    vf = village_frame if village_frame is not None else villages(bind, on, scope, period, min_count)
    area = scope.area_params()
    if scope.polygon is None:
        cells = hex_cells(bind, cell_m, scope.province_code, scope.commune_code, on)
        cells = cells[["i", "j", "x", "y"]].copy()
    else:
        cells = frame(bind, f"""
        WITH area AS MATERIALIZED ({scope.area_sql()}),
        parts AS MATERIALIZED (SELECT ST_Subdivide(area.g, 128) AS g FROM area)
        SELECT DISTINCT h.i, h.j FROM parts, ST_HexagonGrid(CAST(:hex_size AS float8), parts.g) h
        WHERE ST_Intersects(parts.g, h.geom) ORDER BY h.i, h.j""",
                      {**area, "on": on, "hex_size": float(cell_m)})
        cells = cells.astype({"i": "int64", "j": "int64"})
        cells["x"], cells["y"] = hex_centres(cells["i"].to_numpy(), cells["j"].to_numpy(), cell_m)
    cells = cells.reset_index(drop=True)
    if cells.empty:
        return cells.assign(lon=[], lat=[], village_id=[], population=[], households=[], incidents=[],
                            incidents_suppressed=[], institutions_unsafe=[], no_model=[])
    # the village holding each centre (villages in scope only): one small grid per village
    # (its polygon stays the same across the grid's cells, so PostGIS prepares it once)
    cx, cy = hex_centre_sql("h.i", "h.j")
    holder = frame(bind, f"""
    WITH v AS MATERIALIZED (SELECT id, code, ST_Transform(geom, {METRIC_SRID}) AS g FROM admin_unit
                            WHERE id = ANY(:ids))
    SELECT DISTINCT ON (h.i, h.j) h.i, h.j, v.id AS village_id
    FROM v, LATERAL ST_HexagonGrid(CAST(:hex_size AS float8), v.g) h
    WHERE ST_Covers(v.g, ST_SetSRID(ST_MakePoint({cx}, {cy}), {METRIC_SRID}))
    ORDER BY h.i, h.j, v.code""", {"ids": [int(v) for v in vf["id"]], "hex_size": float(cell_m)})
    cells = cells.merge(holder.astype({"i": "int64", "j": "int64", "village_id": "int64"}),
                        on=["i", "j"], how="left")
    village_of = cells.pop("village_id").fillna(-1).to_numpy(dtype=np.int64)
    cells["village_id"] = pd.Series(village_of, dtype="Int64").mask(village_of < 0)
    # spread each village's population, households and no-model flag over its hexagons, keeping
    # totals (a village holding no centre gives all to the hexagon holding its point)
    tree = cKDTree(cells[["x", "y"]].to_numpy())
    spread = np.zeros((len(cells), 3))
    counts = pd.Series(village_of[village_of >= 0]).value_counts()
    for row in vf.itertuples():
        vid = int(row.id)
        share = np.flatnonzero(village_of == vid) if vid in counts.index else \
            np.array([tree.query([row.x, row.y])[1]])
        values = np.array([0 if pd.isna(row.population) else float(row.population),
                           0 if pd.isna(row.households) else float(row.households), float(row.no_model)])
        spread[share] += values / len(share)
    cells["population"], cells["households"], cells["no_model"] = spread[:, 0], spread[:, 1], spread[:, 2]
    # incidents binned to hexagons in SQL: counts only leave the database. Every cell counts all
    # the incidents it holds, not only those inside the scope: a cell is a whole hexagon of the
    # fixed grid, so its count cannot be cut by where a drawn polygon's edge runs (moving the edge
    # across a cell would otherwise reveal where each incident lies). The box is the scope's,
    # grown by two sides of a hexagon (a cell touching the scope lies within that distance).
    where, params = (period or IncidentFilter()).sql("i")
    hi, hj = hex_index_sql("p.x", "p.y")
    binned = frame(bind, f"""
    WITH area AS MATERIALIZED ({scope.area_sql()}),
    p AS MATERIALIZED (
        SELECT ST_X(i.geom_m) AS x, ST_Y(i.geom_m) AS y FROM incident i, area
        WHERE i.geom && ST_Expand(area.g4326, :cell_deg) AND {where})
    SELECT {hi} AS i, {hj} AS j, count(*) AS n FROM p GROUP BY 1, 2""",
                   {**area, **params, "on": on, "hex_size": float(cell_m),
                    "cell_deg": 2.0 * float(cell_m) / METRES_PER_DEGREE_FLOOR})
    cells = cells.merge(binned.astype({"i": "int64", "j": "int64"}), on=["i", "j"], how="left")
    cells["incidents"], cells["incidents_suppressed"] = _suppress(cells.pop("n"), min_count)
    inst = institutions(bind, on, scope)
    unsafe = np.zeros(len(cells), dtype=np.int64)
    points = inst.loc[~inst["safe"], ["x", "y"]].to_numpy()
    if len(points):  # the hexagon holding each (the nearest centre: hexagons are Voronoi cells)
        np.add.at(unsafe, tree.query(points)[1], 1)
    cells["institutions_unsafe"] = unsafe
    lon, lat = to_wgs84(METRIC_SRID).transform(cells["x"].to_numpy(), cells["y"].to_numpy())
    cells["lon"], cells["lat"] = np.asarray(lon), np.asarray(lat)
    return cells


def institutions(bind: Bind, on: date, scope: Scope) -> pd.DataFrame:
    """Institutions in scope (their village in scope, or inside the polygon): id, kind, name,
    village_id, lon, lat, x, y, safe (certified "An toàn về ANTT" for the year of ``on``)."""
    if scope.polygon is None:
        cond = f"s.village_id IN (SELECT v.id FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id " \
               f"WHERE v.level = 'village' AND {valid_on('v')} AND {scope.villages_where()})"
    else:
        cond = ("s.geom && ST_GeomFromGeoJSON(:scope_poly) AND "
                "ST_Covers(ST_SetSRID(ST_GeomFromGeoJSON(:scope_poly), 4326), s.geom)")
    df = frame(bind, f"""
    SELECT s.id, s.kind, s.name, s.village_id, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat,
           ST_X(ST_Transform(s.geom, {METRIC_SRID})) AS x, ST_Y(ST_Transform(s.geom, {METRIC_SRID})) AS y,
           COALESCE(iy.antt_safe, false) AS safe
    FROM institution s LEFT JOIN institution_year iy ON iy.institution_id = s.id AND iy.year = :year
    WHERE {cond} ORDER BY s.id""", {"on": on, "year": on.year, **scope.params()})
    df["safe"] = df["safe"].astype(bool)
    return df


@dataclass(frozen=True)
class CandidateRequest:
    """Which candidates: kinds among CANDIDATE_KINDS, drawn points [(lon, lat)], drawn polygons
    and exclusion polygons (GeoJSON geometry texts), the hexagon side inside drawn polygons."""

    kinds: tuple[str, ...] = ("villages",)
    points: tuple[tuple[float, float], ...] = ()
    polygons: tuple[str, ...] = ()
    exclusions: tuple[str, ...] = ()
    cell_m: float = 250.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = set(self.kinds) - set(CANDIDATE_KINDS)
        if bad:
            raise ValueError(f"candidates.kinds: unknown {sorted(bad)}; use {CANDIDATE_KINDS}")


def candidates(bind: Bind, on: date, scope: Scope, req: CandidateRequest) -> pd.DataFrame:
    """Candidate sites inside the scope: kind ('village', 'institution', 'launch_point',
    'drawn_point', 'drawn_area'), ref_id, name, lon, lat, x, y; none inside an exclusion
    polygon; one per position (the first kind listed wins)."""
    parts = []
    if "villages" in req.kinds:
        parts.append(f"""
        SELECT 1 AS o, 'village' AS kind, v.id AS ref_id, COALESCE(v.full_name, v.name) AS name,
               ST_PointOnSurface(v.geom) AS pt
        FROM admin_unit v JOIN admin_unit c ON c.id = v.parent_id
        WHERE v.level = 'village' AND {valid_on('v')} AND {scope.villages_where()}""")
    if "institutions" in req.kinds:
        parts.append("""
        SELECT 2, 'institution', s.id, s.name, s.geom FROM institution s, area
        WHERE s.geom && area.g4326""")
    if "launch_points" in req.kinds:
        parts.append("""
        SELECT 3, 'launch_point', l.id, l.name, COALESCE(l.geom, ST_PointOnSurface(v.geom))
        FROM launch_point l LEFT JOIN admin_unit v ON v.id = l.village_id, area
        WHERE l.status = 'planned' AND COALESCE(l.geom, v.geom) && area.g4326""")
    if "drawn" in req.kinds and req.points:
        parts.append("""
        SELECT 4, 'drawn_point', d.k, 'Điểm vẽ / drawn point ' || d.k,
               ST_SetSRID(ST_MakePoint(d.lon, d.lat), 4326)
        FROM unnest(CAST(:pt_lons AS float8[]), CAST(:pt_lats AS float8[]))
             WITH ORDINALITY AS d(lon, lat, k)""")
    if "drawn" in req.kinds and req.polygons:
        parts.append(f"""
        SELECT 5, 'drawn_area', h.k, 'Ô lục giác / hexagon ' || h.i || ',' || h.j,
               ST_Transform(ST_Centroid(h.geom), 4326)
        FROM (SELECT p.k, ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(p.gj), 4326), {METRIC_SRID}) AS g
              FROM unnest(CAST(:polys AS text[])) WITH ORDINALITY AS p(gj, k)) poly,
             LATERAL (SELECT poly.k, hg.i, hg.j, hg.geom
                      FROM ST_HexagonGrid(CAST(:cand_cell AS float8), poly.g) hg
                      WHERE ST_Covers(poly.g, ST_Centroid(hg.geom))) h""")
    if not parts:
        return pd.DataFrame(columns=["kind", "ref_id", "name", "lon", "lat", "x", "y"])
    params = {**scope.area_params(), "on": on, "pt_lons": [float(p[0]) for p in req.points],
              "pt_lats": [float(p[1]) for p in req.points], "polys": list(req.polygons),
              "excl": list(req.exclusions), "cand_cell": float(req.cell_m)}
    excl = ("AND NOT EXISTS (SELECT 1 FROM unnest(CAST(:excl AS text[])) e(gj) "
            "WHERE ST_Covers(ST_SetSRID(ST_GeomFromGeoJSON(e.gj), 4326), a.pt))") if req.exclusions else ""
    df = frame(bind, f"""
    WITH area AS MATERIALIZED ({scope.area_sql()}),
    a(o, kind, ref_id, name, pt) AS ({' UNION ALL '.join(parts)})
    SELECT DISTINCT ON (ST_X(a.pt), ST_Y(a.pt)) a.kind, a.ref_id, a.name,
           ST_X(a.pt) AS lon, ST_Y(a.pt) AS lat,
           ST_X(ST_Transform(a.pt, {METRIC_SRID})) AS x, ST_Y(ST_Transform(a.pt, {METRIC_SRID})) AS y, a.o
    FROM a, area
    WHERE a.pt && area.g4326 AND ST_Covers(area.g4326, a.pt) {excl}
    ORDER BY ST_X(a.pt), ST_Y(a.pt), a.o, a.ref_id""", params)
    df = df.sort_values(["o", "ref_id"], kind="stable").drop(columns=["o"]).reset_index(drop=True)
    df["ref_id"] = df["ref_id"].astype("int64")
    return df


def fixed_sites(bind: Bind, on: date, scope: Scope, radius_m: float,
                model_type: str | None = None) -> pd.DataFrame:
    """Active models on ``on`` (of ``model_type``, else all) within ``radius_m`` of the scope:
    id, type_code, name, village_id, lon, lat, x, y."""
    return frame(bind, f"""
    WITH area AS MATERIALIZED ({scope.area_sql()})
    SELECT m.id, m.type_code, m.name, m.village_id, ST_X(m.geom) AS lon, ST_Y(m.geom) AS lat,
           ST_X(ST_Transform(m.geom, {METRIC_SRID})) AS x, ST_Y(ST_Transform(m.geom, {METRIC_SRID})) AS y
    FROM security_model m, area
    WHERE m.geom && ST_Expand(area.g4326, :r_deg) AND {ACTIVE_SQL}
      AND (CAST(:mtype AS text) IS NULL OR m.type_code = :mtype)
      AND ST_DWithin(ST_Transform(m.geom, {METRIC_SRID}), area.g, :r)
    ORDER BY m.id""", {**scope.area_params(), "on": on, "r": float(radius_m),
                       "r_deg": float(radius_m) / METRES_PER_DEGREE_FLOOR, "mtype": model_type})


def default_radius(bind: Bind, model_type: str | None) -> float:
    """The model type's reach (model_type.reach_m) when set, else the analytics' R (500 m)."""
    if model_type is None:
        return DEFAULT_RADIUS_M
    with connect(bind) as conn:
        reach = conn.execute(text("SELECT reach_m FROM model_type WHERE code = :c"),
                             {"c": model_type}).scalar()
    return float(reach) if reach else DEFAULT_RADIUS_M


def polygon_problem(bind: Bind, geojson: str) -> str | None:
    """None when ``geojson`` is a valid, non-empty (Multi)Polygon in EPSG:4326, else why not
    (PostGIS's ST_IsValidReason, or its parser's complaint). Runs in a savepoint: a geometry
    PostGIS cannot parse must not abort the caller's transaction."""
    try:
        json.loads(geojson)
    except ValueError:
        return "not JSON"
    from sqlalchemy.exc import DBAPIError

    with connect(bind) as conn:
        try:
            with conn.begin_nested():
                row = conn.execute(text("""
                    SELECT GeometryType(g) AS gtype, ST_IsValid(g) AS ok, ST_IsValidReason(g) AS why,
                           ST_IsEmpty(g) AS empty
                    FROM (SELECT ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326) AS g) t"""), {"g": geojson}).first()
        except DBAPIError as exc:
            return str(getattr(exc.orig, "pgerror", None) or exc.orig).strip().splitlines()[0]
    if row.gtype not in ("POLYGON", "MULTIPOLYGON"):
        return f"not a Polygon or MultiPolygon ({row.gtype})"
    if row.empty:
        return "empty"
    if not row.ok:
        return row.why
    return None
