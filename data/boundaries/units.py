"""Set-based upsert of administrative units, shared by every boundary loader.

Why set-based: 3,321 full-resolution communes go through one COPY into a temporary table and
one INSERT ... ON CONFLICT, so a re-import never duplicates and the whole load is one
transaction (the caller's).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import Connection

from antt.text import fold, kind_of, strip_kind
from data.importers.stage import copy_line

UNIT_COLUMNS = [
    "level", "code", "kind", "name", "full_name", "name_search", "parent_level", "parent_code",
    "province_code", "population", "households", "valid_from", "valid_to", "source", "is_demo",
    "is_synthetic", "wkb",
]

ERA_2025 = dt.date(2025, 7, 1)  # the 2-tier map (34 provinces, no districts) starts here


@dataclass
class UpsertResult:
    inserted: int
    updated: int
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.updated


def prepare_units(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Fill derived columns (search form, kind, bare name) and encode geometry as hex WKB."""
    df = pd.DataFrame(frame.drop(columns=frame.geometry.name)).copy()
    if "full_name" not in df:
        df["full_name"] = df["name"]
    if "kind" not in df:
        df["kind"] = df["full_name"].map(lambda n: kind_of(n) if isinstance(n, str) else None)
    df["name"] = df["name"].map(strip_kind)
    df["name_search"] = df["name"].map(fold)
    for col, default in (("parent_level", None), ("parent_code", None), ("province_code", None),
                         ("population", None), ("households", None), ("valid_to", None),
                         ("source", None), ("is_demo", False), ("is_synthetic", False)):
        if col not in df:
            df[col] = default
    geoms = frame.geometry.values
    multi = [_as_multi(g) for g in geoms]
    df["wkb"] = [None if g is None else shapely.to_wkb(g, hex=True, output_dimension=2)
                 for g in multi]
    return df[UNIT_COLUMNS]


def _as_multi(g: shapely.Geometry | None) -> shapely.Geometry | None:
    if g is None or g.is_empty:
        return None
    if g.geom_type == "Polygon":
        return shapely.MultiPolygon([g])
    return g


def _copy_value(v: object) -> str | None:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (dt.date, pd.Timestamp)):
        return v.isoformat()[:10]
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


CHUNK_BYTES = 16_000_000  # of hex WKB per COPY: bounds memory on full-resolution files


def _chunks(units: pd.DataFrame) -> list[slice]:
    """Row ranges whose hex WKB adds up to about CHUNK_BYTES."""
    sizes = [len(w) if isinstance(w, str) else 0 for w in units["wkb"]]
    out, start, total = [], 0, 0
    for i, n in enumerate(sizes):
        total += n
        if total >= CHUNK_BYTES:
            out.append(slice(start, i + 1))
            start, total = i + 1, 0
    if start < len(sizes):
        out.append(slice(start, len(sizes)))
    return out


def _copy_buffer(units: pd.DataFrame) -> io.BytesIO:
    """COPY text for the staging table, as bytes. Why not DataFrame.to_csv into a StringIO:
    on 3,321 full-resolution communes (226 MB of hex WKB) that held several copies of the text,
    some at 4 bytes per character, and peaked near 2 GB."""
    text = io.StringIO()
    columns = [units[c].tolist() for c in UNIT_COLUMNS]
    for row in zip(*columns, strict=True):
        text.write(copy_line(_copy_value(v) for v in row))
    return io.BytesIO(text.getvalue().encode("utf-8"))


