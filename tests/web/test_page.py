"""The map page in a real headless Chromium against the real server and a Hải Phòng database."""

from __future__ import annotations

import json
from urllib.parse import urlparse

from sqlalchemy import text

from antt.db import make_engine

READY = "document.body.dataset.ready === '1'"
CLOSED = "!document.querySelector('#launch-dialog').open"


class Recorder:
    """Console errors, page errors, every request URL and the JSON bodies the page received."""

    def __init__(self, page, base: str) -> None:
        self.base = base
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.json_bodies: list[object] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("response", self._response)

    def _response(self, response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status} {response.url}")
        if "json" in (response.headers.get("content-type") or ""):
            try:
                self.json_bodies.append(json.loads(response.body()))
            except Exception:  # noqa: BLE001 - redirects/204 have no body
                pass

    def foreign(self) -> list[str]:
        host = urlparse(self.base).netloc
        return [u for u in self.urls
                if not (urlparse(u).netloc == host or u.startswith(("data:", "blob:", "about:")))]


def _login(context, base: str, username: str) -> None:
    r = context.request.post(f"{base}/auth/token",
                             form={"username": username, "password": f"{username}-pass"})
    assert r.ok, r.text()


def _open(browser, base: str, username: str | None = None, hash_: str = ""):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    if username:
        _login(context, base, username)
    page = context.new_page()
    rec = Recorder(page, base)
    page.goto(f"{base}/{hash_}")
    return context, page, rec


def test_anonymous_page_loads_from_the_server_only(live_server, browser, artifacts_dir):
    context, page, rec = _open(browser, live_server)
    page.wait_for_selector("#login-btn:not([hidden])")
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof L !== 'undefined' && L.version") == "1.9.4"
    assert page.evaluate("document.fonts.check('14px \"Be Vietnam Pro\"')")
    assert page.inner_text("h1") == "Bản đồ phong trào toàn dân bảo vệ ANTQ"
    page.click("#lang-toggle")
    assert page.inner_text("h1") == "All-people national security movement map"
    assert "lang=en" in page.url
    page.screenshot(path=str(artifacts_dir / "page_anonymous.png"))
    context.close()
    assert rec.errors == []
    assert rec.foreign() == []


def test_login_form_then_layers_draw_and_toggle(live_server, browser, artifacts_dir):
    context, page, rec = _open(browser, live_server)
    page.click("#login-btn")
    page.fill("#login-form input[name=username]", "admin")
    page.fill("#login-form input[name=password]", "admin-pass")
    page.click("#login-form button[type=submit]")
    page.wait_for_function(READY, timeout=30_000)
    assert "admin" in page.inner_text("#user-badge")
    offered = page.eval_on_selector_all("#layer-list [data-layer]", "els => els.map(e => e.dataset.layer)")
    assert {"communes", "villages", "models", "incidents", "incident_hexagons"} <= set(offered)
    drawn = page.evaluate("Object.keys(anttMap.drawn)")
    assert {"communes", "models"} <= set(drawn)
    assert page.locator("path.leaflet-interactive").count() >= 100  # Hải Phòng's 114 communes
    page.uncheck("[data-layer=models] input")
    assert "models" not in page.evaluate("Object.keys(anttMap.drawn)")
    assert "models" not in page.url.split("l=")[1].split("&")[0]
    page.check("[data-layer=models] input")
    page.wait_for_function("'models' in anttMap.drawn")
    # Filters reach the server and the URL: category and youth on the incident aggregates.
    with page.expect_request(lambda r: "/collections/incident_hexagons/items" in r.url
                             and "category=crime" in r.url):
        page.select_option("#f-category", "crime")
    with page.expect_request(lambda r: "/collections/incident_hexagons/items" in r.url
                             and "youth=true" in r.url and "category=crime" in r.url):
        page.select_option("#f-youth", "true")
    assert "cat=crime" in page.url and "youth=true" in page.url
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "page_admin.png"))
    context.close()
    assert rec.errors == []
    assert rec.foreign() == []


def test_search_without_diacritics_opens_the_commune(live_server, browser, artifacts_dir):
    context, page, rec = _open(browser, live_server, "committee")
    page.wait_for_function(READY, timeout=30_000)
    page.fill("#search", "tan ky")
    page.wait_for_selector("#search-results li b")
    names = page.eval_on_selector_all("#search-results li b", "els => els.map(e => e.textContent)")
    assert any("Tân Kỳ" in n for n in names), names
    page.locator("#search-results li", has_text="Tân Kỳ").first.click()
    page.wait_for_selector("#panel:not([hidden]) h2")
    assert "Tân Kỳ" in page.inner_text("#panel h2")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "page_search_panel.png"))
    context.close()
    assert rec.foreign() == []


