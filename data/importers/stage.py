"""The SQL staging table every point importer uses: COPY in, join to units set-based, check.

Why: assigning 100,000 points to communes one trigger call at a time is slow; one join of the
staging table against the subdivided commune polygons (admin_unit_part) does it at once, with
exactly the tie-break of ``unit_at`` in the first migration (a unit whose interior holds the
point beats one whose boundary touches it; then the smallest code). Points outside every commune
are found by the same join and reported, row by row, before anything is written.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable

from sqlalchemy import Connection

from data.importers.fields import Field
from data.importers.report import ImportReport

SQL_TYPES = {"text": "text", "int": "integer", "bool": "boolean", "date": "date",
             "datetime": "timestamptz", "enum": "text", "float": "double precision"}
STAGE = "import_stage"


_NEEDS_QUOTES = re.compile(r'[\t"\n\r]')


def copy_field(text: str | None) -> str:
    """One field of COPY ... (FORMAT csv, DELIMITER tab, NULL '\\N'). Why not csv.writer: it
    leaves a value that is literally '\\N' (or empty) unquoted, and COPY reads that as NULL."""
    if text is None:
        return "\\N"
    if text in ("\\N", "") or _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def copy_line(fields: Iterable[str | None]) -> str:
    return "\t".join(copy_field(f) for f in fields) + "\n"


def _cell(v: object) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, float) and v != v:  # NaN
        return None
    return str(v)


def create_stage(conn: Connection, columns: dict[str, str]) -> None:
    """Temporary table with row_no, lon/lat, on_date, unit ids and the kind's own columns."""
    cols = ", ".join(f"{name} {sqltype}" for name, sqltype in columns.items())
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {STAGE}")
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE {STAGE} (row_no integer PRIMARY KEY, lon double precision, "
        f"lat double precision, on_date date NOT NULL, commune_id integer, village_id integer, "
        f"commune_now_id integer, village_now_id integer, "
        f"geom geometry(Point, 4326), {cols}) ON COMMIT DROP")


def stage_columns(fields: Iterable[Field], extra: dict[str, str] | None = None) -> dict[str, str]:
    out = {f.name: SQL_TYPES[f.kind] for f in fields}
    out.update(extra or {})
    return out


def copy_rows(conn: Connection, columns: list[str], rows: Iterable[list], progress=None) -> int:
    """COPY rows (already typed Python values) into the staging table; returns the count."""
    buf = io.StringIO()
    n = 0
    for r in rows:
        buf.write(copy_line(_cell(v) for v in r))
        n += 1
        if progress is not None and n % 5000 == 0:
            progress(5000)
    if progress is not None:
        progress(n % 5000)
    buf.seek(0)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert(
            f"COPY {STAGE} ({', '.join(columns)}) FROM STDIN "
            "WITH (FORMAT csv, DELIMITER E'\\t', NULL '\\N')", buf)
    conn.exec_driver_sql(
        f"UPDATE {STAGE} SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326) "
        "WHERE lon IS NOT NULL AND lat IS NOT NULL")
    conn.exec_driver_sql(f"CREATE INDEX ON {STAGE} USING gist (geom)")
    conn.exec_driver_sql(f"ANALYZE {STAGE}")
    return n


# unit_at orders by "ST_Contains(part, p) AND NOT ST_Touches(part, p)". For a point p the two
# are the same test: a polygon contains a point only when the point is in its interior, and
# touches it only when the point is on its boundary. So ST_Contains alone gives the same order
# at half the cost (a test compares this join with unit_at on every Hải Phòng commune).
ASSIGN_SQL = """
UPDATE {stage} s SET {column} = a.unit_id
FROM (
  SELECT DISTINCT ON (s.row_no) s.row_no, u.id AS unit_id
  FROM {stage} s
  JOIN admin_unit_part pt ON ST_Intersects(pt.geom, s.geom)
  JOIN admin_unit u ON u.id = pt.unit_id
  WHERE u.level = '{level}' AND s.{column} IS NULL
    AND u.valid_from <= s.on_date AND (u.valid_to IS NULL OR s.on_date < u.valid_to)
  ORDER BY s.row_no, ST_Contains(pt.geom, s.geom) DESC, u.code
) a
WHERE s.row_no = a.row_no
"""


