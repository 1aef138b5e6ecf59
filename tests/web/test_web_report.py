"""The Folium report map: standalone, aggregates only, opens offline in a real browser."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import text

from antt.db import make_engine
from web import report

TAN_KY = None  # resolved from the database by name, never hard-coded


def _commune_code(eng, name: str) -> str:
    with eng.connect() as conn:
        return conn.execute(text("SELECT code FROM admin_unit WHERE level='commune' AND name=:n"),
                            {"n": name}).scalar_one()


def _incident_coords(eng) -> set[str]:
    """Every incident coordinate as the 5-decimal strings a page could carry."""
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incident")).all()
    return {f"{x:.5f}" for x, _ in rows} | {f"{y:.5f}" for _, y in rows}


def test_shown_count_suppresses_small_numbers():
    assert report.shown_count(0, 3) == "0"
    assert report.shown_count(2, 3) == "<3"
    assert report.shown_count(3, 3) == "3"


def test_coverage_color_classes():
    assert report.coverage_color(None) == report.NO_DATA_COLOR
    assert report.coverage_color(0.0) == "#f7fcf5"
    assert report.coverage_color(0.6) == "#74c476"
    assert report.coverage_color(1.0) == "#006d2c"


def test_unknown_commune_is_a_clear_error(demo_url):
    eng = make_engine(demo_url)
    with pytest.raises(report.ReportError, match="no commune with code '99999'"):
        report.build_report_map(eng, commune="99999")
    eng.dispose()


def test_commune_report_is_standalone_and_aggregate(demo_url, tmp_path, browser, artifacts_dir):
    eng = make_engine(demo_url)
    code = _commune_code(eng, "Tân Kỳ")
    out, png = report.export_map(eng, tmp_path / "tan_ky.html", commune=code,
                                 png=artifacts_dir / "report_tan_ky.png", on=dt.date(2026, 6, 30))
    html = out.read_text(encoding="utf-8")
    assert "Tân Kỳ" in html
    assert report.external_references(html) == []
    assert "L.markerClusterGroup" in html and "Leaflet" in html
    # No exact incident coordinate is in the file (5-decimal rounding is what GeoJSON carries).
    numbers = set(re.findall(r"\d{2,3}\.\d{5}", html))
    with eng.connect() as conn:
        in_commune = conn.execute(text(
            "SELECT ST_X(i.geom) x, ST_Y(i.geom) y FROM incident i JOIN admin_unit c "
            "ON c.id = i.commune_id WHERE c.code = :c"), {"c": code}).all()
    assert in_commune, "the demo should have incidents in Tân Kỳ"
    leaked = [(x, y) for x, y in in_commune if f"{x:.5f}" in numbers and f"{y:.5f}" in numbers]
    assert leaked == []
    assert png.stat().st_size > 20_000

    # Open it from file:// with every network request blocked: Leaflet must run, no errors.
    context = browser.new_context()
    requests: list[str] = []
    context.route("**/*", lambda route: (requests.append(route.request.url),
                                         route.continue_() if route.request.url.startswith("file:")
                                         else route.abort()))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(out.as_uri())
    page.wait_for_selector(".leaflet-interactive", timeout=10_000)
    assert page.evaluate("typeof L !== 'undefined' && L.version.startsWith('1.9')")
    assert page.locator("path.leaflet-interactive").count() >= 3  # villages drawn
    page.screenshot(path=str(artifacts_dir / "report_tan_ky_playwright.png"))
    context.close()
    assert errors == []
    assert [u for u in requests if not u.startswith("file:")] == []
    eng.dispose()


def test_province_report(demo_url, tmp_path):
    eng = make_engine(demo_url)
    out, _ = report.export_map(eng, tmp_path / "hp.html", province="31", on=dt.date(2026, 6, 30))
    html = out.read_text(encoding="utf-8")
    assert html.count('"code": "') >= 114  # every commune of Hải Phòng is drawn
    assert len(html) < 6_000_000
    eng.dispose()


def test_export_endpoint(live_server, demo_url):
    import httpx

    eng = make_engine(demo_url)
    code = _commune_code(eng, "Tân Kỳ")
    eng.dispose()
    with httpx.Client(base_url=live_server, timeout=120) as client:
        assert client.get("/exports/map", params={"commune": code}).status_code == 401
        token = client.post("/auth/token", data={"username": "committee",
                                                 "password": "committee-pass"}).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        r = client.get("/exports/map", params={"commune": code}, headers=auth)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "Tân Kỳ" in r.text and report.external_references(r.text) == []
        missing = client.get("/exports/map", params={"commune": "99999"}, headers=auth)
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert "99999" in missing.json()["detail_en"]
        both = client.get("/exports/map", params={"commune": code, "province": "31"}, headers=auth)
        assert both.status_code == 422 and "commune" in both.json()["detail_en"]
        png = client.get("/exports/map", params={"commune": code, "format": "png"}, headers=auth)
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
