"""A demo over several provinces (what `antt demo --scope country` runs over all 34): every
province gets its own planted story and a share of the incidents in proportion to its people."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from antt.db import make_engine
from data.demo.generate import EXISTING, apportion, generate

UNTIL = pd.Timestamp("2026-10-31").date()


def test_apportion_is_proportional_and_exact():
    got = apportion(10, pd.Series({"a": 1.0, "b": 1.0, "c": 1.0}))
    assert got.sum() == 10 and sorted(got.tolist()) == [3, 3, 4]
    got = apportion(1000, pd.Series({"a": 750.0, "b": 250.0}))
    assert got.to_dict() == {"a": 750, "b": 250}
    got = apportion(7, pd.Series({"a": 0.5, "b": 0.3, "c": 0.2}))  # 3.5, 2.1, 1.4 -> 4, 2, 1
    assert got.to_dict() == {"a": 4, "b": 2, "c": 1}


@pytest.fixture
def two_provinces(haiphong_url):
    """The real Hải Phòng (31) and Hưng Yên (33) communes of 2025."""
    from data.boundaries import sources
    from data.boundaries.load import load_2025

    engine = make_engine(haiphong_url)
    load_2025(engine, sources.path_of(sources.COMMUNES_2025_SIMPLE), province_code="33")
    yield engine
    engine.dispose()


def test_each_province_has_its_own_story_and_share(two_provinces):
    engine = two_provinces
    result = generate(engine, EXISTING, incidents=4000, villages_per_commune=3, years=2, until=UNTIL,
                      password_for=lambda role: f"demo-{role}-pass")
    assert result.province_codes == ["31", "33"]
    with engine.connect() as conn:
        people = dict(conn.execute(text(
            "SELECT province_code, sum(population) FROM admin_unit WHERE level = 'village' AND is_demo "
            "GROUP BY 1")).all())
        by_province = dict(conn.execute(text(
            "SELECT c.province_code, count(*) FROM incident i JOIN admin_unit c ON c.id = i.commune_now_id "
            "WHERE i.is_demo GROUP BY 1")).all())
        ids = conn.execute(text("SELECT count(DISTINCT external_id), count(*) FROM incident")).one()
        province_of = dict(conn.execute(text(
            "SELECT code, province_code FROM admin_unit WHERE level = 'commune' AND valid_to IS NULL")).all())
        plans = dict(conn.execute(text(
            "SELECT unit_code, count(*) FROM plan WHERE unit_level = 'province' GROUP BY 1")).all())
    expected = apportion(4000, pd.Series(people).astype(float).reindex(["31", "33"]))
    # every incident lands in a commune of the province it was drawn for (one drawn across the
    # border is put back on its anchor village), so the shares are exact
    assert by_province == expected.to_dict()
    assert sum(by_province.values()) == 4000 == ids[0] == ids[1]
    hotspots = pd.Series([province_of[h.commune_code] for h in result.plan.hotspots])
    assert hotspots.value_counts().to_dict() == {"31": 3, "33": 3}
    assert set(plans) == {"31", "33"}
    uncovered = pd.Series([province_of[u.commune_code] for u in result.plan.uncovered]).value_counts()
    assert uncovered["31"] >= 3 and uncovered["33"] >= 3
