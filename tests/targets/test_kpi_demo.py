"""KPI figures on the Hải Phòng demo equal counts written directly in SQL (independently of
geo.kpi's query), and every status follows the documented rule."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import text

from geo import kpi

ON = dt.date(2026, 10, 31)   # the demo's last day (tests/demo/conftest.py UNTIL)
Y0 = dt.date(2026, 1, 1)

DIRECT = {
    "institutions_safe": """
        SELECT s.commune_id AS unit_id, count(*) AS den, count(*) FILTER (WHERE y.antt_safe) AS num
        FROM institution s LEFT JOIN institution_year y ON y.institution_id = s.id AND y.year = 2026
        GROUP BY 1""",
    "launched": """
        SELECT commune_id AS unit_id, count(*) AS den, count(*) FILTER (WHERE ok) AS num FROM (
            SELECT v.parent_id AS commune_id,
                   coalesce(uy.launched, false)
                   OR v.id IN (SELECT village_id FROM launch_point WHERE status IN ('launched', 'reviewed')
                               AND launch_date BETWEEN :y0 AND :on AND village_id IS NOT NULL)
                   OR v.id IN (SELECT village_id FROM movement_event WHERE kind = 'launch'
                               AND institution_id IS NULL AND held_on BETWEEN :y0 AND :on
                               AND village_id IS NOT NULL) AS ok
            FROM admin_unit v LEFT JOIN unit_year uy ON uy.unit_id = v.id AND uy.year = 2026
            WHERE v.level = 'village'
            UNION ALL
            SELECT s.commune_id, coalesce(y.launched, false)
                   OR s.id IN (SELECT institution_id FROM movement_event WHERE kind = 'launch'
                               AND held_on BETWEEN :y0 AND :on AND institution_id IS NOT NULL)
            FROM institution s LEFT JOIN institution_year y ON y.institution_id = s.id AND y.year = 2026
        ) x GROUP BY 1""",
    "class_kha_or_better": """
        SELECT commune_id AS unit_id, count(*) AS den, count(*) FILTER (WHERE ok) AS num FROM (
            SELECT v.parent_id AS commune_id, coalesce(uy.movement_class IN ('xuat_sac', 'kha'), false) AS ok
            FROM admin_unit v LEFT JOIN unit_year uy ON uy.unit_id = v.id AND uy.year = 2026
            WHERE v.level = 'village'
            UNION ALL
            SELECT s.commune_id, coalesce(y.movement_class IN ('xuat_sac', 'kha'), false)
            FROM institution s LEFT JOIN institution_year y ON y.institution_id = s.id AND y.year = 2026
        ) x GROUP BY 1""",
    "festival": """
        SELECT commune_id AS unit_id, count(*) AS den, count(*) FILTER (WHERE ok) AS num FROM (
            SELECT v.parent_id AS commune_id, coalesce(uy.festival_held, false)
                   OR v.id IN (SELECT village_id FROM movement_event WHERE kind = 'festival'
                               AND institution_id IS NULL AND held_on BETWEEN :y0 AND :on
                               AND village_id IS NOT NULL) AS ok
            FROM admin_unit v LEFT JOIN unit_year uy ON uy.unit_id = v.id AND uy.year = 2026
            WHERE v.level = 'village'
            UNION ALL
            SELECT s.commune_id, coalesce(y.festival_held, false)
                   OR s.id IN (SELECT institution_id FROM movement_event WHERE kind = 'festival'
                               AND held_on BETWEEN :y0 AND :on AND institution_id IS NOT NULL)
            FROM institution s LEFT JOIN institution_year y ON y.institution_id = s.id AND y.year = 2026
        ) x GROUP BY 1""",
    "models_kept": """
        SELECT m.commune_id AS unit_id, count(*) AS den,
               count(*) FILTER (WHERE NOT (m.status IN ('suspended', 'dissolved')
                                           AND coalesce(m.status_since, m.founded_on) <= :on)) AS num
        FROM security_model m
        WHERE m.founded_on < :y0
          AND NOT (m.status IN ('suspended', 'dissolved') AND coalesce(m.status_since, m.founded_on) < :y0)
          AND (SELECT r.rating FROM model_rating r WHERE r.model_id = m.id AND r.rated_on < :y0
               ORDER BY r.rated_on DESC, r.id DESC LIMIT 1) IN ('tot', 'kha')
        GROUP BY 1""",
    "new_models": """
        SELECT commune_id AS unit_id, NULL AS den, count(*) AS num FROM security_model
        WHERE founded_on BETWEEN :y0 AND :on GROUP BY 1""",
    "forums": """
        SELECT commune_id AS unit_id, NULL AS den, count(*) AS num FROM movement_event
        WHERE kind = 'forum' AND held_on BETWEEN :y0 AND :on GROUP BY 1""",
}


def _rule(actual: float, threshold: float, direction: str, fraction: float, closed: bool) -> str:
    """The documented status rule, written again in Python."""
    if actual is None or pd.isna(actual):
        return "no_data"
    ok = {"ge": actual >= threshold, "gt": actual > threshold, "le": actual <= threshold,
          "lt": actual < threshold}[direction]
    if direction in ("ge", "gt"):
        if ok:
            return "met"
        if closed:
            return "missed"
        return "on_track" if actual >= threshold * fraction else "at_risk"
    if closed:
        return "met" if ok else "missed"
    return "on_track" if ok and actual <= threshold * fraction else "at_risk"


def test_demo_kpis_equal_direct_sql(demo_engine):
    df = kpi.kpis(demo_engine, ON, province_code="31")
    assert df["code"].nunique() == 114 and set(df["target"]) == set(DIRECT)
    with demo_engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT code, id FROM admin_unit WHERE level = 'commune'")).all())
        for target, sql in DIRECT.items():
            direct = {r.unit_id: (r.num, r.den) for r in conn.execute(text(sql), {"on": ON, "y0": Y0})}
            got = df[df["target"] == target]
            assert len(got) == 114
            nonzero = 0
            for row in got.itertuples():
                num, den = direct.get(ids[row.code], (0, 0 if row.measure == "percent" else None))
                assert row.numerator == num, (target, row.code)
                if row.measure == "percent":
                    assert row.denominator == den, (target, row.code)
                    if den:
                        assert row.actual == pytest.approx(100 * num / den)
                else:
                    assert row.denominator is None and row.actual == num
                nonzero += num > 0
            assert nonzero > 10, target  # the demo gives every target something to count


def test_demo_statuses_follow_the_rule(demo_engine):
    df = kpi.kpis(demo_engine, ON, province_code="31")
    for row in df.itertuples():
        closed = ON >= row.due
        assert row.fraction == pytest.approx(kpi.progress_fraction(ON, 2026, row.due))
        assert row.status == _rule(row.actual, row.threshold, row.direction, row.fraction, closed), row
    # the demo shows every status somewhere (the panel has something real to show)
    assert {"met", "on_track", "at_risk", "missed"} <= set(df["status"])
    # the province plan stores seed 001's thresholds; some communes raised theirs
    assert set(df["threshold_source"]) == {"province", "commune"}
    from data.demo.yearplan import PROVINCE_TARGETS

    raised = df[df["threshold_source"] == "commune"]
    assert len(raised) > 0
    assert (raised["threshold"] >= raised["target"].map(PROVINCE_TARGETS)).all()


def test_demo_village_figures_sum_to_their_commune(demo_engine):
    communes = kpi.kpis(demo_engine, ON, province_code="31")
    villages = kpi.kpis(demo_engine, ON, level="village", province_code="31")
    for target in ("institutions_safe", "launched", "class_kha_or_better", "festival", "models_kept"):
        v = villages[villages["target"] == target].groupby("commune_code")[["numerator", "denominator"]].sum()
        c = communes[communes["target"] == target].set_index("code")[["numerator", "denominator"]]
        joined = c.join(v.add_suffix("_v")).fillna(0)
        # members outside every village (none in the demo) would make the commune larger
        assert (joined["numerator"] == joined["numerator_v"]).all(), target
        assert (joined["denominator"] == joined["denominator_v"]).all(), target


def test_demo_has_open_reviews_to_confirm(demo_engine):
    with demo_engine.connect() as conn:
        reviews, communes, open_items = conn.execute(text("""
            SELECT count(DISTINCT r.id), count(DISTINCT r.commune_code),
                   count(i.id) FILTER (WHERE i.decision IS NULL)
            FROM model_review r JOIN model_review_item i ON i.review_id = r.id WHERE r.is_demo""")).one()
        proposals = set(conn.execute(text("SELECT DISTINCT proposal FROM model_review_item")).scalars())
    assert reviews == communes == 114 and open_items > 500
    assert proposals == {"replicate", "keep", "strengthen", "dissolve"}