def test_planner_adds_and_edits_a_launch_point(live_server, demo_url, browser, artifacts_dir):
    context, page, rec = _open(browser, live_server, "planner", "#c=20.86,106.62&z=11")
    page.wait_for_function(READY, timeout=30_000)
    page.click("#add-launch")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#launch-dialog[open]")
    page.fill("#launch-form input[name=name]", "Điểm phát động thử nghiệm")
    page.fill("#launch-form input[name=theme]", "Ngày hội toàn dân bảo vệ ANTQ")
    page.fill("#launch-form input[name=launch_date]", "2026-08-19")
    page.click("#launch-form button[type=submit]")
    page.wait_for_function(CLOSED, timeout=30_000)
    eng = make_engine(demo_url)
    with eng.connect() as conn:
        row = conn.execute(text(
            "SELECT id, theme, version, ST_X(geom) AS x, ST_Y(geom) AS y, created_by, commune_id "
            "FROM launch_point WHERE name = 'Điểm phát động thử nghiệm'")).mappings().one()
    assert row["theme"] == "Ngày hội toàn dân bảo vệ ANTQ"
    assert abs(row["x"] - 106.62) < 0.05 and abs(row["y"] - 20.86) < 0.05
    assert row["commune_id"] is not None  # assigned by the spatial join
    page.wait_for_selector("#nearby-box:not([hidden]) h4, #nearby-box:not([hidden]) .error")
    # Uncovered villages within 2 km of the new point, from the radius endpoint (not an error).
    assert page.locator("#nearby-box .error").count() == 0
    assert "2 km" in page.locator("#nearby-box h4").inner_text()

    # Edit it: the popup's button loads the ETag and PATCHes with If-Match.
    mine = ("anttMap.drawn.launch_points && anttMap.drawn.launch_points.getLayers()"
            f".find(m => m.feature.id == {row['id']})")
    page.wait_for_function(mine)
    page.evaluate(f"void ({mine}).openPopup()")  # void: do not serialise the marker back
    page.click(".leaflet-popup-content button")
    page.wait_for_selector("#launch-dialog[open]")
    page.fill("#launch-form input[name=theme]", "Chủ đề đã sửa")
    page.click("#launch-form button[type=submit]")
    page.wait_for_function(CLOSED, timeout=30_000)
    with eng.connect() as conn:
        edited = conn.execute(text("SELECT theme, version FROM launch_point WHERE id = :i"),
                              {"i": row["id"]}).mappings().one()
    eng.dispose()
    assert edited["theme"] == "Chủ đề đã sửa" and edited["version"] == row["version"] + 1
    page.screenshot(path=str(artifacts_dir / "page_planner.png"))
    context.close()
    assert rec.foreign() == []


def _pairs(node, out: list[tuple[float, float]]) -> None:
    """Every [number, number, ...] array anywhere in a JSON document."""
    if isinstance(node, list):
        if len(node) >= 2 and all(isinstance(v, int | float) for v in node[:2]):
            out.append((float(node[0]), float(node[1])))
        for v in node:
            _pairs(v, out)
    elif isinstance(node, dict):
        for v in node.values():
            _pairs(v, out)


def test_committee_never_receives_an_incident_point(live_server, demo_url, browser, artifacts_dir):
    eng = make_engine(demo_url)
    with eng.connect() as conn:
        points = {(round(x, 6), round(y, 6)) for x, y in
                  conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incident")).all()}
    eng.dispose()
    assert len(points) > 100
    context, page, rec = _open(browser, live_server, "committee",
                               "#c=20.86,106.62&z=12&l=communes,villages,models,incident_hexagons,"
                               "incident_counts_commune,heatmap")
    page.wait_for_function(READY, timeout=30_000)
    offered = page.eval_on_selector_all("#layer-list [data-layer]", "els => els.map(e => e.dataset.layer)")
    assert "incidents" not in offered and "incident_hexagons" in offered
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(artifacts_dir / "page_committee.png"))
    context.close()
    assert rec.json_bodies, "the page received no JSON at all"
    pairs: list[tuple[float, float]] = []
    for body in rec.json_bodies:
        _pairs(body, pairs)
    leaked = [p for p in pairs if (round(p[0], 6), round(p[1], 6)) in points]
    assert leaked == []
    assert not [u for u in rec.urls if "/collections/incidents/" in u]
    assert rec.foreign() == []
