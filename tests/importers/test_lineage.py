"""Lineage: 10,604 rows, area shares computed in metres, and rolling old figures up."""

from __future__ import annotations

import pytest
import shapely
from pyproj import Transformer
from sqlalchemy import text

from data.boundaries import sources
from data.boundaries.lineage import import_lineage, roll_up
from data.boundaries.load import import_boundaries


@pytest.fixture
def both_eras(engine):
    """Hải Phòng 2025 and pre-2025 Hải Dương (the source of most of new Hải Phòng)."""
    assert import_boundaries(engine, "2025", sources.path_of(sources.COMMUNES_2025_HAIPHONG),
                             province_code="31").ok
    assert import_boundaries(
        engine, "pre2025", province_code="30",
        districts_path=sources.path_of(sources.DISTRICTS_PRE2025_HAIDUONG),
        communes_2009_path=sources.path_of(sources.COMMUNES_2009_HAIDUONG)).ok
    return engine


def _hand_share() -> float:
    """Share of 2009 Hưng Đạo (Tứ Kỳ) inside 2025 Tân Kỳ (11113) vs Đại Sơn (11086), by shapely."""
    c2009 = sources.read_vector(sources.path_of(sources.COMMUNES_2009_HAIDUONG))
    old = c2009[(c2009["commune_vn"] == "Xã Hưng Đạo") & (c2009["district_vn"] == "Huyện Tứ Kỳ")]
    new = sources.read_vector(sources.path_of(sources.COMMUNES_2025_HAIPHONG))
    tr = Transformer.from_crs(4326, 3405, always_xy=True)

    def metric(g):
        return shapely.transform(g, lambda xy: __import__("numpy").column_stack(
            tr.transform(xy[:, 0], xy[:, 1])))

    o = metric(old.geometry.iloc[0])
    areas = {c: metric(g).intersection(o).area
             for c, g in zip(new["ma_xa"], new.geometry, strict=True) if c in ("11113", "11086")}
    return areas["11113"] / (areas["11113"] + areas["11086"])


def test_lineage_rows_and_area_shares(both_eras):
    report = import_lineage(both_eras)
    assert report.ok and report.inserted == 10604
    again = import_lineage(both_eras)
    assert (again.inserted, again.updated) == (0, 10604)
    with both_eras.connect() as conn:
        counts = dict(conn.execute(text(
            "SELECT merge_type, count(*) FROM unit_lineage GROUP BY 1")).fetchall())
        shares = dict(conn.execute(text(
            "SELECT new_code, area_share FROM unit_lineage WHERE old_code = '11086'")).fetchall())
        sums_off = conn.execute(text(
            "SELECT count(*) FROM (SELECT old_code, sum(area_share) s FROM unit_lineage "
            "GROUP BY old_level, old_code) x WHERE abs(s - 1) > 1e-9")).scalar_one()
        method = conn.execute(text(
            "SELECT source FROM unit_lineage WHERE old_code = '11086' LIMIT 1")).scalar_one()
    assert counts == {"full": 9592, "partial": 1012}
    assert set(shares) == {"11113", "11086"}
    assert shares["11113"] == pytest.approx(_hand_share(), abs=1e-3)
    assert 0 < shares["11113"] < 1
    assert sums_off == 0
    assert "EPSG:3405" in method


def test_partial_split_without_old_polygon_is_equal(both_eras):
    import_lineage(both_eras)
    with both_eras.connect() as conn:
        # Hà Nội's old communes are not loaded here: no polygon, equal shares.
        rows = conn.execute(text(
            "SELECT area_share, source FROM unit_lineage WHERE old_code = '00016'")).fetchall()
    assert len(rows) >= 2
    assert all(r[0] == pytest.approx(1 / len(rows)) and "equal" in r[1] for r in rows)


def test_roll_up_apportions_old_figures(both_eras):
    import_lineage(both_eras)
    with both_eras.connect() as conn:
        share = conn.execute(text(
            "SELECT area_share FROM unit_lineage WHERE old_code = '11086' AND new_code = '11113'"
        )).scalar_one()
        result = roll_up(conn, {"11113": 100, "11098": 10, "11086": 50, "99999": 7})
    assert result.values["11113"] == pytest.approx(100 + 10 + 50 * share)
    assert result.values["11086"] == pytest.approx(50 * (1 - share))
    assert result.unmapped == ["99999"]
