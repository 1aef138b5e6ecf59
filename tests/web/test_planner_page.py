"""The planner panel in a real headless Chromium: run a suggestion, drag a site (the figures
follow), save and accept it; a committee account then sees the accepted plan, not the tool."""

from __future__ import annotations

from sqlalchemy import text
from test_page import READY, _open  # tests/web is on sys.path (no package)

from antt.db import make_engine


def _commune(demo_url: str) -> str:
    """A commune with a few villages (the suggestion needs candidates to choose from)."""
    eng = make_engine(demo_url)
    with eng.connect() as conn:
        code = conn.execute(text("""
            SELECT c.code FROM admin_unit c
            JOIN admin_unit v ON v.parent_id = c.id AND v.level = 'village'
            WHERE c.level = 'commune' GROUP BY c.code HAVING count(*) >= 6 ORDER BY c.code LIMIT 1"""
                            )).scalar_one()
    eng.dispose()
    return code


def test_planner_suggests_drags_saves_and_accepts(live_server, demo_url, browser, artifacts_dir):
    commune = _commune(demo_url)
    context, page, rec = _open(browser, live_server, "planner")
    page.wait_for_function(READY, timeout=90_000)
    page.wait_for_selector("#suggest-card .pl-run")
    page.fill("#suggest-card .pl-commune", commune)
    page.fill("#suggest-card .pl-p", "2")
    page.fill("#suggest-card .pl-radius", "300")
    with page.expect_response(lambda r: r.url.endswith("/planner/suggest")) as suggested:
        page.click("#suggest-card .pl-run")
    assert suggested.value.status == 200
    result = suggested.value.json()
    page.wait_for_selector("#suggest-card .pl-sites li >> nth=1")
    assert page.locator(".pl-site").count() == 2
    assert page.locator("#suggest-card .pl-sites li").count() == 2
    after_before_drag = page.inner_text("#suggest-card .pl-after-villages_within_r")
    assert after_before_drag == str(result["figures"]["after"]["villages_within_r"])
    assert page.locator(".pl-uncovered-village").count() == len(result["uncovered_villages"])
    page.screenshot(path=str(artifacts_dir / "planner_suggested.png"))

    # drag site 1 by 80 px: an evaluate call, and the table shows its figures
    marker = page.locator(".pl-site").first
    box = marker.bounding_box()
    with page.expect_response(lambda r: r.url.endswith("/planner/evaluate")) as evaluated:
        page.mouse.move(box["x"] + 13, box["y"] + 13)
        page.mouse.down()
        page.mouse.move(box["x"] + 93, box["y"] + 13, steps=8)
        page.mouse.up()
    assert evaluated.value.status == 200
    figures = evaluated.value.json()["figures"]
    page.wait_for_function("document.body.dataset.plannerEvaluated === '1'")
    shown = page.inner_text("#suggest-card .pl-after-villages_within_r")
    assert shown == str(figures["after"]["villages_within_r"])
    moved_to = evaluated.value.request.post_data_json["sites"]
    assert moved_to[0]["lon"] != result["features"][0]["geometry"]["coordinates"][0] or \
        moved_to[1]["lon"] != result["features"][1]["geometry"]["coordinates"][0]

    # save (the moved sites) and accept
    page.fill("#suggest-card .pl-name", "Phương án thử trên trang")
    def is_save(r) -> bool:
        return r.url.endswith("/planner/scenarios") and r.request.method == "POST"

    with page.expect_response(is_save) as saved:
        page.click("#suggest-card .pl-save")
    assert saved.value.status == 201
    scenario = saved.value.json()
    row = page.locator(f"#suggest-card li[data-id='{scenario['id']}']")
    row.wait_for()
    accept_url = f"/planner/scenarios/{scenario['id']}/accept"
    with page.expect_response(lambda r: r.url.endswith(accept_url)) as accepted:
        row.locator(".pl-accept").click()
    assert accepted.value.status == 200
    page.locator(f"#suggest-card li[data-id='{scenario['id']}'] .tag-accepted").wait_for()
    page.screenshot(path=str(artifacts_dir / "planner_accepted.png"))
    context.close()
    assert rec.errors == []
    assert rec.foreign() == []

    coords = [f["geometry"]["coordinates"] for f in scenario["features"]]
    saved_sites = sorted((round(lon, 9), round(lat, 9)) for lon, lat in coords)
    assert saved_sites == sorted((round(s["lon"], 9), round(s["lat"], 9)) for s in moved_to)
    eng = make_engine(demo_url)
    with eng.connect() as conn:
        status = conn.execute(text("SELECT status, accepted_as FROM planner_scenario WHERE id = :i"),
                              {"i": scenario["id"]}).one()
        points = conn.execute(text("""
            SELECT round(ST_X(l.geom)::numeric, 9) AS lon, round(ST_Y(l.geom)::numeric, 9) AS lat, l.status,
                   l.created_by
            FROM planner_scenario_site s JOIN launch_point l ON l.id = s.launch_point_id
            WHERE s.scenario_id = :i ORDER BY lon, lat"""), {"i": scenario["id"]}).all()
    eng.dispose()
    assert tuple(status) == ("accepted", "launch_points")
    assert [(float(p.lon), float(p.lat)) for p in points] == saved_sites
    assert {(p.status, p.created_by) for p in points} == {("planned", "planner")}

    # the committee sees the accepted plan, not the tool
    context, page, rec = _open(browser, live_server, "committee")
    page.wait_for_function(READY, timeout=90_000)
    page.wait_for_selector("#suggest-card li")
    assert page.locator("#suggest-card .pl-run").count() == 0
    assert "Phương án thử trên trang" in page.inner_text("#suggest-card")
    page.locator("#suggest-card .pl-show").first.click()
    page.wait_for_selector(".pl-site")
    assert page.locator(".pl-site").count() == 2
    context.close()
    assert rec.errors == []
