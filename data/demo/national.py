"""`antt demo --scope country`: the national boundaries a country-wide demo stands on.

The demo itself is the same generator as a province's (``data.demo.generate``), run over every
province with each province's own planted story; this module only makes sure the units are
there: all 34 provinces and 3,321 communes of 2025 at full resolution, and, if asked, the
pre-2025 provinces, districts and communes with the old-to-new lineage, so incidents dated
before 1 July 2025 also have the unit valid on their date.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Engine, text

from data.boundaries import sources

PROVINCES_2025 = 34
COMMUNES_2025 = 3321


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def ensure_national_boundaries(engine: Engine, with_pre2025: bool = False) -> Iterator[str]:
    """Load what is missing (each load one transaction, re-runs change nothing); yield what was done.

    Raises FileNotFoundError (with the path) when the shared boundary files are not there."""
    from data.boundaries.lineage import import_lineage
    from data.boundaries.load import import_boundaries

    have = _count(engine, "SELECT count(*) FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL "
                          "AND valid_from >= '2025-07-01'")
    if have < COMMUNES_2025:
        path = sources.path_of(sources.COMMUNES_2025_FULL)
        if not path.exists():
            raise FileNotFoundError(f"Không thấy tệp ranh giới / boundary file not found: {path}")
        yield (f"Nạp ranh giới 2025 toàn quốc / loading the 2025 national boundaries ({have:,} of "
               f"{COMMUNES_2025:,} communes present); about 2 minutes")
        report = import_boundaries(engine, "2025", path)
        if report.errors:
            raise RuntimeError("; ".join(str(e) for e in report.errors[:5]))
        yield f"  {report.rows:,} đơn vị / units"
    else:
        yield f"Ranh giới 2025 đã có / 2025 boundaries present: {have:,} communes"
    if not with_pre2025:
        return
    old = _count(engine, "SELECT count(*) FROM admin_unit WHERE level = 'commune' "
                         "AND valid_to = '2025-07-01'")
    if old == 0:
        yield "Nạp đơn vị trước 2025 / loading the pre-2025 units (about 1 minute)"
        report = import_boundaries(engine, "pre2025")
        if report.errors:
            raise RuntimeError("; ".join(str(e) for e in report.errors[:5]))
        yield f"  {report.rows:,} đơn vị / units"
    else:
        yield f"Đơn vị trước 2025 đã có / pre-2025 units present: {old:,} communes"
    if _count(engine, "SELECT count(*) FROM unit_lineage") == 0:
        report = import_lineage(engine)
        if report.errors:
            raise RuntimeError("; ".join(str(e) for e in report.errors[:5]))
        yield f"Ánh xạ cũ → mới / lineage: {report.rows:,} rows"
