"""The planner's cached inputs follow every committed write (QA of issue 10).

``geo.planner.plan.build_context`` reuses a request's inputs for CONTEXT_TTL_S while "the data
they were read from is unchanged". Writes that keep a table's row count, largest id and
``updated_at`` (a re-import updating an incident's date or place, a boundary re-import changing a
village's population, a model suspended by SQL or an importer that does not touch updated_at,
a model type's reach) are still writes: the next suggestion or evaluate must see them, or a
dragged site's figures disagree with what the saved scenario (computed without the cache)
will say. Fixture: tests/planner/conftest.py (E holds 5 thefts in the period, W the active
model MW, N 500 inhabitants).
"""

from __future__ import annotations

from sqlalchemy import text

from geo.planner import plan as gpl

from .test_plan import request


def _village(ctx: gpl.Context, key: str):
    return ctx.villages[ctx.villages["code"].str.endswith("." + key)].iloc[0]


def test_an_incident_moved_out_of_the_period_changes_the_inputs(planner_engine, psite):
    gpl._CACHE.clear()
    req = request(psite, min_count=None)
    ctx = gpl.build_context(planner_engine, req)
    assert _village(ctx, "E")["incidents"] == 5
    with planner_engine.begin() as conn:  # an incident re-imported with its corrected date
        conn.execute(text("""UPDATE incident SET occurred_at = '2024-06-01 10:00+07'
                             WHERE id = (SELECT min(id) FROM incident WHERE occurred_at >= '2026-01-01'
                                         AND category_code = 'crime/theft')"""))
    fresh = gpl.build_context(planner_engine, req)
    assert fresh is not ctx and _village(fresh, "E")["incidents"] == 4


def test_a_village_population_update_changes_the_inputs(planner_engine, psite):
    gpl._CACHE.clear()
    req = request(psite)
    ctx = gpl.build_context(planner_engine, req)
    assert _village(ctx, "N")["population"] == 500
    with planner_engine.begin() as conn:  # a boundary re-import with the new census figure
        conn.execute(text("UPDATE admin_unit SET population = 900 WHERE id = :v"), {"v": psite.villages["N"]})
    assert _village(gpl.build_context(planner_engine, req), "N")["population"] == 900


def test_a_model_suspended_without_updated_at_is_no_longer_fixed(planner_engine, psite):
    gpl._CACHE.clear()
    req = request(psite)
    ctx = gpl.build_context(planner_engine, req)
    assert ctx.fixed["name"].tolist() == ["Tổ tự quản W"]
    with planner_engine.begin() as conn:
        conn.execute(text("UPDATE security_model SET status = 'suspended', status_since = '2026-06-01' "
                          "WHERE external_id = 'MW'"))
    fresh = gpl.build_context(planner_engine, req)
    assert fresh.fixed.empty
    # and the suggestion now counts W as demand: its weight 1000 + 1000 (no active model)
    out = gpl.suggest(planner_engine, request(psite, p=4))
    assert out["solver"]["fixed_weight"] == 0 and out["solver"]["covered_weight"] == 12000.0


def test_a_model_type_reach_change_changes_the_default_radius(planner_engine, psite):
    gpl._CACHE.clear()
    req = request(psite, radius_m=None, model_type="to_tu_quan")
    before = gpl.build_context(planner_engine, req).radius_m
    with planner_engine.begin() as conn:
        conn.execute(text("UPDATE model_type SET reach_m = :r WHERE code = 'to_tu_quan'"),
                     {"r": before + 123})
    assert gpl.build_context(planner_engine, req).radius_m == before + 123
