"""geo.reach: area within R of an active model, against hand computation, and its memo.

The fixture (tests/analytics/conftest.py) has four 1 km squares around a commune centre with
models at the centres of V1 (two, same point), V2 (suspended from 2026-09-01) and V3 (founded
2026-03-01). A 500 m 32-gon around a square's centre lies inside it, so a village with a model
has exactly BUFFER_AREA of its area within 500 m, and its neighbours (touching at an edge) none.
"""

from __future__ import annotations

import math
import threading
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import event, text

import geo.reach
from geo.reach import unit_reach

D1 = date(2026, 6, 30)   # M1, M4 (V1), M2 (V2), M3 (V3) active
D2 = date(2026, 10, 31)  # M2 suspended: V1 and V3 only
BUFFER_AREA = 0.5 * 32 * 500.0**2 * math.sin(2 * math.pi / 32)


def _villages(df, site) -> dict[str, dict]:
    names = {vid: vk for vk, vid in site.villages.items()}
    rows = df[df["level"] == "village"].to_dict("records")
    return {names[r["unit_id"]]: r for r in rows if r["unit_id"] in names}


def _cache_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM reach_cache")).scalar_one()


def _new_model(conn, name: str, x: float, y: float) -> None:
    """An active to_tu_quan model founded 2026-01-01 at (x, y) in EPSG:3405."""
    conn.execute(text("""
        INSERT INTO security_model (external_id, type_code, name, founded_on, status, geom)
        SELECT :name, 'to_tu_quan', :name, '2026-01-01', 'active',
               ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 4326)"""),
        {"name": name, "x": x, "y": y})


def test_within_areas_match_hand_computation(site_engine, site):
    df = unit_reach(site_engine, D1, 500, commune_code=site.commune_code)
    v = _villages(df, site)
    for vk in ("V1", "V2", "V3"):
        assert v[vk]["area_within_m2"] == pytest.approx(BUFFER_AREA, rel=1e-4)
        assert v[vk]["area_within_share"] == pytest.approx(BUFFER_AREA / 1e6, rel=1e-4)
    assert v["V4"]["area_within_m2"] == pytest.approx(0.0, abs=1e-6)
    commune = df[df["level"] == "commune"].iloc[0]
    assert commune["unit_id"] == site.commune_id
    assert commune["area_within_m2"] == pytest.approx(3 * BUFFER_AREA, rel=1e-4)

    d2 = _villages(unit_reach(site_engine, D2, 500, commune_code=site.commune_code), site)
    assert d2["V2"]["area_within_m2"] == pytest.approx(0.0, abs=1e-6)  # its model is suspended
    assert d2["V1"]["area_within_m2"] == pytest.approx(BUFFER_AREA, rel=1e-4)


def test_second_call_reads_the_memo_and_agrees(site_engine, site):
    first = unit_reach(site_engine, D1, 500, province_code="31")
    assert first["computed"].sum() == 5  # the site's commune and its 4 villages; no other models
    assert _cache_rows(site_engine) == 5
    second = unit_reach(site_engine, D1, 500, province_code="31")
    assert not second["computed"].any()
    cols = ["unit_id", "key", "area_m2", "area_within_m2", "area_within_share"]
    pd.testing.assert_frame_equal(second[cols], first[cols])
    # another radius is another key: overlaid afresh, 250 m circles are a quarter of the area
    small = _villages(unit_reach(site_engine, D1, 250, commune_code=site.commune_code), site)
    assert small["V1"]["computed"]
    assert small["V1"]["area_within_m2"] == pytest.approx(BUFFER_AREA / 4, rel=1e-4)


def test_a_new_model_recomputes_only_its_commune(site_engine, site):
    unit_reach(site_engine, D1, 500, province_code="31")
    with site_engine.begin() as conn:
        _new_model(conn, "M5", site.cx + 500, site.cy - 500)  # V4's centre
    after = unit_reach(site_engine, D1, 500, province_code="31")
    assert set(after.loc[after["computed"], "unit_id"]) == {site.commune_id, *site.villages.values()}
    v = _villages(after, site)
    assert v["V4"]["area_within_m2"] == pytest.approx(BUFFER_AREA, rel=1e-4)
    assert v["V1"]["area_within_m2"] == pytest.approx(BUFFER_AREA, rel=1e-4)


