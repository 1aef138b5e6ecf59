"""Coverage figures against a hand computation from the fixture (see conftest.py)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from geo.coverage import (
    CoverageRule,
    commune_coverage,
    commune_coverage_rolled_up,
    uncovered_communes,
    uncovered_villages,
    village_coverage,
)
from geo.filters import IncidentFilter

D1 = date(2026, 6, 30)   # M1 kha, M4 tot, M2 trung_binh, M3 unrated: V1, V2 covered
D2 = date(2026, 10, 31)  # M1 yeu, M2 suspended: only V1 covered (by M4)
# ST_Buffer(r=500, quad_segs=8) is a regular 32-gon inscribed in the circle
BUFFER_AREA = 0.5 * 32 * 500.0**2 * math.sin(2 * math.pi / 32)
SHARE = BUFFER_AREA / 1_000_000.0


def _by_village(df, site):
    names = {v: k for k, v in site.villages.items()}
    return {names[r["id"]]: r for r in df.to_dict("records")}


def test_village_coverage_on_two_dates(site_engine, site):
    v = _by_village(village_coverage(site_engine, D1, commune_code=site.commune_code), site)
    assert {k: bool(r["covered"]) for k, r in v.items()} == {"V1": True, "V2": True, "V3": False, "V4": False}
    assert (v["V1"]["models_active"], v["V1"]["rated_kha"], v["V1"]["rated_tot"]) == (2, 1, 1)
    assert v["V1"]["models_by_type"] == {"to_tu_quan": 1, "dong_ho_tu_quan": 1}
    assert (v["V3"]["models_active"], v["V3"]["unrated"], v["V3"]["models_qualifying"]) == (1, 1, 0)
    assert v["V1"]["fire_household_share"] == pytest.approx(100 / 250)
    assert v["V4"]["fire_household_share"] is None  # no household figure: no fake zero
    assert (v["V2"]["institutions"], v["V2"]["institutions_safe"]) == (2, 1)
    assert v["V2"]["institutions_safe_share"] == pytest.approx(0.5)
    assert v["V1"]["festival_held"] is True and v["V2"]["festival_held"] is None

    v2 = _by_village(village_coverage(site_engine, D2, commune_code=site.commune_code), site)
    covered = {k: bool(r["covered"]) for k, r in v2.items()}
    assert covered == {"V1": True, "V2": False, "V3": False, "V4": False}
    assert (v2["V1"]["rated_yeu"], v2["V1"]["rated_tot"], v2["V2"]["models_active"]) == (1, 1, 0)
    assert v2["V1"]["fire_household_share"] == pytest.approx(150 / 250)


def test_rule_is_configurable(site_engine, site):
    strict = CoverageRule(min_rating="kha", min_count=2)
    v = _by_village(village_coverage(site_engine, D1, strict, commune_code=site.commune_code), site)
    assert [k for k, r in v.items() if r["covered"]] == ["V1"]
    cams = CoverageRule(model_types=("camera_antt",))
    v = _by_village(village_coverage(site_engine, D1, cams, commune_code=site.commune_code), site)
    assert [k for k, r in v.items() if r["covered"]] == ["V2"]
    anything = CoverageRule(min_rating=None)
    v = _by_village(village_coverage(site_engine, D1, anything, commune_code=site.commune_code), site)
    assert sorted(k for k, r in v.items() if r["covered"]) == ["V1", "V2", "V3"]
    with pytest.raises(ValueError):
        CoverageRule(min_rating="excellent")


def test_commune_coverage_matches_hand_computation(site_engine, site):
    with site_engine.connect() as conn:
        commune_area = conn.execute(text(
            "SELECT ST_Area(ST_Transform(geom, 3405)) FROM admin_unit WHERE id = :i"),
            {"i": site.commune_id}).scalar_one()
    c = commune_coverage(site_engine, D1, radius_m=500, commune_code=site.commune_code).iloc[0]
    assert (c["villages"], c["villages_covered"]) == (4, 2)
    assert c["covered_share"] == pytest.approx(0.5)
    assert not c["covered"]  # 0.5 < 0.8
    assert c["models_active"] == 4 and c["models_qualifying"] == 3
    # three 32-gons inside V1, V2, V3 (M1 and M4 share a point); V4 has no population
    assert c["population_within_r"] == pytest.approx(SHARE * (1000 + 2000 + 500), rel=1e-4)
    assert c["population_within_r_share"] == pytest.approx(SHARE, rel=1e-4)
    assert c["area_within_r_share"] == pytest.approx(3 * BUFFER_AREA / commune_area, rel=1e-4)
    assert c["fire_household_share"] is None or c["fire_households"] == 100

    c2 = commune_coverage(site_engine, D2, radius_m=500, commune_code=site.commune_code).iloc[0]
    assert c2["covered_share"] == pytest.approx(0.25)
    assert c2["population_within_r"] == pytest.approx(SHARE * 1500, rel=1e-4)
    assert c2["population_within_r_share"] == pytest.approx(SHARE * 1500 / 3500, rel=1e-4)
    loose = commune_coverage(site_engine, D2, CoverageRule(commune_min_share=0.25),
                             commune_code=site.commune_code).iloc[0]
    assert loose["covered"]


def test_communes_without_villages_use_their_own_models(site_engine, site):
    df = commune_coverage(site_engine, D1, province_code="31")
    assert len(df) == 114
    others = df[df["id"] != site.commune_id]
    assert (others["villages"] == 0).all() and not others["covered"].any()
    assert (others["area_within_r_share"] == 0).all()


def test_uncovered_villages_ranked_by_need(site_engine, site):
    df = uncovered_villages(site_engine, D1, commune_code=site.commune_code)
    names = {v: k for k, v in site.villages.items()}
    assert [names[i] for i in df["id"]] == ["V3", "V4"]  # V4 has no population: rate unknown, after
    v3 = df.iloc[0]
    assert (v3["incidents"], v3["youth_incidents"], v3["incidents_last_year"]) == (3, 1, 1)
    assert v3["incidents_per_1000"] == pytest.approx(3 * 1000 / 500)
    assert (v3["change"], v3["change_pct"]) == (2, pytest.approx(200.0))
    assert df.iloc[1]["incidents_per_1000"] is None and df.iloc[1]["incidents"] == 1
    theft = uncovered_villages(site_engine, D1, period=IncidentFilter(date(2025, 7, 1), D1, "crime"),
                               commune_code=site.commune_code)
    assert list(theft["incidents"]) == [2, 0]


def test_uncovered_communes(site_engine, site):
    df = uncovered_communes(site_engine, D1, province_code="31")
    assert len(df) == 114  # nobody else has villages or models
    top = df.iloc[0]
    assert top["id"] == site.commune_id or top["incidents_per_1000"] is None
    row = df[df["id"] == site.commune_id].iloc[0]
    assert row["incidents"] == 4  # E1-E3 and E5; E4 is before the 2025 commune existed


def test_old_era_rolled_up_into_2025_communes(site_engine, site):
    with site_engine.begin() as conn:
        old = conn.execute(text("""
            INSERT INTO admin_unit (level, code, name, name_search, population, valid_from, valid_to)
            VALUES ('commune', '77001', 'Xã Cũ', 'xa cu', 900, '2000-01-01', '2025-07-01') RETURNING id""")
        ).scalar_one()
        ids = [conn.execute(text("""
            INSERT INTO admin_unit
                (level, code, name, name_search, parent_id, population, valid_from, valid_to)
            VALUES ('village', :c, :c, :c, :p, :pop, '2000-01-01', '2025-07-01') RETURNING id"""),
            {"c": f"77001{k}", "p": old, "pop": 300 * (k + 1)}).scalar_one() for k in range(2)]
        mid = conn.execute(text("""
            INSERT INTO security_model (type_code, name, founded_on, commune_id, village_id, geom)
            VALUES ('to_tu_quan', 'cũ', '2020-01-01', :c, :v, ST_SetSRID(ST_MakePoint(106.5, 20.8), 4326))
            RETURNING id"""), {"c": old, "v": ids[0]}).scalar_one()
        conn.execute(text("INSERT INTO model_rating (model_id, rating, rated_on) "
                          "VALUES (:m, 'kha', '2021-01-01')"), {"m": mid})
        conn.execute(text("""
            INSERT INTO unit_lineage (old_level, old_code, new_level, new_code, merge_type, area_share)
            VALUES ('commune', '77001', 'commune', :n, 'full', NULL)"""), {"n": site.commune_code})
    df = commune_coverage_rolled_up(site_engine, date(2024, 6, 1))
    row = df[df["code"] == site.commune_code].iloc[0]
    assert (row["villages"], row["villages_covered"], row["models_qualifying"]) == (2, 1, 1)
    assert row["covered_share"] == pytest.approx(0.5) and not row["covered"]
    assert df.attrs["unmatched"] == []


def test_counts_only_without_radius(site_engine, site):
    full = commune_coverage(site_engine, D1, commune_code=site.commune_code).iloc[0]
    quick = commune_coverage(site_engine, D1, radius_m=None, commune_code=site.commune_code).iloc[0]
    for col in ("villages", "villages_covered", "models_active", "models_qualifying", "covered"):
        assert quick[col] == full[col]
    assert quick["population_within_r"] is None and quick["area_within_r_share"] is None


def test_population_interpolated_from_pre_2025_communes(site_engine, site):
    # a pre-2025 commune with the same outline as another 2025 commune (no villages, no
    # population of its own), 2009 population 800 -> that commune gets 800, its neighbours
    # (touching only along the border) get nothing
    with site_engine.begin() as conn:
        target = conn.execute(text("""
            SELECT id FROM admin_unit WHERE level = 'commune' AND id <> :s ORDER BY code LIMIT 1"""),
            {"s": site.commune_id}).scalar_one()
        conn.execute(text("""
            INSERT INTO admin_unit (level, code, name, name_search, population, valid_from, valid_to, geom)
            SELECT 'commune', '66001', 'Xã Cũ', 'xa cu', 800, '2000-01-01', '2025-07-01', geom
            FROM admin_unit WHERE id = :t"""), {"t": target})
    df = commune_coverage(site_engine, D1, radius_m=None, province_code="31")
    got = df.set_index("id")
    assert got.at[target, "population"] == pytest.approx(800.0)
    assert got.at[target, "population_source"] == "interpolated_2009"
    assert (got.at[site.commune_id, "population"], got.at[site.commune_id, "population_source"]) == (
        3500, "villages")
    others = got.drop(index=[target, site.commune_id])
    assert others["population"].isna().all()
    no_fill = commune_coverage(site_engine, D1, radius_m=None, province_code="31", population_fallback=False)
    assert no_fill.set_index("id").at[target, "population"] is None or pd.isna(
        no_fill.set_index("id").at[target, "population"])
