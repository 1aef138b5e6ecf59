"""Which unit an incident counts in, for the units valid on a date (migration 0006).

Why one module: every unit-based figure (village and commune counts, village Gi*, same-period
comparison, need ranking, the count layers) must count the same incidents in the same unit as
the hexagons do, whatever the incident's date.

An incident carries two placements:
- ``commune_id`` / ``village_id``: the units valid on the incident's own date (a pre-2025
  commune for an incident of 2024, no village before villages existed);
- ``commune_now_id`` / ``village_now_id``: today's units (the open-ended ones, ``valid_to IS
  NULL``) holding its point, with ``unit_at``'s tie-break; kept right by triggers when
  incidents or units change.

``unit_expr(bind, level, on)`` gives the SQL for "the unit of ``level`` valid on ``:on`` that
holds incident ``i``": the indexed today column when the units valid on ``on`` are exactly
today's units (the usual case: the current map), else the incident's own-date unit when that is
valid on ``on``, else ``unit_at`` on its point (a view of an older map: correct, slower).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from geo._db import Bind, connect

LEVELS = ("commune", "village")


def era_column(level: str) -> str:
    """The column with the unit valid on the incident's date."""
    _check(level)
    return f"{level}_id"


def now_column(level: str) -> str:
    """The column with today's unit (the open-ended units) holding the incident."""
    _check(level)
    return f"{level}_now_id"


def _check(level: str) -> None:
    if level not in LEVELS:
        raise ValueError("level must be 'commune' or 'village'")


CURRENT_SQL = """NOT EXISTS (
    SELECT 1 FROM admin_unit cu WHERE cu.level = '{level}' AND (
        (cu.valid_to IS NULL AND cu.valid_from > :{param})
        OR (cu.valid_to IS NOT NULL AND cu.valid_from <= :{param} AND :{param} < cu.valid_to)))"""


def is_current(bind: Bind, level: str, on: date) -> bool:
    """True when the units of ``level`` valid on ``on`` are exactly the open-ended ones: no
    open-ended unit starts after ``on`` and no closed unit is still valid on ``on``."""
    _check(level)
    with connect(bind) as conn:
        return bool(conn.execute(text(f"SELECT {CURRENT_SQL.format(level=level, param='d')}"),
                                 {"d": on}).scalar_one())


def _older_map(level: str, alias: str, param: str) -> str:
    era = era_column(level)
    return (f"coalesce((SELECT e.id FROM admin_unit e WHERE e.id = {alias}.{era} "
            f"AND e.valid_from <= :{param} AND (e.valid_to IS NULL OR :{param} < e.valid_to)), "
            f"unit_at({alias}.geom, '{level}', :{param}))")


def unit_expr(bind: Bind, level: str, on: date, alias: str = "i", param: str = "on") -> str:
    """SQL expression: the id of the unit of ``level`` valid on ``:{param}`` (= ``on``) holding
    incident ``alias`` (NULL when it lies in none). On today's map it is the indexed column."""
    if is_current(bind, level, on):
        return f"{alias}.{now_column(level)}"
    return _older_map(level, alias, param)


def unit_expr_sql(level: str, alias: str = "i", param: str = "on") -> str:
    """The same as ``unit_expr`` decided inside the query (the map test runs once, as an
    InitPlan): for SQL built without a connection, where no index on the unit is needed."""
    _check(level)
    return (f"CASE WHEN ({CURRENT_SQL.format(level=level, param=param)}) "
            f"THEN {alias}.{now_column(level)} ELSE {_older_map(level, alias, param)} END")
