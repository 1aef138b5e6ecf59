"""Incident counts for periodic reports: by category and by unit, a period against the same
period a year earlier ("so với cùng kỳ"), every incident placed in the units valid on the
report's date (``geo.placement.incident_unit_sql``) — so across the 2025 merger a merged unit's
old units' history counts in it.

Public functions
----------------
- ``placed_incidents_sql(level_codes)``: SQL of incidents in the two periods with their commune
  and village of ``:on`` (the building block of the two below)
- ``category_counts(bind, start, end, on, province_code=None, commune_code=None)`` -> one row per
  category of the taxonomy (a category counts its sub-categories): count, count_last_year,
  change, change_pct, youth, youth_last_year; plus a row ``*`` for all incidents
- ``unit_counts(bind, start, end, on, level, province_code=None, commune_code=None)`` -> one row
  per commune or village valid on ``on``: count, count_last_year, change, change_pct
Dates are local and inclusive; the same period last year is ``IncidentFilter.last_year()``.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from geo._db import Bind, frame, valid_on
from geo.filters import IncidentFilter
from geo.placement import incident_unit_sql


def _area(province_code: str | None, commune_code: str | None) -> str:
    if (province_code is None) == (commune_code is None):
        raise ValueError("exactly one of province_code / commune_code / cần đúng một trong tỉnh hoặc xã")
    cond = "u.province_code = :province_code" if province_code else "u.code = :commune_code"
    return f"SELECT u.id FROM admin_unit u WHERE u.level = 'commune' AND {valid_on('u')} AND {cond}"


def placed_incidents_sql(province_code: str | None, commune_code: str | None) -> str:
    """WITH-clauses: ``area`` (commune ids), ``placed`` (incidents of either period with
    commune_id/village_id valid on :on, only those in the area, and ``cur`` true for the period,
    false for last year's)."""
    cur = IncidentFilter(date(2000, 1, 1), date(2000, 1, 1))  # parameter names only
    cur_where, _ = cur.sql("i", "f_")
    last_where, _ = cur.sql("i", "l_")
    return f"""
    area AS MATERIALIZED ({_area(province_code, commune_code)}),
    box AS MATERIALIZED (SELECT ST_SetSRID(ST_Extent(geom), 4326) AS g FROM admin_unit
                         WHERE id IN (SELECT id FROM area)),
    raw AS MATERIALIZED (
        SELECT i.id, i.category_code, i.youth_involved, ({cur_where}) AS cur,
               {incident_unit_sql('i', 'commune')} AS commune_id
        FROM incident i
        WHERE i.geom && (SELECT g FROM box) AND (({cur_where}) OR ({last_where}))
    ),
    placed AS MATERIALIZED (
        SELECT r.*, {incident_unit_sql('i', 'village')} AS village_id
        FROM raw r JOIN incident i ON i.id = r.id
        WHERE r.commune_id IN (SELECT id FROM area)
    )"""


def _params(start: date, end: date, on: date, province_code: str | None,
            commune_code: str | None) -> dict:
    flt = IncidentFilter(start, end)
    _, cur = flt.sql("i", "f_")
    _, last = flt.last_year().sql("i", "l_")
    return {**cur, **last, "on": on, "province_code": province_code, "commune_code": commune_code}


def _change(df: pd.DataFrame, cur: str = "count", last: str = "count_last_year") -> pd.DataFrame:
    df["change"] = df[cur] - df[last]
    pct = df["change"] * 100.0 / df[last].where(df[last] > 0)
    df["change_pct"] = pct.astype(object).where(pct.notna(), None)
    return df


def category_counts(bind: Bind, start: date, end: date, on: date, province_code: str | None = None,
                    commune_code: str | None = None) -> pd.DataFrame:
    """Counts per category (its sub-categories included), this period and last year's."""
    sql = f"""WITH {placed_incidents_sql(province_code, commune_code)}
        SELECT c.code AS category_code, c.parent, c.name_vi, c.name_en,
               count(p.id) FILTER (WHERE p.cur) AS count,
               count(p.id) FILTER (WHERE NOT p.cur) AS count_last_year,
               count(p.id) FILTER (WHERE p.cur AND p.youth_involved) AS youth,
               count(p.id) FILTER (WHERE NOT p.cur AND p.youth_involved) AS youth_last_year
        FROM incident_category c
        LEFT JOIN placed p ON p.category_code = c.code
                          OR left(p.category_code, length(c.code) + 1) = c.code || '/'
        GROUP BY c.code, c.parent, c.name_vi, c.name_en
        UNION ALL
        SELECT '*', NULL, 'Tổng số vụ việc', 'All incidents',
               count(*) FILTER (WHERE cur), count(*) FILTER (WHERE NOT cur),
               count(*) FILTER (WHERE cur AND youth_involved),
               count(*) FILTER (WHERE NOT cur AND youth_involved)
        FROM placed
        ORDER BY 1"""
    df = frame(bind, sql, _params(start, end, on, province_code, commune_code))
    for col in ("count", "count_last_year", "youth", "youth_last_year"):
        df[col] = df[col].astype("int64")
    df["depth"] = df["category_code"].map(lambda c: 0 if c == "*" else c.count("/") + 1)
    return _change(df)


def unit_counts(bind: Bind, start: date, end: date, on: date, level: str = "commune",
                province_code: str | None = None, commune_code: str | None = None) -> pd.DataFrame:
    """Counts per commune (or village) valid on ``on`` in the area, this period and last year's."""
    if level not in ("commune", "village"):
        raise ValueError("level must be 'commune' or 'village'")
    if level == "commune":
        units = "SELECT u.id, u.code, u.name FROM admin_unit u WHERE u.id IN (SELECT id FROM area)"
    else:
        units = ("SELECT u.id, u.code, u.name FROM admin_unit u WHERE u.level = 'village' "
                 f"AND {valid_on('u')} AND u.parent_id IN (SELECT id FROM area)")
    key = f"{level}_id"
    sql = f"""WITH {placed_incidents_sql(province_code, commune_code)},
        units AS ({units})
        SELECT u.id AS unit_id, u.code, u.name,
               count(p.id) FILTER (WHERE p.cur) AS count,
               count(p.id) FILTER (WHERE NOT p.cur) AS count_last_year
        FROM units u LEFT JOIN placed p ON p.{key} = u.id
        GROUP BY u.id, u.code, u.name ORDER BY u.code"""
    df = frame(bind, sql, _params(start, end, on, province_code, commune_code))
    for col in ("count", "count_last_year"):
        df[col] = df[col].astype("int64")
    return _change(df)