# Today's units (the open-ended ones, migration 0006): the unit of the point's date when that
# one is still open, else the same join among the open-ended units.
NOW_SQL = """
UPDATE {stage} s SET {now} = s.{era} FROM admin_unit u
WHERE u.id = s.{era} AND u.valid_to IS NULL;
UPDATE {stage} s SET {now} = a.unit_id
FROM (
  SELECT DISTINCT ON (s.row_no) s.row_no, u.id AS unit_id
  FROM {stage} s
  JOIN admin_unit_part pt ON ST_Intersects(pt.geom, s.geom)
  JOIN admin_unit u ON u.id = pt.unit_id
  WHERE u.level = '{level}' AND s.{now} IS NULL AND u.valid_to IS NULL
  ORDER BY s.row_no, ST_Contains(pt.geom, s.geom) DESC, u.code
) a
WHERE s.row_no = a.row_no
"""


def assign_units(conn: Connection) -> None:
    """Set commune_id and village_id (units valid on the row's date) and commune_now_id and
    village_now_id (today's units) of every staged point in set-based joins."""
    conn.exec_driver_sql(ASSIGN_SQL.format(stage=STAGE, column="commune_id", level="commune"))
    conn.exec_driver_sql(ASSIGN_SQL.format(stage=STAGE, column="village_id", level="village"))
    for level in ("commune", "village"):
        conn.exec_driver_sql(NOW_SQL.format(stage=STAGE, now=f"{level}_now_id",
                                            era=f"{level}_id", level=level))


def report_outside(conn: Connection, report: ImportReport) -> None:
    """Each staged point inside Vietnam's box but in no commune, neither of its date's era nor
    of today, is an error. A point outside every commune of its date (or of an era whose
    boundaries are not loaded) but inside one of today's is written, placed in today's units
    by location, and counted in the report (``outside_era``)."""
    rows = conn.exec_driver_sql(
        f"""
        SELECT s.row_no, s.on_date, s.lon, s.lat,
               EXISTS (SELECT 1 FROM admin_unit u WHERE u.level = 'commune'
                       AND u.valid_from <= s.on_date
                       AND (u.valid_to IS NULL OR s.on_date < u.valid_to)) AS era_loaded
        FROM {STAGE} s WHERE s.geom IS NOT NULL AND s.commune_id IS NULL
          AND s.commune_now_id IS NULL ORDER BY s.row_no
        """).fetchall()
    for row_no, on_date, lon, lat, era_loaded in rows:
        where = f"{lon:.6f}, {lat:.6f}"
        if era_loaded:
            report.add(row_no, "geometry", "Điểm không nằm trong xã/phường nào",
                       "The point is outside every commune", where)
        else:
            report.add(row_no, "geometry",
                       f"Điểm không nằm trong xã/phường hiện nay nào và chưa nạp ranh giới xã "
                       f"cho ngày {on_date} (antt import boundaries --era)",
                       f"The point is outside every current commune, and no commune boundaries "
                       f"are loaded for {on_date} (run antt import boundaries --era ...)", where)
    era_only, now_only = conn.exec_driver_sql(
        f"SELECT count(*) FILTER (WHERE commune_id IS NULL AND commune_now_id IS NOT NULL), "
        f"count(*) FILTER (WHERE commune_id IS NOT NULL AND commune_now_id IS NULL) "
        f"FROM {STAGE} WHERE geom IS NOT NULL").one()
    report.outside_era = int(era_only)
    if era_only:
        report.notes.append(
            f"{era_only} điểm nằm ngoài mọi xã của thời điểm xảy ra (hoặc chưa nạp ranh giới thời "
            f"đó): chỉ xếp vào xã/thôn hiện nay theo vị trí / {era_only} points lie outside every "
            "commune of their date (or that era's boundaries are not loaded): placed by location "
            "in today's communes and villages only")
    if now_only:
        report.notes.append(
            f"{now_only} điểm nằm ngoài mọi xã hiện nay: chỉ tính cho xã của thời điểm xảy ra / "
            f"{now_only} points lie outside every current commune: counted in the commune of "
            "their date only")
