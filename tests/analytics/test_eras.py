"""Areal interpolation and lineage roll-up across the 2025 reorganisation, by hand."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text

from geo.eras import interpolate, roll_up


def test_areal_interpolation_into_villages(site_engine, site):
    # an old commune (-1000..1000, -500..500 m) around the village square, 2 km^2,
    # population 1000: each 1 km^2 village holds 0.5 km^2 of it -> 1000 x 0.5 / 2 = 250 each
    with site_engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO admin_unit (level, code, name, name_search, population, valid_from, valid_to, geom)
            VALUES ('commune', '88001', 'Xã Cũ', 'xa cu', 1000, '2000-01-01', '2025-07-01',
                    ST_Multi(ST_Transform(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3405), 4326)))"""),
            {"x0": site.cx - 1000, "y0": site.cy - 500, "x1": site.cx + 1000, "y1": site.cy + 500})
    df = interpolate(site_engine, "commune", date(2024, 1, 1), "village", date(2026, 1, 1))
    assert df["estimate"].astype(float).tolist() == pytest.approx([250.0] * 4, rel=1e-6)
    assert df["sources"].tolist() == [1, 1, 1, 1]
    none = interpolate(site_engine, "commune", date(1990, 1, 1), "village", date(2026, 1, 1))
    assert none["estimate"].tolist() == [None] * 4


def test_roll_up_by_lineage(site_engine):
    with site_engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO unit_lineage (old_level, old_code, new_level, new_code, merge_type, area_share)
            VALUES ('commune', 'A', 'commune', 'N1', 'full', NULL),
                   ('commune', 'B', 'commune', 'N1', 'partial', 0.4),
                   ('commune', 'B', 'commune', 'N2', 'partial', 0.6)"""))
    old = pd.DataFrame({"code": ["A", "B", "Z"], "incidents": [10, 5, 7]})
    out = roll_up(site_engine, old, ["incidents"])
    assert out["incidents"].to_dict() == pytest.approx({"N1": 12.0, "N2": 3.0})
    assert out.attrs["unmatched"] == ["Z"]
