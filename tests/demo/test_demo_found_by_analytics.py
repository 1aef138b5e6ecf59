"""The analyses find what the demo planted, by name: the hotspot villages (Gi*, 99 %) and the
villages left uncovered (coverage rule). The demo's manifest is the answer key; the analyses
never read it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from geo.coverage import uncovered_villages
from geo.filters import IncidentFilter
from geo.hotspots import village_hotspots

from .conftest import UNTIL

LAST_YEAR = IncidentFilter(start=dt.date(2025, 11, 1), end=UNTIL)


def _manifest(conn) -> dict:
    return conn.execute(text("SELECT value FROM demo_manifest WHERE key = 'demo'")).scalar_one()


def _full_names(conn) -> dict[str, str]:
    """village code -> 'Thôn Bắc / Xã Chí Minh' (the names a user reads)."""
    return dict(conn.execute(text(
        "SELECT v.code, v.full_name || ' / ' || c.full_name FROM admin_unit v "
        "JOIN admin_unit c ON c.id = v.parent_id WHERE v.level = 'village'")).all())


def test_gi_star_finds_every_planted_hotspot_village_by_name(demo_engine):
    with demo_engine.connect() as conn:
        planted = {h["village_name"] + " / " + h["commune_name"] for h in _manifest(conn)["hotspots"]}
        hs = village_hotspots(conn, LAST_YEAR, province_code="31", with_geometry=False, on=UNTIL)
        names = _full_names(conn)
    hot99 = {names[code] for code in hs.loc[hs["bin"] == 3, "code"]}
    assert planted <= hot99, planted - hot99
    # ...and the 99 % class is selective, not most of the map
    assert len(hot99) < 0.1 * len(hs)


def test_coverage_lists_every_village_left_uncovered_by_name(demo_engine):
    with demo_engine.connect() as conn:
        planted = {u["village_name"] + " / " + u["commune_name"] for u in _manifest(conn)["uncovered"]}
        unc = uncovered_villages(conn, UNTIL, province_code="31")
        names = _full_names(conn)
        found = {names[code] for code in unc["code"]}
    assert planted and planted == found
