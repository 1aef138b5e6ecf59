"""api/web.py: the page, its assets, and /config.json."""

from __future__ import annotations

import httpx


def test_page_assets_and_config(live_server):
    with httpx.Client(base_url=live_server, timeout=30) as client:
        page = client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/vendor/leaflet/dist/leaflet.js" in page.text and "http" not in page.text.split("<body>")[0]
        js = client.get("/vendor/leaflet/dist/leaflet.js", headers={"Accept-Encoding": "gzip"})
        assert js.status_code == 200 and js.headers.get("content-encoding") == "gzip"
        assert client.get("/vendor/leaflet/package.json").status_code == 404  # not an asset type
        assert client.get("/vendor/..%2F..%2Fpackage.json").status_code == 404
        assert client.get("/static/..%2F..%2Fantt%2Fsettings.py").status_code == 404
        missing = client.get("/static/nope.js")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert client.get("/config.json").json()["user"] is None
        client.post("/auth/token", data={"username": "planner", "password": "planner-pass"})
        me = client.get("/config.json").json()["user"]  # the cookie set by the login
        assert me["username"] == "planner" and me["role"] == "planner" and me["sees_points"] is False
        landing = client.get("/?f=json")
        assert landing.json()["title"] == "antt-map"  # the OGC landing page shares the root
