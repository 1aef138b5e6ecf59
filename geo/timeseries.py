"""Time: monthly series and "so với cùng kỳ" (same period last year) per commune or village.

Public functions
----------------
- ``monthly_series(bind, flt, level='commune', province_code=None, commune_code=None, on=None)``
  -> long DataFrame (unit_id, code, name, month, count), every month of the filter's range
  present for every unit (zeros filled)
- ``same_period_last_year(bind, flt, level='commune', province_code=None, commune_code=None,
  on=None)`` -> DataFrame (unit_id, code, name, count, count_last_year, change, change_pct)

Units are those valid on ``on`` (default: the filter's end). Every incident counts in the unit
of that map that holds its point, whatever its own date (``geo.placement``): last year's
incidents, recorded in pre-2025 communes, count in today's commune and village that hold them,
so "cùng kỳ" across the 1 July 2025 merger compares like with like. Only an incident that lies
in no unit of that map but has a (pre-2025) commune of its own date is rolled up through
``unit_lineage`` (level 'commune'; a partial split is apportioned by ``area_share``, so such
counts can be fractional).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from geo._db import Bind, frame
from geo.filters import IncidentFilter
from geo.placement import unit_expr

LEVELS = ("commune", "village")
SHARE = "CASE WHEN l.merge_type = 'full' THEN 1.0 ELSE COALESCE(l.area_share, 0) END"


def _units_sql(level: str, province_code: str | None, commune_code: str | None) -> str:
    scope = ""
    if province_code is not None:
        scope += " AND u.province_code = :province_code"
    if commune_code is not None:
        scope += (" AND u.code = :commune_code" if level == "commune"
                  else " AND u.parent_id IN (SELECT id FROM admin_unit WHERE level = 'commune'"
                       " AND code = :commune_code AND valid_from <= :on"
                       " AND (valid_to IS NULL OR :on < valid_to))")
    return f"""SELECT u.id, u.code, u.name FROM admin_unit u
        WHERE u.level = '{level}' AND u.valid_from <= :on
          AND (u.valid_to IS NULL OR :on < u.valid_to){scope}"""


def _check(flt: IncidentFilter, level: str) -> None:
    if level not in LEVELS:
        raise ValueError("level must be 'commune' or 'village'")
    if flt.start is None or flt.end is None:
        raise ValueError("a series needs both start and end dates")


def monthly_series(bind: Bind, flt: IncidentFilter, level: str = "commune",
                   province_code: str | None = None, commune_code: str | None = None,
                   on: date | None = None) -> pd.DataFrame:
    """Incident counts per unit and local calendar month over the filter's date range."""
    _check(flt, level)
    on = on or flt.end
    unit = unit_expr(bind, level, on)
    where, params = flt.sql("i")
    sql = f"""
    WITH u AS MATERIALIZED ({_units_sql(level, province_code, commune_code)}),
    months AS (SELECT generate_series(date_trunc('month', CAST(:s AS date)),
                                      date_trunc('month', CAST(:e AS date)),
                                      interval '1 month')::date AS month),
    counts AS (
        SELECT {unit} AS unit_id,
               date_trunc('month', i.occurred_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS month,
               count(*) AS n
        FROM incident i WHERE {unit} IN (SELECT id FROM u) AND {where} GROUP BY 1, 2
    )
    SELECT u.id AS unit_id, u.code, u.name, m.month, COALESCE(c.n, 0) AS count
    FROM u CROSS JOIN months m LEFT JOIN counts c ON c.unit_id = u.id AND c.month = m.month
    ORDER BY u.code, m.month"""
    params |= {"s": flt.start, "e": flt.end, "on": on, "province_code": province_code,
               "commune_code": commune_code}
    df = frame(bind, sql, params)
    df["count"] = df["count"].astype("int64")
    return df


def same_period_last_year(bind: Bind, flt: IncidentFilter, level: str = "commune",
                          province_code: str | None = None, commune_code: str | None = None,
                          on: date | None = None) -> pd.DataFrame:
    """Count in the period, in the same period a year earlier, change and % change
    (None when last year had none)."""
    _check(flt, level)
    on = on or flt.end
    unit = unit_expr(bind, level, on)
    cur_where, cur_params = flt.sql("i", "f_")
    last_where, last_params = flt.last_year().sql("i", "l_")
    rollup = ""
    if level == "commune":
        rollup = f"""
        UNION ALL
        -- incidents in no commune of this map, with a commune of their own date that is no
        -- longer valid: apportioned through unit_lineage
        SELECT u.id, sum(o.cur * {SHARE}), sum(o.last * {SHARE})
        FROM (SELECT i.commune_id AS uid,
                     count(*) FILTER (WHERE {cur_where})::float8 AS cur,
                     count(*) FILTER (WHERE {last_where})::float8 AS last
              FROM incident i
              WHERE ({unit}) IS NULL AND i.commune_id IS NOT NULL
                AND i.commune_id NOT IN (SELECT id FROM u) AND (({cur_where}) OR ({last_where}))
              GROUP BY 1) o
        JOIN admin_unit old ON old.id = o.uid
        JOIN unit_lineage l ON l.old_code = old.code AND l.old_level = old.level
                           AND l.new_level = 'commune'
        JOIN u ON u.code = l.new_code
        GROUP BY u.id"""
    sql = f"""
    WITH u AS MATERIALIZED ({_units_sql(level, province_code, commune_code)}),
    parts AS (
        SELECT {unit} AS unit_id,
               count(*) FILTER (WHERE {cur_where})::float8 AS cur,
               count(*) FILTER (WHERE {last_where})::float8 AS last
        FROM incident i WHERE {unit} IN (SELECT id FROM u) AND (({cur_where}) OR ({last_where}))
        GROUP BY 1
        {rollup}
    )
    SELECT u.id AS unit_id, u.code, u.name, COALESCE(sum(p.cur), 0) AS count,
           COALESCE(sum(p.last), 0) AS count_last_year
    FROM u LEFT JOIN parts p ON p.unit_id = u.id
    GROUP BY u.id, u.code, u.name ORDER BY u.code"""
    params = {**cur_params, **last_params, "on": on, "province_code": province_code,
              "commune_code": commune_code}
    df = frame(bind, sql, params)
    cur = df["count"].astype("float64")
    df["count"] = cur.astype("int64") if (cur == cur.round()).all() else cur
    last = df["count_last_year"].astype("float64")
    if (last == last.round()).all():
        df["count_last_year"] = last.astype("int64")
    df["change"] = df["count"] - df["count_last_year"]
    pct = df["change"] * 100.0 / last.where(last > 0)
    df["change_pct"] = pct.astype(object).where(pct.notna(), None)
    return df
