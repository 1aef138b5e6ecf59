"""Which unit valid on a date holds a record: the one rule every unit-based figure places rows by.

Why one module: incidents, models and institutions are assigned the commune and village valid
when they happened or were written. Across the 1 July 2025 reorganisation those ids point to
units no longer valid, and a figure by today's units would silently drop them. Every
unit-based figure (village and commune counts, village Gi*, same-period comparison, need
ranking, the count layers, KPIs and report tables) places rows through these functions, so all
of them count every row, the same way the hexagons do.

Incidents carry two placements (migration 0006):
- ``commune_id`` / ``village_id``: the units valid on the incident's own date (a pre-2025
  commune for an incident of 2024, no village before villages existed);
- ``commune_now_id`` / ``village_now_id``: today's units (the open-ended ones, ``valid_to IS
  NULL``) holding its point, with ``unit_at``'s tie-break; kept right by triggers when
  incidents or units change.

Functions
---------
- ``unit_expr(bind, level, on, alias='i', param='on')``: incidents; the indexed today column
  when the units valid on ``on`` are exactly today's units (``is_current``, asked once), else
  the own-date unit when valid on ``on``, else ``unit_at`` on the point (an older map).
- ``incident_unit_sql(alias, level, on=':on')`` (= ``unit_expr_sql``): the same decided inside
  the query (the map test runs once, as an InitPlan), for SQL built without a connection.
- ``incident_units_sql(level, where, alias, on)``: the same for every matching incident, as
  rows, in the form PostgreSQL scans in parallel or from the index (counts of many incidents).
- ``point_unit_sql(alias, level, on)``: other point tables (``commune_id``/``village_id`` and
  ``geom``): the stored id while that unit is valid on the date, else by location.
- ``event_commune_sql(alias, on)``: events have no geometry; a stored commune no longer valid
  is followed through ``unit_lineage`` to the new commune holding most of it.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from geo._db import Bind, connect

LEVELS = ("commune", "village")


def _check(level: str) -> None:
    if level not in LEVELS:
        raise ValueError("level must be 'commune' or 'village'")


def _valid(alias: str, on: str) -> str:
    return f"{alias}.valid_from <= {on} AND ({alias}.valid_to IS NULL OR {on} < {alias}.valid_to)"


def era_column(level: str) -> str:
    """The column with the unit valid on the incident's date."""
    _check(level)
    return f"{level}_id"


def now_column(level: str) -> str:
    """The column with today's unit (the open-ended units) holding the incident."""
    _check(level)
    return f"{level}_now_id"


def _current_sql(level: str, on: str) -> str:
    """SQL: the units of LEVEL valid on ON are exactly the open-ended ones."""
    return f"""NOT EXISTS (
    SELECT 1 FROM admin_unit cu WHERE cu.level = '{level}' AND (
        (cu.valid_to IS NULL AND cu.valid_from > {on})
        OR (cu.valid_to IS NOT NULL AND cu.valid_from <= {on} AND {on} < cu.valid_to)))"""


def is_current(bind: Bind, level: str, on: date) -> bool:
    """True when the units of ``level`` valid on ``on`` are exactly the open-ended ones: no
    open-ended unit starts after ``on`` and no closed unit is still valid on ``on``."""
    _check(level)
    with connect(bind) as conn:
        return bool(conn.execute(text(f"SELECT {_current_sql(level, ':d')}"), {"d": on}).scalar_one())


def point_unit_sql(alias: str, level: str, on: str = ":on") -> str:
    """The unit of LEVEL valid on ON holding row ALIAS: stored id if still valid, else by location."""
    _check(level)
    col = f"{alias}.{level}_id"
    return (f"(CASE WHEN EXISTS (SELECT 1 FROM admin_unit pu WHERE pu.id = {col} AND {_valid('pu', on)}) "
            f"THEN {col} ELSE unit_at({alias}.geom, '{level}', {on}) END)")


def unit_expr(bind: Bind, level: str, on: date, alias: str = "i", param: str = "on") -> str:
    """SQL expression: the id of the unit of ``level`` valid on ``:{param}`` (= ``on``) holding
    incident ``alias`` (NULL when it lies in none). On today's map it is the indexed column."""
    if is_current(bind, level, on):
        return f"{alias}.{now_column(level)}"
    return point_unit_sql(alias, level, f":{param}")


def incident_unit_sql(alias: str, level: str, on: str = ":on") -> str:
    """The unit of LEVEL valid on ON that holds incident ALIAS, decided inside the query: today's
    stored placement when ON's map is today's, else ``point_unit_sql``.

    An incident from before 1 July 2025 keeps its pre-2025 commune in ``commune_id``; placed here
    by location it counts in the 2025 commune that holds it, so a merged unit's old units'
    history counts in its same-period comparison."""
    _check(level)
    return (f"(CASE WHEN ({_current_sql(level, on)}) THEN {alias}.{now_column(level)} "
            f"ELSE {point_unit_sql(alias, level, on)} END)")


def incident_units_sql(level: str, where: str, alias: str = "i", on: str = ":on") -> str:
    """SQL rows (``unit_id``): the unit of LEVEL valid on ON of every incident ALIAS matching
    WHERE, i.e. ``incident_unit_sql`` per row, as two branches of which the map test (an
    InitPlan) runs one.

    Why: in one CASE the older map's branch (a correlated subquery, ``unit_at``) keeps the whole
    scan single-threaded even when it never runs. Alone, today's branch reads the indexed today
    column: counting the national 1M incidents per commune took 0.4 s instead of 0.9 s."""
    current = _current_sql(level, on)
    return (f"SELECT {alias}.{now_column(level)} AS unit_id FROM incident {alias} "
            f"WHERE ({current}) AND ({where})\n"
            f"UNION ALL\n"
            f"SELECT {point_unit_sql(alias, level, on)} AS unit_id FROM incident {alias} "
            f"WHERE NOT ({current}) AND ({where})")


def unit_expr_sql(level: str, alias: str = "i", param: str = "on") -> str:
    """``incident_unit_sql`` with the date given as a bind parameter name."""
    return incident_unit_sql(alias, level, f":{param}")


def event_commune_sql(alias: str, on: str = ":on") -> str:
    """The commune valid on ON of event ALIAS: its own, or the successor through unit_lineage."""
    col = f"{alias}.commune_id"
    return f"""(CASE WHEN EXISTS (SELECT 1 FROM admin_unit pu WHERE pu.id = {col} AND {_valid('pu', on)})
        THEN {col} ELSE (SELECT nu.id FROM admin_unit old
            JOIN unit_lineage l ON l.old_code = old.code AND l.old_level = old.level
                               AND l.new_level = 'commune'
            JOIN admin_unit nu ON nu.level = 'commune' AND nu.code = l.new_code AND {_valid('nu', on)}
            WHERE old.id = {col}
            ORDER BY (l.merge_type = 'full') DESC, l.area_share DESC NULLS LAST, nu.code LIMIT 1) END)"""
