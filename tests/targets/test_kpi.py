"""The KPI engine (geo.kpi) on hand-made data: every figure and status computed by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sqlalchemy import text

from geo import kpi

JUNE = dt.date(2026, 6, 30)
FRACTION_JUNE = 181 / 365          # 1 Jan .. 30 Jun inclusive over 1 Jan .. 31 Dec
FESTIVAL_JUNE = 181 / 231          # ... over 1 Jan .. 19 Aug


def _by_target(df, code):
    rows = df[df["code"] == code].set_index("target")
    return rows


def test_commune_figures_by_hand(handmade):
    eng, c = handmade
    df = kpi.kpis(eng, JUNE, commune_code=c["commune_a"])
    t = _by_target(df, c["commune_a"])
    # institutions: 3, two safe -> 66.7 % against "more than 80 %"; pro-rated 80 x 181/365
    assert (t.at["institutions_safe", "numerator"], t.at["institutions_safe", "denominator"]) == (2, 3)
    assert t.at["institutions_safe", "actual"] == pytest.approx(200 / 3)
    assert t.at["institutions_safe", "expected"] == pytest.approx(80 * FRACTION_JUNE)
    assert t.at["institutions_safe", "status"] == "on_track"
    # launched: V1 (unit_year), V2 (launch point 1 Mar), the school (launch event) of 5 units
    assert (t.at["launched", "numerator"], t.at["launched", "denominator"]) == (3, 5)
    assert t.at["launched", "status"] == "on_track"
    # class khá or better: only V1 of 5 -> 20 % < 39.7 % expected
    assert t.at["class_kha_or_better", "actual"] == pytest.approx(20.0)
    assert t.at["class_kha_or_better", "status"] == "at_risk"
    # models kept: M1 and M2 were effective; M2 dissolved on 1 March -> 50 % >= 49.6 % expected
    assert (t.at["models_kept", "numerator"], t.at["models_kept", "denominator"]) == (1, 2)
    assert t.at["models_kept", "status"] == "on_track"
    # new models: M4 -> 1 >= 1
    assert t.at["new_models", "actual"] == 1 and t.at["new_models", "status"] == "met"
    assert t.at["new_models", "denominator"] is None
    # forums: 1 of 2, pro-rated 0.99 -> on track
    assert t.at["forums", "actual"] == 1 and t.at["forums", "status"] == "on_track"
    # festival: nobody yet, due 19 August
    assert t.at["festival", "actual"] == 0
    assert t.at["festival", "fraction"] == pytest.approx(FESTIVAL_JUNE)
    assert t.at["festival", "status"] == "at_risk"
    assert set(t["threshold_source"]) == {"default"}


def test_as_of_dates_change_the_figures(handmade):
    eng, c = handmade
    feb = _by_target(kpi.kpis(eng, dt.date(2026, 2, 15), commune_code=c["commune_a"]), c["commune_a"])
    # before 1 March M2 is still active, the launch point not yet launched, no forum yet
    assert (feb.at["models_kept", "numerator"], feb.at["models_kept", "denominator"]) == (2, 2)
    assert feb.at["models_kept", "status"] == "met"
    assert feb.at["launched", "numerator"] == 2
    assert feb.at["forums", "actual"] == 0
    aug = _by_target(kpi.kpis(eng, dt.date(2026, 8, 20), commune_code=c["commune_a"]), c["commune_a"])
    assert aug.at["festival", "status"] == "missed"  # due day passed, none held
    year_end = _by_target(kpi.kpis(eng, dt.date(2027, 3, 1), year=2026, commune_code=c["commune_a"]),
                          c["commune_a"])
    assert year_end.at["forums", "status"] == "missed"
    assert year_end.at["new_models", "status"] == "met"
    assert year_end.at["institutions_safe", "status"] == "missed"


def test_commune_without_records_has_no_data_for_shares(handmade):
    eng, c = handmade
    t = _by_target(kpi.kpis(eng, JUNE, commune_code=c["commune_b"]), c["commune_b"])
    assert t.at["institutions_safe", "status"] == "no_data"
    assert np.isnan(t.at["institutions_safe", "actual"])
    assert t.at["new_models", "actual"] == 1  # 'B mới' founded 5 May 2026


def test_villages(handmade):
    eng, c = handmade
    df = kpi.kpis(eng, JUNE, level="village", commune_code=c["commune_a"])
    assert set(df["code"]) == {c["village_1"], c["village_2"]}
    assert "forums" not in set(df["target"]) and "new_models" not in set(df["target"])
    v1, v2 = _by_target(df, c["village_1"]), _by_target(df, c["village_2"])
    # V1: itself and the three institutions
    assert (v1.at["launched", "numerator"], v1.at["launched", "denominator"]) == (2, 4)
    assert (v2.at["launched", "numerator"], v2.at["launched", "denominator"]) == (1, 1)
    assert v2.at["launched", "status"] == "met"
    assert v2.at["institutions_safe", "status"] == "no_data"
    assert (v1.at["models_kept", "numerator"], v1.at["models_kept", "denominator"]) == (1, 2)


def test_thresholds_province_default_then_commune_raise(handmade):
    eng, c = handmade
    with eng.begin() as conn:
        pid = conn.execute(text("INSERT INTO plan (unit_level, unit_code, year) "
                                "VALUES ('province', :p, 2026) RETURNING id"),
                           {"p": c["province"]}).scalar_one()
        conn.execute(text("INSERT INTO plan_target VALUES (:id, 'launched', 50), (:id, 'forums', 3)"),
                     {"id": pid})
        cid = conn.execute(text("INSERT INTO plan (unit_level, unit_code, year) VALUES ('commune', :c, 2026) "
                                "RETURNING id"), {"c": c["commune_a"]}).scalar_one()
        conn.execute(text("INSERT INTO plan_target VALUES (:id, 'launched', 60)"), {"id": cid})
    df = kpi.kpis(eng, JUNE, province_code=c["province"])
    a, b = _by_target(df, c["commune_a"]), _by_target(df, c["commune_b"])
    assert (a.at["launched", "threshold"], a.at["launched", "threshold_source"]) == (60, "commune")
    assert a.at["launched", "status"] == "met"  # 60 % >= 60 %
    assert (b.at["launched", "threshold"], b.at["launched", "threshold_source"]) == (50, "province")
    assert (a.at["forums", "threshold"], a.at["forums", "threshold_source"]) == (3, "province")
    assert a.at["institutions_safe", "threshold_source"] == "default"
    villages = kpi.kpis(eng, JUNE, level="village", commune_code=c["commune_a"])
    assert set(villages[villages["target"] == "launched"]["threshold"]) == {60}


def test_user_added_target_takes_recorded_values(handmade):
    eng, c = handmade
    with eng.begin() as conn:
        conn.execute(text("""INSERT INTO target_def (code, name_vi, name_en, measure, unit_vi, unit_en,
                direction, default_threshold) VALUES ('camera_count', 'Số camera an ninh lắp mới',
                'New security cameras', 'count', 'camera', 'cameras', 'ge', 10)"""))
        pid = conn.execute(text("INSERT INTO plan (unit_level, unit_code, year) VALUES ('commune', :c, 2026) "
                                "RETURNING id"), {"c": c["commune_a"]}).scalar_one()
        conn.execute(text("INSERT INTO plan_target VALUES (:id, 'camera_count', 12)"), {"id": pid})
        conn.execute(text("""INSERT INTO target_value (target_code, unit_level, unit_code, year, value,
                recorded_on) VALUES ('camera_count', 'commune', :c, 2026, 4, '2026-03-31'),
                ('camera_count', 'commune', :c, 2026, 7, '2026-06-15'),
                ('camera_count', 'commune', :c, 2026, 13, '2026-07-15')"""), {"c": c["commune_a"]})
    df = kpi.kpis(eng, JUNE, province_code=c["province"])
    a = _by_target(df, c["commune_a"])
    assert a.at["camera_count", "actual"] == 7 and a.at["camera_count", "threshold"] == 12
    assert a.at["camera_count", "status"] == "on_track"  # 7 >= 12 x 181/365 = 5.95
    assert "camera_count" not in set(df[df["code"] == c["commune_b"]]["target"])  # not in B's plan
    july = _by_target(kpi.kpis(eng, dt.date(2026, 7, 20), commune_code=c["commune_a"]), c["commune_a"])
    assert july.at["camera_count", "status"] == "met"
    recs = kpi.records(eng, JUNE, "commune", c["commune_a"], "camera_count")
    assert list(recs["counted"]) == [False, True, True]


def test_records_name_what_was_counted(handmade):
    eng, c = handmade
    recs = kpi.records(eng, JUNE, "commune", c["commune_a"], "launched")
    assert len(recs) == 5 and int(recs["counted"].sum()) == 3
    counted = recs[recs["counted"]]
    evidence = {r.name: list(r.evidence) for r in counted.itertuples()}
    assert evidence["Một"] == ["unit_year:2026"]
    assert evidence["Hai"][0].startswith("launch_point:")
    assert evidence["Trường THCS"][0].startswith("event:")
    kept = kpi.records(eng, JUNE, "commune", c["commune_a"], "models_kept")
    assert dict(zip(kept["name"], kept["counted"], strict=True)) == {"M1 tốt": True, "M2 giải thể": False}


def test_summary_and_ranking(handmade):
    eng, c = handmade
    df = kpi.kpis(eng, JUNE, province_code=c["province"])
    summary = kpi.unit_summary(df)
    a = summary.set_index("code").loc[c["commune_a"]]
    assert (a["met"], a["on_track"], a["at_risk"], a["missed"], a["no_data"]) == (1, 4, 2, 0, 0)
    ranked = kpi.rank(summary)
    assert ranked.iloc[0]["code"] in (c["commune_a"], c["commune_b"])
    assert list(ranked["rank"]) == list(range(1, len(ranked) + 1))
    roll = kpi.province_rollup(df).set_index("target")
    assert roll.at["new_models", "numerator"] == 2   # M4 in A, 'B mới' in B
    assert roll.at["new_models", "met"] == 2


@pytest.mark.parametrize("direction, actual, threshold, fraction, closed, expected", [
    ("ge", 5, 10, 0.4, False, "on_track"), ("ge", 3, 10, 0.4, False, "at_risk"),
    ("ge", 10, 10, 0.4, False, "met"), ("gt", 10, 10, 0.4, False, "on_track"),
    ("gt", 10, 10, 1.0, True, "missed"), ("ge", 9, 10, 1.0, True, "missed"),
    ("le", 3, 10, 0.5, False, "on_track"), ("le", 7, 10, 0.5, False, "at_risk"),
    ("le", 12, 10, 0.5, False, "at_risk"), ("le", 10, 10, 1.0, True, "met"),
    ("lt", 10, 10, 1.0, True, "missed"), ("ge", float("nan"), 10, 0.5, False, "no_data"),
])
def test_status_rule(engine, direction, actual, threshold, fraction, closed, expected):
    """The rule as the KPI query runs it (geo.kpi.status_sql), in PostgreSQL."""
    sql = f"SELECT {kpi.status_sql(':a', ':t', ':d', ':f', ':c')}"
    with engine.connect() as conn:
        got = conn.execute(text(sql), {"a": None if np.isnan(actual) else actual, "t": threshold,
                                       "d": direction, "f": fraction, "c": closed}).scalar_one()
    assert got == expected


def test_progress_fraction():
    assert kpi.progress_fraction(dt.date(2026, 1, 1), 2026, dt.date(2026, 12, 31)) == pytest.approx(1 / 365)
    assert kpi.progress_fraction(dt.date(2025, 12, 1), 2026, dt.date(2026, 12, 31)) == 0.0
    assert kpi.progress_fraction(dt.date(2026, 9, 1), 2026, dt.date(2026, 8, 19)) == 1.0