def test_a_moved_model_and_an_edited_outline_change_the_key(site_engine, site):
    before = _villages(unit_reach(site_engine, D1, 500, commune_code=site.commune_code), site)
    with site_engine.begin() as conn:  # move M3 from V3's centre onto V3's west edge
        conn.execute(text("""
            UPDATE security_model SET geom = ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 4326)
            WHERE external_id = 'M3'"""), {"x": site.cx - 1000, "y": site.cy - 500})
    moved = _villages(unit_reach(site_engine, D1, 500, commune_code=site.commune_code), site)
    assert moved["V3"]["key"] != before["V3"]["key"] and moved["V3"]["computed"]
    assert moved["V3"]["area_within_m2"] == pytest.approx(BUFFER_AREA / 2, rel=1e-4)

    with site_engine.begin() as conn:  # V2 shrinks to its western half
        conn.execute(text("""
            UPDATE admin_unit SET geom = ST_Multi(ST_Transform(
                ST_MakeEnvelope(:x0, :y0, :x1, :y1, 3405), 4326)) WHERE id = :id"""),
            {"x0": site.cx, "y0": site.cy, "x1": site.cx + 500, "y1": site.cy + 1000,
             "id": site.villages["V2"]})
    edited = _villages(unit_reach(site_engine, D1, 500, commune_code=site.commune_code), site)
    assert edited["V2"]["computed"] and not edited["V1"]["computed"]
    assert edited["V2"]["area_within_m2"] == pytest.approx(BUFFER_AREA / 2, rel=1e-4)
    assert edited["V2"]["area_within_share"] == pytest.approx(BUFFER_AREA / 2 / 500_000, rel=1e-4)


def test_a_model_outside_the_commune_but_within_r_counts(site_engine, site):
    """A model 250 m east of a commune's easternmost vertex lies outside the commune (and its
    box) but its 500 m circle reaches in: the commune's key takes it (the box grown by R) and
    its area within R is the exact overlay of that circle."""
    with site_engine.begin() as conn:
        far = conn.execute(text("""
            SELECT c.id, c.code FROM admin_unit c, admin_unit s
            WHERE c.level = 'commune' AND s.id = :site AND NOT ST_DWithin(
                ST_Transform(c.geom, 3405), ST_Transform(s.geom, 3405), 5000)
            ORDER BY c.code LIMIT 1"""), {"site": site.commune_id}).one()
        x, y = conn.execute(text("""
            SELECT ST_X(p), ST_Y(p) FROM (SELECT (ST_DumpPoints(ST_Transform(geom, 3405))).geom AS p
                                         FROM admin_unit WHERE id = :id) v
            ORDER BY ST_X(p) DESC LIMIT 1"""), {"id": far.id}).one()
        _new_model(conn, "M8", x + 250, y)
        expected = conn.execute(text("""
            SELECT ST_Area(ST_Intersection(ST_Transform(c.geom, 3405),
                                           ST_Buffer(ST_Transform(m.geom, 3405), 500, 8)))
            FROM admin_unit c, security_model m WHERE c.id = :id AND m.external_id = 'M8'"""),
            {"id": far.id}).scalar_one()
    assert expected > 10_000  # the circle reaches well into the commune
    df = unit_reach(site_engine, D1, 500, commune_code=far.code)
    row = df[df["unit_id"] == far.id].iloc[0]
    assert row["models"] == 1
    assert row["area_within_m2"] == pytest.approx(expected, rel=1e-6)


def test_memo_outlives_the_callers_rolled_back_transaction(site_engine, site):
    with site_engine.connect() as conn:
        df = unit_reach(conn, D1, 500, commune_code=site.commune_code)
        assert df["computed"].any()
        conn.rollback()
    assert _cache_rows(site_engine) == int(df["computed"].sum())


