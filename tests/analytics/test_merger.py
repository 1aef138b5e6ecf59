"""Incidents across the 1 July 2025 merger, on hand-made units (issue 13).

Squares in EPSG:3405, metres from an origin near Hải Phòng (X0, Y0):

    pre-2025 (valid until 2025-07-01): province 94 > district 940 >
        OA [0,2000] x [0,2000]          OB [2000,4000] x [0,2000]
        (the strip y 2000..3000 lies in no pre-2025 unit)
    2025 (valid from 2025-07-01): province 95, outline [0,4000] x [0,2000] (it misses the
        communes' strip y 2000..3000, as real outlines miss commune area) >
        NA [0,3000] x [0,3000]: villages V1 [0,1500] x [0,3000], V2 [1500,3000] x [0,3000]
        NB [3000,4000] x [0,3000]: village V3 (all of NB)
    lineage: OA -> NA full; OB -> NA partial 0.5, OB -> NB partial 0.5

Incidents (x, y, date):
    before the merger: I1 (500, 500) OA/V1, I2 (2500, 500) OB/V2, I3 (3500, 1000) OB/V3,
        I4 (1000, 2500) in no old unit/V1, I5 (3500, 2950) in no old unit/V3
    after: J1 (500, 500) V1, J2 (2500, 1500) V2, J3 (3500, 2950) V3, J4 (1000, 2500) V1
    (I4, I5, J3, J4 lie outside the province outline, at least 500 m from it)

By hand, period 2025-07-01..2026-06-30 (after) and the year before (before):
    hexagons, villages, communes, province: after 4, before 5, both 9
    communes after/before: NA 3/3 (J1 J2 J4 / I1 I2 I4), NB 1/2 (J3 / I3 I5)
    villages after/before: V1 2/2, V2 1/1, V3 1/2
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from data.importers.core import import_points
from geo.emerging import emerging_hotspots
from geo.filters import IncidentFilter
from geo.grid import hex_counts
from geo.hotspots import hex_hotspots, village_counts, village_hotspots
from geo.timeseries import monthly_series, same_period_last_year

X0, Y0 = 600_000.0, 2_310_000.0
MERGER = dt.date(2025, 7, 1)
AFTER = IncidentFilter(dt.date(2025, 7, 1), dt.date(2026, 6, 30))
BEFORE = IncidentFilter(dt.date(2024, 7, 1), dt.date(2025, 6, 30))
BOTH = IncidentFilter(dt.date(2024, 7, 1), dt.date(2026, 6, 30))
ON = dt.date(2026, 6, 30)

# level, code, parent code, province code, box (x0, y0, x1, y1), valid_from, valid_to
OLD = [
    ("province", "94", None, "94", (0, 0, 4000, 2000)),
    ("district", "940", "94", "94", (0, 0, 4000, 2000)),
    ("commune", "94001", "940", "94", (0, 0, 2000, 2000)),
    ("commune", "94002", "940", "94", (2000, 0, 4000, 2000)),
]
NEW = [
    ("province", "95", None, "95", (0, 0, 4000, 2000)),
    ("commune", "95001", "95", "95", (0, 0, 3000, 3000)),
    ("commune", "95002", "95", "95", (3000, 0, 4000, 3000)),
    ("village", "95001V1", "95001", "95", (0, 0, 1500, 3000)),
    ("village", "95001V2", "95001", "95", (1500, 0, 3000, 3000)),
    ("village", "95002V3", "95002", "95", (3000, 0, 4000, 3000)),
]
INCIDENTS = [  # external id, x, y, local date
    ("I1", 500, 500, "2024-08-10"), ("I2", 2500, 500, "2024-09-01"),
    ("I3", 3500, 1000, "2025-03-01"), ("I4", 1000, 2500, "2024-10-01"),
    ("I5", 3500, 2950, "2025-02-01"),
    ("J1", 500, 500, "2025-08-10"), ("J2", 2500, 1500, "2025-09-01"),
    ("J3", 3500, 2950, "2026-02-01"), ("J4", 1000, 2500, "2025-10-01"),
]
VILLAGE = {"I1": "V1", "I2": "V2", "I3": "V3", "I4": "V1", "I5": "V3",
           "J1": "V1", "J2": "V2", "J3": "V3", "J4": "V1"}


def _box(b: tuple[float, float, float, float]) -> str:
    x0, y0, x1, y1 = b
    return (f"ST_Multi(ST_Transform(ST_MakeEnvelope({X0 + x0}, {Y0 + y0}, {X0 + x1}, {Y0 + y1}, "
            "3405), 4326))")


def _units(conn, rows, valid_from: str, valid_to: str | None) -> None:
    for level, code, parent, province, box in rows:
        conn.execute(text(f"""
            INSERT INTO admin_unit (level, code, name, name_search, parent_id, province_code,
                                    valid_from, valid_to, geom)
            VALUES (:level, :code, :code, :code,
                    (SELECT id FROM admin_unit WHERE code = :parent AND valid_from = :vf),
                    :province, :vf, :vt, {_box(box)})"""),
            {"level": level, "code": code, "parent": parent, "province": province,
             "vf": valid_from, "vt": valid_to})


def _old_units(conn) -> None:
    _units(conn, OLD, "2000-01-01", "2025-07-01")
    conn.execute(text("""
        INSERT INTO unit_lineage (old_level, old_code, new_level, new_code, merge_type, area_share)
        VALUES ('commune', '94001', 'commune', '95001', 'full', 1.0),
               ('commune', '94002', 'commune', '95001', 'partial', 0.5),
               ('commune', '94002', 'commune', '95002', 'partial', 0.5)"""))


def _new_units(conn) -> None:
    _units(conn, NEW, "2025-07-01", None)


def _lonlat(conn, x: float, y: float) -> tuple[float, float]:
    row = conn.execute(text("SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID("
                            "ST_MakePoint(:x, :y), 3405), 4326) p"), {"x": X0 + x, "y": Y0 + y}).one()
    return float(row[0]), float(row[1])


def _incident_csv(engine: Engine, path: Path) -> Path:
    with engine.connect() as conn:
        lines = ["ma,loai,ngay,kinh_do,vi_do"]
        for ext, x, y, day in INCIDENTS:
            lon, lat = _lonlat(conn, x, y)
            lines.append(f"{ext},crime/theft,{day} 10:00,{lon!r},{lat!r}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _insert_incidents(conn) -> None:
    for ext, x, y, day in INCIDENTS:
        conn.execute(text("""
            INSERT INTO incident (external_id, category_code, occurred_at, geom)
            VALUES (:e, 'crime/theft', CAST(:d AS date) + time '10:00' AT TIME ZONE 'Asia/Ho_Chi_Minh',
                    ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 4326))"""),
            {"e": ext, "d": day, "x": X0 + x, "y": Y0 + y})


@pytest.fixture
def merged(engine: Engine, tmp_path: Path) -> Engine:
    """Both eras loaded first, then the incidents imported from a CSV file."""
    with engine.begin() as conn:
        _old_units(conn)
        _new_units(conn)
    report = import_points(engine, "incidents", _incident_csv(engine, tmp_path / "inc.csv"))
    assert report.ok, report.errors
    assert report.inserted == 9
    assert report.outside_era == 2  # I4 and I5: in no pre-2025 unit, placed in today's units
    return engine


def _placements(engine: Engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(text("""
            SELECT i.external_id, ce.code, ve.code, cn.code, vn.code FROM incident i
            LEFT JOIN admin_unit ce ON ce.id = i.commune_id LEFT JOIN admin_unit ve ON ve.id = i.village_id
            LEFT JOIN admin_unit cn ON cn.id = i.commune_now_id
            LEFT JOIN admin_unit vn ON vn.id = i.village_now_id""")).all()
    return {r[0]: tuple(r[1:]) for r in rows}


EXPECTED_PLACES = {
    # external id: (commune of its date, village of its date, today's commune, today's village)
    "I1": ("94001", None, "95001", "95001V1"), "I2": ("94002", None, "95001", "95001V2"),
    "I3": ("94002", None, "95002", "95002V3"), "I4": (None, None, "95001", "95001V1"),
    "I5": (None, None, "95002", "95002V3"),
    "J1": ("95001", "95001V1", "95001", "95001V1"), "J2": ("95001", "95001V2", "95001", "95001V2"),
    "J3": ("95002", "95002V3", "95002", "95002V3"), "J4": ("95001", "95001V1", "95001", "95001V1"),
}


def test_each_incident_keeps_its_dates_unit_and_gets_todays(merged):
    assert _placements(merged) == EXPECTED_PLACES


def _totals(engine: Engine, flt: IncidentFilter) -> dict[str, float]:
    hexes = hex_counts(engine, 250, flt, province_code="95", on=ON, with_geometry=False)
    villages = village_counts(engine, flt, province_code="95", on=ON, with_geometry=False)
    communes = monthly_series(engine, flt, "commune", province_code="95", on=ON)
    return {"hexagon": int(hexes["count"].sum()), "village": int(villages["count"].sum()),
            "commune": int(communes["count"].sum())}


@pytest.mark.parametrize(("flt", "total"), [(BEFORE, 5), (AFTER, 4), (BOTH, 9)],
                         ids=["before", "after", "both"])
def test_same_totals_by_hexagon_village_commune_and_province(merged, flt, total):
    assert _totals(merged, flt) == {"hexagon": total, "village": total, "commune": total}
    sp = same_period_last_year(merged, AFTER, "commune", province_code="95", on=ON)
    assert (sp["count"].sum(), sp["count_last_year"].sum()) == (4, 5)  # the province


def test_outline_misses_the_strip_but_the_grid_holds_it(merged):
    """I4, I5, J3, J4 lie in the communes but outside province 95's outline, farther from it
    than a 250 m hexagon reaches: a grid over the outline would drop them."""
    with merged.connect() as conn:
        outside = conn.execute(text("""
            SELECT array_agg(i.external_id ORDER BY i.external_id) FROM incident i, admin_unit p
            WHERE p.level = 'province' AND p.code = '95'
              AND ST_Distance(ST_Transform(p.geom, 3405), ST_Transform(i.geom, 3405)) > 499""")).scalar()
    assert outside == ["I4", "I5", "J3", "J4"]
    hexes = hex_counts(merged, 250, BOTH, province_code="95", on=ON, with_geometry=False)
    assert hexes["count"].sum() == 9
    assert hexes["y"].max() > Y0 + 2900  # the grid reaches the top of the communes


def test_same_period_across_the_merger_counts_the_old_units_history(merged):
    rows = same_period_last_year(merged, AFTER, "commune", province_code="95", on=ON)
    got = {r["code"]: (r["count"], r["count_last_year"]) for r in rows.to_dict("records")}
    assert got == {"95001": (3, 3), "95002": (1, 2)}
    rows = same_period_last_year(merged, AFTER, "village", province_code="95", on=ON)
    got = {r["code"]: (r["count"], r["count_last_year"]) for r in rows.to_dict("records")}
    assert got == {"95001V1": (2, 2), "95001V2": (1, 1), "95002V3": (1, 2)}


def test_village_gi_star_counts_equal_the_hexagons(merged):
    villages = village_hotspots(merged, BOTH, province_code="95", on=ON, with_geometry=False)
    hexes = hex_hotspots(merged, 250, BOTH, province_code="95", on=ON, with_geometry=False)
    assert villages["count"].sum() == hexes["count"].sum() == 9
    assert dict(zip(villages["code"], villages["count"], strict=True)) == {
        "95001V1": 4, "95001V2": 2, "95002V3": 3}


def test_emerging_hotspots_count_every_incident(merged):
    df = emerging_hotspots(merged, BOTH, cell_m=250, step="quarter", province_code="95", on=ON)
    assert df["total"].sum() == 9


def test_count_layers_agree(merged):
    from layers.catalogue import CATALOGUE
    from layers.sql import LayerQuery, counted_items_query

    class Admin:
        role, scope_level, scope_code = "admin", "all", None

    for layer, expected in (("incident_counts_commune", {"95001": 6, "95002": 3}),
                            ("incident_counts_village", {"95001V1": 4, "95001V2": 2, "95002V3": 3})):
        q = LayerQuery(CATALOGUE[layer], Admin(), today=ON)
        sql, params = counted_items_query(q, 100, 0)
        with merged.connect() as conn:
            _, features = conn.execute(text(sql), params).one()
        got = {f["properties"]["code"]: f["properties"]["count"] for f in json.loads(features)}
        assert got == expected, layer


def test_count_layers_on_the_old_map_count_by_location(merged):
    """A count layer asked on 30 June 2025 (the old map: today's stored placement does not
    apply, geo.placement.incident_units_sql's second branch) places every incident in the old
    commune holding it, as monthly_series does: 94001 I1 J1, 94002 I2 I3 J2."""
    from layers.catalogue import CATALOGUE
    from layers.sql import LayerQuery, counted_items_query

    class Admin:
        role, scope_level, scope_code = "admin", "all", None

    q = LayerQuery(CATALOGUE["incident_counts_commune"], Admin(), today=dt.date(2025, 6, 30))
    sql, params = counted_items_query(q, 100, 0)
    with merged.connect() as conn:
        _, features = conn.execute(text(sql), params).one()
    got = {f["properties"]["code"]: f["properties"]["count"] for f in json.loads(features)}
    assert got == {"94001": 2, "94002": 3}


def test_the_report_map_counts_agree(merged):
    """The offline report map (web/report.py) colours communes and villages by the same counts."""
    from web.report import UNITS_SQL

    with merged.connect() as conn:
        ids = dict(conn.execute(text("SELECT code, id FROM admin_unit WHERE code IN ('95', '95001')")).all())
        got = {}
        for level, area in (("commune", "95"), ("village", "95001")):
            rows = conn.execute(text(UNITS_SQL), {
                "child_level": level, "area_id": ids[area], "area_code": area, "on": ON,
                "start": dt.datetime(2024, 7, 1, tzinfo=dt.UTC),
                "end_excl": dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
                "tolerance_m": 10.0}).mappings().all()
            got |= {r["code"]: r["incidents"] for r in rows}
    assert got == {"95001": 6, "95002": 3, "95001V1": 4, "95001V2": 2}


def test_a_province_account_sees_the_incidents_from_before_the_merger(merged):
    """Scope by today's commune holding the incident (else the commune of its date): a
    province-95 account gets all 9 incidents, though I1-I3 were recorded in province 94's
    communes and I4, I5 in none."""
    from layers.catalogue import CATALOGUE
    from layers.sql import LayerQuery, count_query

    class Police:
        role, scope_level, scope_code = "police", "province", "95"

    for layer in ("incidents", "incident_hexagons"):
        sql, params = count_query(LayerQuery(CATALOGUE[layer], Police(), today=ON, cell_m=250))
        with merged.connect() as conn:
            n = conn.execute(text(sql), params).scalar_one()
        assert n == (9 if layer == "incidents" else 6), layer  # 6 hexagons hold the 9 points


def test_the_old_map_counts_by_location_too(merged):
    """Asked on 30 June 2025 (the old map), incidents of both sides count in the old commune
    holding them: OA I1 J1, OB I2 I3 J2; I4, I5, J3, J4 lie in no old commune."""
    df = monthly_series(merged, BOTH, "commune", province_code="94", on=dt.date(2025, 6, 30))
    got = df.groupby("code")["count"].sum().to_dict()
    assert got == {"94001": 2, "94002": 3}


def test_units_loaded_after_the_incidents_place_them(engine):
    """Incidents first (written one by one: the trigger places them), then the pre-2025 map,
    then a village redrawn: every placement follows the units (statement triggers)."""
    with engine.begin() as conn:
        _new_units(conn)
        _insert_incidents(conn)
    before = _placements(engine)
    assert {k: v[2:] for k, v in before.items()} == {k: v[2:] for k, v in EXPECTED_PLACES.items()}
    assert before["I1"][:2] == (None, None)  # no pre-2025 map yet
    with engine.begin() as conn:
        _old_units(conn)
    assert _placements(engine) == EXPECTED_PLACES
    # V3 shrinks to y < 2000: I5 and J3 (y = 2950) lose today's village, and only they
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE admin_unit SET geom = {_box((3000, 0, 4000, 2000))} "
                          "WHERE code = '95002V3'"))
    after = _placements(engine)
    changed = {k for k in after if after[k] != EXPECTED_PLACES[k]}
    assert changed == {"I5", "J3"}
    assert after["J3"] == ("95002", None, "95002", None)
    assert after["I5"] == (None, None, "95002", None)
    # a new village V0 [0,600] x [0,600] holds I1 and J1 (smallest code among interiors);
    # deleting it again (after unlinking the dates' column, as antt demo does) puts them back
    with engine.begin() as conn:
        _units(conn, [("village", "95001V0", "95001", "95", (0, 0, 600, 600))], "2025-07-01", None)
    got = _placements(engine)
    assert (got["I1"], got["J1"]) == (("94001", None, "95001", "95001V0"),
                                      ("95001", "95001V0", "95001", "95001V0"))
    with engine.begin() as conn:
        conn.execute(text("UPDATE incident SET village_id = NULL WHERE village_id = "
                          "(SELECT id FROM admin_unit WHERE code = '95001V0')"))
        conn.execute(text("DELETE FROM admin_unit WHERE code = '95001V0'"))
    got = _placements(engine)
    assert (got["I1"], got["J1"]) == (EXPECTED_PLACES["I1"], EXPECTED_PLACES["J1"])


def test_lineage_rolls_up_only_what_no_current_commune_holds(merged):
    """An old commune OC [4000,5000] x [0,2000] that no 2025 commune covers (lineage OC -> NB
    full): its incident I6 of 2024 lies in no current commune, so it reaches NB through the
    lineage; everything else is counted by location, not apportioned."""
    with merged.begin() as conn:
        _units(conn, [("commune", "94003", "940", "94", (4000, 0, 5000, 2000))],
               "2000-01-01", "2025-07-01")
        conn.execute(text("INSERT INTO unit_lineage (old_level, old_code, new_level, new_code, "
                          "merge_type) VALUES ('commune', '94003', 'commune', '95002', 'full')"))
        conn.execute(text("""
            INSERT INTO incident (external_id, category_code, occurred_at, geom)
            VALUES ('I6', 'crime/theft', '2024-12-01 10:00+07',
                    ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 3405), 4326))"""),
            {"x": X0 + 4500, "y": Y0 + 500})
    assert _placements(merged)["I6"] == ("94003", None, None, None)
    rows = same_period_last_year(merged, AFTER, "commune", province_code="95", on=ON)
    got = {r["code"]: (r["count"], r["count_last_year"]) for r in rows.to_dict("records")}
    assert got == {"95001": (3, 3), "95002": (1, 3)}


def test_the_points_of_a_study_area_on_either_map(merged):
    """KDE and DBSCAN take the incidents inside the study area (geo.area.area_incidents_sql).
    On today's map by the commune stored for each (all 9 lie in province 95's communes, 3 in
    95002: I3 I5 J3); on the old map by location (94's communes hold I1 I2 I3 J1 J2; I4, I5, J3
    and J4 lie in none)."""
    from geo.clusters import incident_clusters
    from geo.kde import incident_points

    def places(xy):
        return sorted((round(x - X0), round(y - Y0)) for x, y in xy)

    at = {ext: (x, y) for ext, x, y, _ in INCIDENTS}
    old_map = dt.date(2025, 6, 30)
    for args, expected in (
        ({"province_code": "95", "on": ON}, list(at)),
        ({"commune_code": "95002", "on": ON}, ["I3", "I5", "J3"]),
        ({"province_code": "94", "on": old_map}, ["I1", "I2", "I3", "J1", "J2"]),
        ({"commune_code": "94002", "on": old_map}, ["I2", "I3", "J2"]),
    ):
        xy, w = incident_points(merged, BOTH, **args)
        assert places(xy) == sorted(at[e] for e in expected), args
        assert w.tolist() == [1.0] * len(expected)
        clusters = incident_clusters(merged, BOTH, eps_m=5000, min_points=1, **args)
        assert clusters["count"].tolist() == [len(expected)], args  # one cluster of them all
