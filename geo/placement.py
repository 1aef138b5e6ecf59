"""Which unit valid on a date holds a record: the one rule KPIs and reports place rows by.

Why one module: incidents, models and institutions are assigned the commune and village valid
when they were written. Across the 1 July 2025 reorganisation those ids point to units no
longer valid, and a figure by today's units would silently drop them. Every unit-based figure
of the plan (KPIs, report tables, same-period comparisons) places rows through these functions,
so all of them count every row, and a change of rule (e.g. stored "today's unit" columns) is
made here once.

- ``point_unit_sql(alias, level, on)``: SQL expression, the id of the unit of ``level`` valid on
  ``on`` that holds the row ``alias`` (a table with ``commune_id``/``village_id`` and ``geom``):
  its stored id while that unit is valid on the date, else by location (``unit_at``).
- ``incident_unit_sql(alias, level, on)``: the same for incidents (kept apart: incidents are the
  table whose placement the 2025 merger work stores in columns).
- ``event_commune_sql(alias, on)``: events have no geometry; a stored commune no longer valid
  is followed through ``unit_lineage`` to the new commune holding most of it.
"""

from __future__ import annotations

LEVELS = ("commune", "village")


def _valid(alias: str, on: str) -> str:
    return f"{alias}.valid_from <= {on} AND ({alias}.valid_to IS NULL OR {on} < {alias}.valid_to)"


def point_unit_sql(alias: str, level: str, on: str = ":on") -> str:
    """The unit of LEVEL valid on ON holding row ALIAS: stored id if still valid, else by location."""
    if level not in LEVELS:
        raise ValueError("level must be 'commune' or 'village'")
    col = f"{alias}.{level}_id"
    return (f"(CASE WHEN EXISTS (SELECT 1 FROM admin_unit pu WHERE pu.id = {col} AND {_valid('pu', on)}) "
            f"THEN {col} ELSE unit_at({alias}.geom, '{level}', {on}) END)")


def incident_unit_sql(alias: str, level: str, on: str = ":on") -> str:
    """The unit of LEVEL valid on ON that holds incident ALIAS (today's placement when ON is today).

    An incident from before 1 July 2025 keeps its pre-2025 commune in ``commune_id``; placed here
    by location it counts in the 2025 commune that holds it, so a merged unit's old units'
    history counts in its same-period comparison."""
    return point_unit_sql(alias, level, on)


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
