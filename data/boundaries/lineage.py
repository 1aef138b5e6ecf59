"""Old -> new units of 1 July 2025 (unit_lineage), area shares, and rolling old figures up.

Why area shares: a 'partial' old commune was split between several new communes, so an old
figure (population, incidents, models) must be apportioned. ``area_share`` is the share of the
old commune's area that lies in each new commune, measured in EPSG:3405 (metres) from the old
polygon (the 2009 polygon matched to the GSO code, see data.boundaries.pre2025) and the 2025
polygon, normalised so an old commune's shares sum to 1. When the old polygon is unknown or does
not overlap any target (2009 vs 2025 boundaries), the shares are equal among the targets; the
``source`` column of each row says which method was used. 'full' rows have share 1.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine

from antt.crs import METRIC_SRID
from data.boundaries import sources
from data.importers.read import FileRejected, read_source
from data.importers.report import ImportFailed, ImportReport

SOURCE = "dvhcvn/20250701 merges (NQ 1654-1687/NQ-UBTVQH15)"
BY_AREA = "area_share: area in EPSG:3405 (2009 polygon x 2025 polygon)"
EQUAL = "area_share: equal split (old polygon unknown or not overlapping)"
EFFECTIVE = "2025-07-01"


LINEAGE_COLUMNS = ("new_ma_xa", "new_ten_xa", "old_ma_xa", "old_ten_xa", "merge_type", "old_ma_tinh")


def read_lineage(path: Path | str, report: ImportReport) -> pd.DataFrame | None:
    """The flattened mapping CSV as unit_lineage rows (old_level 'district' for islands).

    Read with the importers' reader, so a file that is missing, empty, a directory, cut off or
    short of a column is a named error in REPORT (None returned), never a traceback; rows with
    an empty code are named row by row."""
    try:
        table = read_source(path)
    except FileRejected as exc:
        report.add(None, "file", exc.vi, exc.en, str(path))
        return None
    found = list(table.original_columns.values()) or list(table.frame.columns)
    missing = [c for c in LINEAGE_COLUMNS if c not in table.frame.columns]
    for c in missing:
        report.add(None, c, f"Thiếu cột '{c}'; có: {', '.join(found)}; cần: {', '.join(LINEAGE_COLUMNS)}",
                   f"Missing column '{c}'; found: {', '.join(found)}; expected: "
                   f"{', '.join(LINEAGE_COLUMNS)}")
    if missing:
        return None
    if not table.rows:
        report.add(None, "file", "Tệp không có dòng dữ liệu nào (chỉ có tiêu đề); cần ít nhất một dòng",
                   "The file has no data rows (a header only); expected at least one row", str(path))
        return None
    f = table.frame
    for i, why in table.unreadable.items():
        report.add(table.rows[i], "row", f"Dòng có {why} ô/cột so với tiêu đề; tệp bị cắt cụt hoặc lệch cột?",
                   f"The row has {why} cells/columns of the header; is the file cut off or are "
                   "columns shifted?")
    for col in ("old_ma_xa", "new_ma_xa"):
        for i in [k for k, v in enumerate(f[col]) if v is None or not str(v).isdigit()]:
            if i not in table.unreadable:
                report.add(table.rows[i], col, f"Mã '{col}' trống hoặc không phải chữ số",
                           f"'{col}' is empty or not digits; expected a GSO code", f[col].iloc[i])
    if report.errors:
        return None
    island = f["old_ma_tinh"].isna()  # 5 island districts became đặc khu
    text = {c: f[c].map(lambda v: "" if v is None else str(v)) for c in LINEAGE_COLUMNS}
    return pd.DataFrame({
        "old_level": island.map({True: "district", False: "commune"}),
        "old_code": text["old_ma_xa"], "old_name": text["old_ten_xa"],
        "new_level": "commune", "new_code": text["new_ma_xa"], "new_name": text["new_ten_xa"],
        "merge_type": text["merge_type"],
    }).set_axis(table.rows)


def write_lineage(conn: Connection, rows: pd.DataFrame) -> tuple[int, int]:
    """Upsert rows and compute area shares; returns (rows inserted, rows updated)."""
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.execute("CREATE TEMP TABLE lineage_stage (old_level text, old_code text, old_name "
                    "text, new_level text, new_code text, new_name text, merge_type text) "
                    "ON COMMIT DROP")
        buf = io.StringIO()
        rows.to_csv(buf, sep="\t", header=False, index=False)
        buf.seek(0)
        cur.copy_expert("COPY lineage_stage FROM STDIN WITH (FORMAT csv, DELIMITER E'\\t')", buf)
        cur.execute(
            f"""
            WITH ins AS (
              INSERT INTO unit_lineage AS l (old_level, old_code, old_name, new_level, new_code,
                  new_name, merge_type, area_share, effective_on, source)
              SELECT old_level, old_code, old_name, new_level, new_code, new_name, merge_type,
                     CASE WHEN merge_type = 'full' THEN 1.0 END, '{EFFECTIVE}', %(src)s
              FROM lineage_stage
              ON CONFLICT (old_level, old_code, new_level, new_code, effective_on) DO UPDATE SET
                  old_name = EXCLUDED.old_name, new_name = EXCLUDED.new_name,
                  merge_type = EXCLUDED.merge_type, area_share = EXCLUDED.area_share,
                  source = EXCLUDED.source
              RETURNING (xmax = 0) AS inserted)
            SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM ins
            """, {"src": SOURCE})
        inserted, updated = cur.fetchone()
        cur.execute(AREA_SHARES_SQL, {"srid": METRIC_SRID, "by_area": f"{SOURCE}; {BY_AREA}",
                                      "equal": f"{SOURCE}; {EQUAL}"})
    return int(inserted), int(updated)


# Intersections are measured in metres; old units are those valid the day before the change,
# new ones those valid on the day. Shares are normalised per old unit.
AREA_SHARES_SQL = """
WITH parts AS (
  SELECT l.id, l.old_code, l.old_level,
         coalesce(ST_Area(ST_Intersection(ST_Transform(o.geom, %(srid)s),
                                          ST_Transform(n.geom, %(srid)s))), 0) AS a
  FROM unit_lineage l
  LEFT JOIN admin_unit o ON o.level = l.old_level AND o.code = l.old_code
       AND o.valid_from < l.effective_on AND o.valid_to = l.effective_on
  LEFT JOIN admin_unit n ON n.level = l.new_level AND n.code = l.new_code
       AND n.valid_from = l.effective_on
  WHERE l.merge_type = 'partial' AND l.effective_on = '2025-07-01'
),
norm AS (
  SELECT id, a, sum(a) OVER w AS total, count(*) OVER w AS n
  FROM parts WINDOW w AS (PARTITION BY old_level, old_code)
)
UPDATE unit_lineage l SET
  area_share = CASE WHEN norm.total > 0 THEN norm.a / norm.total ELSE 1.0 / norm.n END,
  source = CASE WHEN norm.total > 0 THEN %(by_area)s ELSE %(equal)s END
