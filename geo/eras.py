"""Across the 1 July 2025 reorganisation: move figures from old units to new ones.

Public functions
----------------
- ``interpolate(bind, source_level, source_on, target_level, target_on, column='population',
  province_code=None)`` -> DataFrame (id, code, name, estimate, sources)
- ``roll_up(bind, frame, value_columns, code_column='code', old_level='commune',
  new_level='commune')`` -> DataFrame indexed by new code

``interpolate`` is areal weighting in EPSG:3405: a target unit receives, from every source unit
with a figure, figure x area(source ∩ target) / area(source) — people (or households) assumed
evenly spread over the source unit. It is how the 2009-census population of pre-2025 communes
reaches 2025 communes (or generated villages) when that is all there is.
``roll_up`` uses ``unit_lineage`` instead (no geometry needed): a 'full' row carries the whole
value, a 'partial' row carries value x area_share.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from antt.crs import METRIC_SRID
from geo._db import Bind, frame

COLUMNS = {"population", "households"}


def interpolate(bind: Bind, source_level: str, source_on: date, target_level: str, target_on: date,
                column: str = "population", province_code: str | None = None,
                target_ids: list[int] | None = None) -> pd.DataFrame:
    """Areal-weighted estimate of ``column`` for each target unit valid on ``target_on``
    from the source units valid on ``source_on``; None where no source with a figure overlaps."""
    if column not in COLUMNS:
        raise ValueError(f"column must be one of {sorted(COLUMNS)}")
    scope = " AND t.province_code = :province_code" if province_code else ""
    if target_ids is not None:
        scope += " AND t.id = ANY(:ids)"
    sql = f"""
    WITH t AS MATERIALIZED (
        SELECT t.id, t.code, t.name, t.geom, ST_Transform(t.geom, {METRIC_SRID}) AS gm
        FROM admin_unit t
        WHERE t.level = :tl AND t.geom IS NOT NULL
          AND t.valid_from <= :ton AND (t.valid_to IS NULL OR :ton < t.valid_to){scope}
    ),
    s AS MATERIALIZED (
        SELECT s.id, s.geom, s.{column} AS v, ST_Transform(s.geom, {METRIC_SRID}) AS gm
        FROM admin_unit s
        WHERE s.level = :sl AND s.geom IS NOT NULL AND s.{column} IS NOT NULL
          AND s.valid_from <= :son AND (s.valid_to IS NULL OR :son < s.valid_to)
          AND EXISTS (SELECT 1 FROM t WHERE t.geom && s.geom)
    ),
    pieces AS (
        SELECT t.id, s.v * ST_Area(ST_Intersection(t.gm, s.gm)) / NULLIF(ST_Area(s.gm), 0) AS part
        FROM t JOIN s ON t.geom && s.geom AND ST_Intersects(t.gm, s.gm)
    )
    SELECT t.id, t.code, t.name, sum(p.part) AS estimate,
           count(p.part) FILTER (WHERE p.part > 0) AS sources  -- touching borders are no source
    FROM t LEFT JOIN pieces p ON p.id = t.id
    GROUP BY t.id, t.code, t.name ORDER BY t.code"""
    df = frame(bind, sql, {"tl": target_level, "ton": target_on, "sl": source_level, "son": source_on,
                           "province_code": province_code, "ids": list(target_ids or [])})
    df["estimate"] = df["estimate"].astype(object).where(df["sources"] > 0, None)
    return df


def roll_up(bind: Bind, values: pd.DataFrame, value_columns: list[str], code_column: str = "code",
            old_level: str = "commune", new_level: str = "commune") -> pd.DataFrame:
    """Old-unit figures summed into new units through ``unit_lineage``; old codes without a
    lineage row are reported in ``df.attrs['unmatched']`` rather than silently dropped."""
    lineage = frame(bind, """
        SELECT old_code, new_code,
               CASE WHEN merge_type = 'full' THEN 1.0 ELSE COALESCE(area_share, 0) END AS share
        FROM unit_lineage WHERE old_level = :ol AND new_level = :nl""",
                    {"ol": old_level, "nl": new_level})
    merged = values.merge(lineage, how="left", left_on=code_column, right_on="old_code")
    unmatched = sorted(set(merged.loc[merged["new_code"].isna(), code_column]))
    merged = merged.dropna(subset=["new_code"])
    for col in value_columns:
        merged[col] = pd.to_numeric(merged[col], errors="coerce") * merged["share"]
    out = merged.groupby("new_code")[value_columns].sum(min_count=1)
    out.index.name = "code"
    out.attrs["unmatched"] = unmatched
    return out
