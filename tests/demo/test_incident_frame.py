"""The incident generator on its own (no database): counts, window, planted hotspots, calendar."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from data.demo.incidents import day_weights, generate_frame, window
from data.demo.plan import Hotspot, Plan, choose_plan

UNTIL = dt.date(2026, 10, 31)


def _villages(n_communes: int = 4, per: int = 5) -> pd.DataFrame:
    rows = []
    for c in range(n_communes):
        for k in range(per):
            rows.append({"id": 100 + c * per + k, "code": f"C{c}.{k:02d}", "commune_id": c + 1,
                         "commune_code": f"C{c}", "commune_name": f"Xã {c}", "name": f"Thôn {k}",
                         "population": 500 + 37 * k + 11 * c, "lon": 106.3 + 0.03 * c + 0.005 * k,
                         "lat": 20.9 + 0.004 * k, "area_m2": 1.5e6})
    return pd.DataFrame(rows)


def _categories() -> set[str]:
    from importlib import import_module

    catalogue = import_module("antt.migrations.versions.0002_catalogues")
    return {row[0] for row in catalogue.CATEGORIES}


def test_window_is_whole_years_ending_on_until():
    start, days = window(UNTIL, 3)
    assert start == dt.date(2023, 11, 1) and days == 1096
    assert window(dt.date(2028, 2, 29), 1)[0] == dt.date(2027, 3, 1)


def test_tet_is_the_busiest_time_of_year():
    start, days = window(UNTIL, 3)
    w = day_weights(start, days)
    busiest = start + dt.timedelta(days=int(np.argmax(w)))
    assert busiest.month in (1, 2)
    assert abs(w.sum() - 1) < 1e-12


def test_frame_has_exactly_n_rows_in_the_window_with_known_categories():
    villages = _villages()
    plan = choose_plan(villages, seed=1)
    frame, by_process = generate_frame(villages, plan, 2000, seed=1, until=UNTIL, years=3)
    assert len(frame) == 2000 == sum(by_process.values())
    assert set(by_process) == {"village", "market", "road", "hotspot"}
    assert set(frame["category_code"]) <= _categories()
    first = pd.Timestamp(dt.datetime(2023, 11, 1) - dt.timedelta(hours=7)).timestamp()
    last = pd.Timestamp(dt.datetime(2026, 11, 1) - dt.timedelta(hours=7)).timestamp()
    assert frame["t"].min() >= first and frame["t"].max() < last
    assert frame["n"].tolist() == list(range(1, 2001))


def test_hotspots_fall_in_the_last_year_near_their_village():
    villages = _villages()
    v = villages.iloc[7]
    hot = Hotspot(int(v.id), v.code, v["name"], v.commune_code, v.commune_name, "test", True,
                  float(v.lon), float(v.lat))
    frame, by_process = generate_frame(villages, Plan([hot], []), 4000, seed=2, until=UNTIL, years=3)
    spots = frame[frame["process"] == "hotspot"]
    assert len(spots) == by_process["hotspot"] == 100  # 2.5 % of 4,000
    last_year = pd.Timestamp(dt.datetime(2025, 11, 1) - dt.timedelta(hours=7)).timestamp()
    assert (spots["t"] >= last_year).all()
    assert (spots["anchor_village"] == hot.village_id).all()
    # ~150 m spread: within 0.01° (about 1 km) of the centre.
    assert (np.hypot(spots["lon"] - hot.lon, spots["lat"] - hot.lat) < 0.01).all()
    assert spots["youth_involved"].mean() > 0.6 > frame.loc[frame["process"] != "hotspot",
                                                              "youth_involved"].mean()


def test_same_seed_same_frame():
    villages = _villages()
    plan = choose_plan(villages, seed=5)
    a, _ = generate_frame(villages, plan, 500, seed=5, until=UNTIL, years=2)
    b, _ = generate_frame(villages, plan, 500, seed=5, until=UNTIL, years=2)
    c, _ = generate_frame(villages, plan, 500, seed=6, until=UNTIL, years=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["t"].equals(c["t"])


def test_plan_picks_three_hotspots_in_different_communes_and_uncovered_villages():
    villages = _villages(n_communes=5, per=8)
    plan = choose_plan(villages, seed=3)
    assert len({h.commune_code for h in plan.hotspots}) == 3
    assert plan.hotspots[0].village_id in plan.uncovered_ids
    assert len(plan.uncovered) == max(3, round(0.08 * 40))
    assert {u.reason for u in plan.uncovered} == {"no_model", "poor_rating", "inactive"}