FROM norm WHERE norm.id = l.id
"""


def import_lineage(engine: Engine, path: Path | str | None = None,
                   dry_run: bool = False) -> ImportReport:
    """`antt import lineage`: the whole mapping in one transaction (re-run updates in place)."""
    path = Path(path or sources.path_of(sources.LINEAGE_2025))
    report = ImportReport(kind="lineage", source=str(path), dry_run=dry_run)
    rows = read_lineage(path, report)
    if rows is None:
        return report
    report.rows = len(rows)
    bad = ~rows["merge_type"].isin(["full", "partial"])
    for i in rows.index[bad]:
        report.add(int(i), "merge_type", "merge_type phải là full hoặc partial",
                   "merge_type must be full or partial", rows.loc[i, "merge_type"])
    dup = rows.duplicated(["old_level", "old_code", "new_code"], keep="first")
    for i in rows.index[dup]:
        report.add(int(i), "old_code", "Cặp cũ-mới bị trùng", "Duplicate old/new pair",
                   f"{rows.loc[i, 'old_code']}->{rows.loc[i, 'new_code']}")
    if report.errors:
        return report
    try:
        with engine.begin() as conn:
            report.inserted, report.updated = write_lineage(conn, rows)
            stats = conn.exec_driver_sql(
                "SELECT count(*) FILTER (WHERE source LIKE %s), "
                "count(*) FILTER (WHERE source LIKE %s) FROM unit_lineage "
                "WHERE merge_type = 'partial'", (f"%{BY_AREA}", f"%{EQUAL}")).one()
            report.notes.append(f"partial rows: {stats[0]} shared by area, {stats[1]} equal split")
            if dry_run:
                raise ImportFailed(report)
    except ImportFailed:
        report.notes.append("dry run: rolled back, nothing written")
    return report


@dataclass
class RollUp:
    """New-commune totals, and the old codes that had no lineage (never silently dropped)."""

    values: dict[str, float]
    unmapped: list[str] = field(default_factory=list)


def roll_up(conn: Connection, figures: Mapping[str, float], old_level: str = "commune") -> RollUp:
    """Apportion additive old-era figures (by old code) to 2025 communes.

    A 'full' old unit gives all of its figure to its new commune; a 'partial' one gives
    ``area_share`` of it to each new commune. Non-additive figures (rates) must be rolled up
    as numerator and denominator separately.
    """
    codes = list(figures)
    values = [float(figures[c]) for c in codes]
    rows = conn.exec_driver_sql(
        """
        SELECT l.new_code, sum(v.value * l.area_share), bool_or(l.area_share IS NULL)
        FROM unnest(%(codes)s::text[], %(vals)s::float8[]) AS v(code, value)
        JOIN unit_lineage l ON l.old_code = v.code AND l.old_level = %(lvl)s
        GROUP BY l.new_code ORDER BY l.new_code
        """, {"codes": codes, "vals": values, "lvl": old_level}).fetchall()
    if any(r[2] for r in rows):
        raise ValueError("unit_lineage has rows without area_share: run `antt import lineage`")
    known = {r[0] for r in conn.exec_driver_sql(
        "SELECT DISTINCT old_code FROM unit_lineage WHERE old_code = ANY(%(c)s) "
        "AND old_level = %(lvl)s", {"c": codes, "lvl": old_level})}
    return RollUp({r[0]: float(r[1]) for r in rows}, sorted(set(codes) - known))
