"""Aggregates for roles that must not see incident points (everyone but admin and police).

Public functions
----------------
- ``suppress(counts, min_count=3)`` -> (list[int | None], list[bool])
- ``hex_aggregate(bind, cell_m, flt, province_code=None, commune_code=None, min_count=3, on=None)``
- ``village_aggregate(bind, flt, province_code=None, commune_code=None, min_count=3, on=None)``
- ``commune_aggregate(bind, flt, province_code=None, commune_code=None, min_count=3, on=None)``

Every frame has ``count`` (None when suppressed) and ``suppressed`` (bool). A count of 1 ..
min_count-1 is suppressed; 0 is shown (it discloses no incident). Hexagons must have a side of
at least ``MIN_HEX_M`` = 250 m. No coordinates finer than the unit/cell ever leave here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import pandas as pd

from geo._db import Bind
from geo.filters import IncidentFilter
from geo.grid import hex_counts
from geo.hotspots import village_counts
from geo.timeseries import same_period_last_year

MIN_HEX_M = 250.0


def suppress(counts: Iterable[int], min_count: int = 3) -> tuple[list[int | None], list[bool]]:
    """Counts in 1..min_count-1 become None, with a flag saying so."""
    if min_count < 1:
        raise ValueError("min_count must be >= 1")
    values: list[int | None] = []
    flags: list[bool] = []
    for c in counts:
        c = int(c)
        hidden = 0 < c < min_count
        values.append(None if hidden else c)
        flags.append(hidden)
    return values, flags


def _apply(df: pd.DataFrame, min_count: int, cols: list[str]) -> pd.DataFrame:
    values, flags = suppress(df["count"], min_count)
    out = df[cols].copy()
    out["count"] = pd.Series(values, index=df.index, dtype=object)
    out["suppressed"] = flags
    return out


def hex_aggregate(bind: Bind, cell_m: float, flt: IncidentFilter = IncidentFilter(),
                  province_code: str | None = None, commune_code: str | None = None,
                  min_count: int = 3, on: date | None = None) -> pd.DataFrame:
    """Counts per hexagon (side >= 250 m), small counts suppressed: i, j, count, suppressed, geometry."""
    if cell_m < MIN_HEX_M:
        raise ValueError(f"cell_m must be >= {MIN_HEX_M:.0f} m for aggregates")
    df = hex_counts(bind, cell_m, flt, province_code, commune_code, on, with_geometry=True)
    return _apply(df, min_count, ["i", "j", "geometry"])


def village_aggregate(bind: Bind, flt: IncidentFilter = IncidentFilter(), province_code: str | None = None,
                      commune_code: str | None = None, min_count: int = 3,
                      on: date | None = None) -> pd.DataFrame:
    """Counts per village, small counts suppressed: id, code, name, commune_code, count, suppressed."""
    df = village_counts(bind, flt, province_code, commune_code, on, with_geometry=False)
    return _apply(df, min_count, ["id", "code", "name", "commune_code"])


def commune_aggregate(bind: Bind, flt: IncidentFilter, province_code: str | None = None,
                      commune_code: str | None = None, min_count: int = 3,
                      on: date | None = None) -> pd.DataFrame:
    """Counts per commune and last year's, both suppressed below ``min_count``; the change is
    only given when neither count is suppressed."""
    df = same_period_last_year(bind, flt, "commune", province_code, commune_code, on)
    # counts rolled up through unit_lineage may be fractional: shown rounded
    out = _apply(df.assign(count=df["count"].round()), min_count, ["unit_id", "code", "name"])
    last, last_flags = suppress(df["count_last_year"].round(), min_count)
    out["count_last_year"] = pd.Series(last, index=df.index, dtype=object)
    out["suppressed_last_year"] = last_flags
    hide = out["suppressed"] | out["suppressed_last_year"]
    out["change"] = df["change"].astype(object).where(~hide, None)
    out["change_pct"] = df["change_pct"].where(~hide, None)
    return out
