"""Monthly series and same-period-last-year, including the roll-up of a pre-2025 commune."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text

from geo.filters import IncidentFilter
from geo.timeseries import monthly_series, same_period_last_year

PERIOD = IncidentFilter(date(2025, 7, 1), date(2026, 6, 30))


def test_monthly_series_per_village(site_engine, site):
    df = monthly_series(site_engine, PERIOD, "village", commune_code=site.commune_code)
    assert len(df) == 4 * 12
    names = {v: k for k, v in site.villages.items()}
    got = {(names[u], m.isoformat()[:7]): n for u, m, n in zip(df["unit_id"], df["month"], df["count"],
                                                             strict=True) if n}
    # E3 happened at 23:00 local on 30 June: June, not July (UTC would be the same day here)
    assert got == {("V3", "2025-08"): 1, ("V3", "2025-12"): 1, ("V3", "2026-06"): 1, ("V4", "2026-02"): 1}
    crime = monthly_series(site_engine, IncidentFilter(PERIOD.start, PERIOD.end, "crime"), "village",
                           commune_code=site.commune_code)
    assert crime["count"].sum() == 2
    youth = monthly_series(site_engine, IncidentFilter(PERIOD.start, PERIOD.end, youth=True), "village",
                           commune_code=site.commune_code)
    assert youth["count"].sum() == 1
    with pytest.raises(ValueError):
        monthly_series(site_engine, IncidentFilter(None, PERIOD.end), "village")


def test_same_period_last_year_villages(site_engine, site):
    df = same_period_last_year(site_engine, PERIOD, "village", commune_code=site.commune_code)
    names = {v: k for k, v in site.villages.items()}
    rows = {names[r["unit_id"]]: r for r in df.to_dict("records")}
    assert (rows["V3"]["count"], rows["V3"]["count_last_year"], rows["V3"]["change"]) == (3, 1, 2)
    assert rows["V3"]["change_pct"] == pytest.approx(200.0)
    assert (rows["V4"]["count"], rows["V4"]["count_last_year"], rows["V4"]["change_pct"]) == (1, 0, None)


def test_last_year_in_an_old_commune_is_rolled_up_by_lineage(site_engine, site):
    with site_engine.begin() as conn:
        old = conn.execute(text("""
            INSERT INTO admin_unit (level, code, name, name_search, valid_from, valid_to)
            VALUES ('commune', '99001', 'Xã Cũ', 'xa cu', '2000-01-01', '2025-07-01')
            RETURNING id""")).scalar_one()
        conn.execute(text("""
            INSERT INTO unit_lineage (old_level, old_code, new_level, new_code, merge_type, area_share)
            VALUES ('commune', '99001', 'commune', :new, 'partial', 0.25),
                   ('commune', '99001', 'commune', '99999', 'partial', 0.75)"""), {"new": site.commune_code})
        for _ in range(4):
            conn.execute(text("""
                INSERT INTO incident (category_code, occurred_at, commune_id, geom)
                VALUES ('crime/theft', '2025-03-03 09:00+07', :old,
                        ST_SetSRID(ST_MakePoint(106.5, 20.8), 4326))"""),
                {"old": old})
    row = same_period_last_year(site_engine, PERIOD, "commune", commune_code=site.commune_code).iloc[0]
    # this period: E1, E2, E3, E5; last year: E4 had no 2025 commune (before 1 July 2025), and
    # 4 incidents of the old commune x area_share 0.25 = 1.0
    assert (row["count"], row["count_last_year"]) == (4, 1)
    assert row["change_pct"] == pytest.approx(300.0)