def test_old_entries_are_pruned(site_engine, site, monkeypatch):
    monkeypatch.setattr(geo.reach, "KEEP_PER_UNIT", 1)
    unit_reach(site_engine, D1, 500, commune_code=site.commune_code)
    unit_reach(site_engine, D2, 500, commune_code=site.commune_code)  # M2 inactive: new keys
    with site_engine.connect() as conn:
        per_unit = conn.execute(text(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM reach_cache GROUP BY unit_id) t")).scalar_one()
    assert per_unit == 1


def test_parallel_overlays_agree_with_one_connection(site_engine, site, monkeypatch):
    pools = []

    class Spy(geo.reach.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(geo.reach, "ThreadPoolExecutor", Spy)
    monkeypatch.setattr(geo.reach, "PARALLEL_MIN_COMMUNES", 1)
    cols = ["unit_id", "key", "area_m2", "area_within_m2", "area_within_share"]
    parallel = unit_reach(site_engine, D1, 500, province_code="31", workers=2)
    assert pools == [(2,)] and parallel["computed"].sum() == 5
    with site_engine.begin() as conn:
        conn.execute(text("TRUNCATE reach_cache"))
    serial = unit_reach(site_engine, D1, 500, province_code="31", workers=1)
    assert len(pools) == 1 and serial["computed"].sum() == 5
    pd.testing.assert_frame_equal(parallel[cols], serial[cols])


def test_without_spare_connections_the_callers_does_it_all(site_engine, site, monkeypatch):
    pools = []
    monkeypatch.setattr(geo.reach, "ThreadPoolExecutor", lambda *a, **k: pools.append(a))
    monkeypatch.setattr(geo.reach, "PARALLEL_MIN_COMMUNES", 1)
    monkeypatch.setattr(geo.reach, "SIDE_CONNECTIONS", threading.BoundedSemaphore(1))
    df = unit_reach(site_engine, D1, 500, province_code="31", workers=4)
    assert pools == []  # one spare permit is no parallelism
    assert df["computed"].sum() == 5
    assert _cache_rows(site_engine) == 5  # the permit was given back for the memo write
    assert geo.reach.SIDE_CONNECTIONS.acquire(blocking=False)


def test_a_callers_own_unsaved_model_is_seen(site_engine, site, monkeypatch):
    """Other connections cannot see it, so the overlays stay on the caller's connection."""
    monkeypatch.setattr(geo.reach, "PARALLEL_MIN_COMMUNES", 1)
    with site_engine.connect() as conn:
        _new_model(conn, "M6", site.cx + 500, site.cy - 500)
        v = _villages(unit_reach(conn, D1, 500, commune_code=site.commune_code, workers=2), site)
        assert v["V4"]["area_within_m2"] == pytest.approx(BUFFER_AREA, rel=1e-4)
        conn.rollback()
    v = _villages(unit_reach(site_engine, D1, 500, commune_code=site.commune_code), site)
    assert v["V4"]["area_within_m2"] == pytest.approx(0.0, abs=1e-6)


def _lookups(engine):
    """A list that grows by one for each reach lookup statement run on ``engine``, and the
    function that stops counting."""
    seen = []

    def count(conn, cursor, statement, *args):
        if "LEFT JOIN reach_cache rc" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    return seen, lambda: event.remove(engine, "before_cursor_execute", count)


def test_a_repeated_lookup_comes_from_the_process_memo(site_engine, site):
    cols = ["unit_id", "level", "commune_id", "models", "key", "area_m2", "area_within_m2",
            "area_within_share"]
    first = unit_reach(site_engine, D1, 500, province_code="31")  # overlays: not kept whole
    assert first["computed"].any()
    seen, stop = _lookups(site_engine)
    try:
        second = unit_reach(site_engine, D1, 500, province_code="31")  # all from reach_cache: kept
        assert len(seen) == 1 and not second["computed"].any()
        third = unit_reach(site_engine, D1, 500, province_code="31")
        assert len(seen) == 1
        pd.testing.assert_frame_equal(third[cols], first[cols])
        assert not third["computed"].any()
        third["area_m2"] = 0.0  # a caller's change to the answer it got stays its own
        pd.testing.assert_frame_equal(unit_reach(site_engine, D1, 500, province_code="31")[cols], first[cols])
        with site_engine.begin() as conn:  # a rating is not an input: the answer is kept
            conn.execute(text("INSERT INTO model_rating (model_id, rating, rated_on) "
                              "SELECT id, 'tot', '2026-01-02' FROM security_model WHERE external_id = 'M1'"))
        unit_reach(site_engine, D1, 500, province_code="31")
        assert len(seen) == 1
        with site_engine.begin() as conn:  # any write to the models is another version
            conn.execute(text("UPDATE security_model SET name = name || ' mới' WHERE external_id = 'M1'"))
        renamed = unit_reach(site_engine, D1, 500, province_code="31")
        assert len(seen) == 2
        pd.testing.assert_frame_equal(renamed[cols], first[cols])
        with site_engine.begin() as conn:  # and to the units
            conn.execute(text("UPDATE admin_unit SET population = population WHERE id = :id"),
                         {"id": site.villages["V1"]})
        unit_reach(site_engine, D1, 500, province_code="31")
        assert len(seen) == 4  # looked up, and V1 (a new row version) overlaid again
        for on, radius, scope in ((D2, 500, {"province_code": "31"}), (D1, 250, {"province_code": "31"}),
                                  (D1, 500, {"commune_code": site.commune_code})):
            before = len(seen)
            unit_reach(site_engine, on, radius, **scope)
            assert len(seen) > before  # another date, radius or scope is another answer
    finally:
        stop()


def test_a_caller_that_has_written_neither_reads_nor_fills_the_process_memo(site_engine, site):
    unit_reach(site_engine, D1, 500, commune_code=site.commune_code)
    kept = _villages(unit_reach(site_engine, D1, 500, commune_code=site.commune_code), site)
    assert kept["V4"]["area_within_m2"] == pytest.approx(0.0, abs=1e-6)
    with site_engine.connect() as conn:
        _new_model(conn, "M7", site.cx + 500, site.cy - 500)
        for _ in range(2):  # the second call would be a memo hit if the first had filled it
            v = _villages(unit_reach(conn, D1, 500, commune_code=site.commune_code), site)
            assert v["V4"]["area_within_m2"] == pytest.approx(BUFFER_AREA, rel=1e-4)
        conn.rollback()
    after = _villages(unit_reach(site_engine, D1, 500, commune_code=site.commune_code), site)
    assert after["V4"]["area_within_m2"] == pytest.approx(0.0, abs=1e-6)
    # a committed write brings the models to the version the rolled-back one had: its answer,
    # had it been kept, would be taken for this one
    with site_engine.begin() as conn:
        conn.execute(text("UPDATE security_model SET name = name || ' mới' WHERE external_id = 'M1'"))
    after = _villages(unit_reach(site_engine, D1, 500, commune_code=site.commune_code), site)
    assert after["V4"]["area_within_m2"] == pytest.approx(0.0, abs=1e-6)


def test_radius_must_be_positive(site_engine):
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            unit_reach(site_engine, D1, bad)