UPSERT_SQL = """
WITH ins AS (
  INSERT INTO admin_unit AS u (level, code, kind, name, full_name, name_search,
      province_code, population, households, valid_from, valid_to, source,
      is_demo, is_synthetic, geom)
  SELECT level, code, kind, name, full_name, name_search, province_code,
         population, households, coalesce(valid_from, '-infinity'), valid_to,
         source, coalesce(is_demo, false), coalesce(is_synthetic, false),
         CASE WHEN wkb IS NULL THEN NULL ELSE
           ST_Multi(ST_CollectionExtract(ST_MakeValid(
             ST_SetSRID(ST_GeomFromWKB(decode(wkb, 'hex')), 4326)), 3)) END
  FROM unit_stage
  ON CONFLICT (level, code, valid_from) DO UPDATE SET
      kind = EXCLUDED.kind, name = EXCLUDED.name, full_name = EXCLUDED.full_name,
      name_search = EXCLUDED.name_search, province_code = EXCLUDED.province_code,
      population = coalesce(EXCLUDED.population, u.population),
      households = coalesce(EXCLUDED.households, u.households),
      valid_to = EXCLUDED.valid_to, source = EXCLUDED.source,
      is_demo = EXCLUDED.is_demo, is_synthetic = EXCLUDED.is_synthetic,
      geom = coalesce(EXCLUDED.geom, u.geom)
  -- Unchanged rows are left alone: a re-import of the same file rewrites nothing.
  WHERE (u.kind, u.name, u.full_name, u.name_search, u.province_code, u.valid_to, u.source,
         u.is_demo, u.is_synthetic)
        IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.name, EXCLUDED.full_name,
         EXCLUDED.name_search, EXCLUDED.province_code, EXCLUDED.valid_to, EXCLUDED.source,
         EXCLUDED.is_demo, EXCLUDED.is_synthetic)
     OR coalesce(EXCLUDED.population, u.population) IS DISTINCT FROM u.population
     OR coalesce(EXCLUDED.households, u.households) IS DISTINCT FROM u.households
     OR coalesce(EXCLUDED.geom, u.geom) IS DISTINCT FROM u.geom
  RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM ins
"""

PARENTS_SQL = """
UPDATE admin_unit c SET parent_id = p.id
FROM unit_keys s, admin_unit p
WHERE c.level = s.level AND c.code = s.code
  AND c.valid_from = coalesce(s.valid_from, '-infinity')
  AND s.parent_code IS NOT NULL
  AND p.level = s.parent_level AND p.code = s.parent_code
  AND p.valid_from <= c.valid_from
  AND (p.valid_to IS NULL OR c.valid_from < p.valid_to)
  AND c.parent_id IS DISTINCT FROM p.id
"""


def upsert_units(conn: Connection, units: pd.DataFrame) -> UpsertResult:
    """Insert or update units by (level, code, valid_from); repair geometry in SQL.

    Parents are resolved by (parent_level, parent_code) among units valid at the child's
    valid_from, which may be loaded in the same call (parents first is not required).
    Rows go in chunks of about CHUNK_BYTES of geometry, all in the caller's transaction.
    """
    raw = conn.connection.dbapi_connection
    inserted = updated = unchanged = 0
    with raw.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS unit_stage (level text, code text, kind text, "
            "name text, full_name text, name_search text, parent_level text, parent_code text, "
            "province_code text, population integer, households integer, valid_from date, "
            "valid_to date, source text, is_demo boolean, is_synthetic boolean, wkb text) "
            "ON COMMIT DROP"
        )
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS unit_keys (level text, code text, "
                    "valid_from date, parent_level text, parent_code text) ON COMMIT DROP")
        cur.execute("TRUNCATE unit_keys")
        for part in _chunks(units):
            cur.execute("TRUNCATE unit_stage")
            cur.copy_expert(
                "COPY unit_stage FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t', NULL '\\N')",
                _copy_buffer(units.iloc[part]))
            cur.execute(UPSERT_SQL)
            a, b = cur.fetchone()
            inserted, updated = inserted + int(a), updated + int(b)
            unchanged += part.stop - part.start - int(a) - int(b)
            cur.execute("INSERT INTO unit_keys SELECT level, code, valid_from, parent_level, "
                        "parent_code FROM unit_stage")
        cur.execute(PARENTS_SQL)
    return UpsertResult(inserted, updated, unchanged)
