"""OGC API Features over the real Hải Phòng communes plus the known layer data set
(tests/api/conftest.py LAYER_DATA_SQL: 7 / 2 / 4 incidents and 3 / 2 / 0 models in the first
three communes by code)."""

from __future__ import annotations

import csv
import io

import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import text

from antt.db import get_engine


def sql(query: str, **params):
    with get_engine().connect() as conn:
        return conn.execute(text(query), params).all()


def first_communes() -> list[str]:
    return [r[0] for r in sql("SELECT code FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 3")]


def assert_problem(resp, status: int, field: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["detail_vi"] and body["detail_en"]
    assert body["detail_vi"] != body["detail_en"]
    if field:
        assert field in [e["field"] for e in body["errors"]]
    return body


def test_landing_and_conformance_are_public(layer_client):
    landing = layer_client.get("/?f=json")
    assert landing.status_code == 200
    rels = {link["rel"] for link in landing.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    # The root path is shared with the map page: a browser gets the page, a client asking JSON
    # gets the landing page.
    assert layer_client.get("/", headers={"Accept": "application/json"}).json()["links"]
    page = layer_client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    conf = layer_client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    assert_problem(layer_client.get("/collections"), 401)
    assert_problem(layer_client.get("/collections/communes/items"), 401)


def test_layers_catalogue_follows_the_role(layer_client, make_user):
    police = {x["id"] for x in layer_client.get("/layers", headers=make_user("police")).json()}
    viewer = layer_client.get("/layers", headers=make_user("viewer")).json()
    assert "incidents" in police
    assert "incidents" not in {x["id"] for x in viewer}
    assert {"incident_hexagons", "incident_counts_commune", "incident_counts_village"} <= police
    entry = next(x for x in viewer if x["id"] == "models")
    assert {"id", "title", "geometry_type", "kind", "time_field", "properties", "style", "legend",
            "items_url", "tiles_url", "tilejson_url", "min_zoom", "max_zoom"} <= set(entry)
    assert entry["legend"][0]["label"]["vi"] and entry["legend"][0]["label"]["en"]


@pytest.mark.parametrize("role", ["committee", "planner", "viewer"])
def test_incident_points_are_403_for_non_police(layer_client, make_user, role):
    h = make_user(role)
    for path in ("/collections/incidents", "/collections/incidents/items",
                 "/collections/incidents/items/1", "/collections/incidents/tilejson.json",
                 "/collections/incidents/tiles/WebMercatorQuad/12/3258/1797"):
        body = assert_problem(layer_client.get(path, headers=h), 403)
        assert "incident_hexagons" in body["detail_en"]
    ids = {c["id"] for c in layer_client.get("/collections", headers=h).json()["collections"]}
    assert "incidents" not in ids and "incident_hexagons" in ids
    assert layer_client.get("/collections/incident_hexagons/items", headers=h).status_code == 200


def test_paging_follows_next_links_until_exhausted(layer_client, make_user):
    h = make_user("viewer")
    url, seen, pages = "/collections/communes/items?limit=25&simplify=200", [], 0
    matched = None
    while url:
        body = layer_client.get(url, headers=h).json()
        matched = body["numberMatched"] if matched is None else matched
        assert body["numberMatched"] == matched
        assert body["numberReturned"] == len(body["features"])
        seen += [f["id"] for f in body["features"]]
        url = next((x["href"] for x in body["links"] if x["rel"] == "next"), None)
        pages += 1
    assert matched == 114 == len(seen) == len(set(seen))
    assert pages == 5
    assert seen == sorted(seen)
    last = layer_client.get("/collections/communes/items?limit=25&offset=100", headers=h).json()
    assert last["numberReturned"] == 14
    assert {x["rel"] for x in last["links"]} >= {"prev"} and "next" not in {x["rel"] for x in last["links"]}
    beyond = layer_client.get("/collections/communes/items?offset=500", headers=h).json()
    assert beyond["numberReturned"] == 0 and beyond["features"] == []


def test_limit_and_parameter_errors_are_problem_json(layer_client, make_user):
    h = make_user("viewer")
    assert_problem(layer_client.get("/collections/communes/items?limit=10001", headers=h), 400, "limit")
    assert_problem(layer_client.get("/collections/communes/items?bbox=1,2,3", headers=h), 400, "bbox")
    assert_problem(layer_client.get("/collections/communes/items?datetime=2025-02-01/2025-01-01",
                                    headers=h), 400, "datetime")
    assert_problem(layer_client.get("/collections/models/items?colour=red", headers=h), 400, "colour")
    assert_problem(layer_client.get("/collections/models/items?f=xml", headers=h), 400, "f")
    assert_problem(layer_client.get("/collections/institutions/items?antt_safe=maybe", headers=h),
                   400, "antt_safe")
    assert_problem(layer_client.get("/collections/institutions/tiles/WebMercatorQuad/9/408/225?antt_safe=2",
                                    headers=h), 400, "antt_safe")
    assert_problem(layer_client.get("/collections/communes/items?simplify=-1", headers=h), 400, "simplify")
    assert_problem(layer_client.get("/collections/institutions/items?datetime=2025-01-01", headers=h),
                   400, "datetime")  # no time field: refused rather than ignored
    assert_problem(layer_client.get("/collections/nope/items", headers=h), 404, "collectionId")
    assert_problem(layer_client.get("/collections/incident_hexagons/items?cell=100", headers=h),
                   400, "cell")  # below the 250 m floor for roles without points


def test_bbox_datetime_and_property_filters(layer_client, make_user):
    h = make_user("police")
    c1, c2, c3 = first_communes()
    (x, y), = sql("SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                  "FROM admin_unit WHERE level = 'commune' AND code = :c", c=c1)
    box = f"{x - 0.01},{y - 0.01},{x + 0.01},{y + 0.01}"
    near = layer_client.get(f"/collections/models/items?bbox={box}&limit=100", headers=h).json()
    assert {f["properties"]["commune_code"] for f in near["features"]} == {c1}
    assert near["numberMatched"] == 3

    def matched(query: str) -> int:
        resp = layer_client.get(f"/collections/incidents/items?{query}", headers=h)
        assert resp.status_code == 200, resp.text
        return resp.json()["numberMatched"]

    assert matched("") == 13
    assert matched("datetime=2025-01-01/..") == 9
    assert matched("datetime=../2024-12-31") == 4
    assert matched("datetime=2024-03-11") == 1  # a whole local day
    assert matched("datetime=2024-03-11T09:00:00%2B07:00") == 1  # an instant
    crime = sql("SELECT count(*) FROM incident WHERE category_code LIKE 'crime/%'")[0][0]
    assert matched("category=crime") == crime
    assert matched("category=crime/fraud") == sql(
        "SELECT count(*) FROM incident WHERE category_code = 'crime/fraud/online'")[0][0]
    assert matched("youth_involved=true") == sql("SELECT count(*) FROM incident WHERE youth_involved")[0][0]
    assert matched(f"commune_code={c2}") == 2
    models = layer_client.get("/collections/models/items?status=suspended", headers=h).json()
    assert models["numberMatched"] == 1
    assert models["features"][0]["properties"]["rating"] == "kha"
    rated = layer_client.get("/collections/models/items?rating=tot&limit=50", headers=h).json()
    assert rated["numberMatched"] == 2  # the '-1' model of each of the two communes with models
    assert c3  # the third commune has no models: nothing to filter


def test_units_valid_on_a_date(layer_client, make_user):
    h = make_user("viewer")
    today = layer_client.get("/collections/communes/items?limit=1", headers=h).json()
    assert today["numberMatched"] == 114
    before = layer_client.get("/collections/communes/items?datetime=2024-01-01", headers=h).json()
    assert before["numberMatched"] == 0  # the 2025 communes did not exist yet


def test_full_geometry_and_simplified(layer_client, make_user):
    h = make_user("viewer")
    code = first_communes()[0]
    full = layer_client.get(f"/collections/communes/items?code={code}", headers=h).json()["features"][0]
    simple = layer_client.get(f"/collections/communes/items?code={code}&simplify=100",
                              headers=h).json()["features"][0]
    (n_db, area_db), = sql("SELECT ST_NPoints(geom), ST_Area(geom) FROM admin_unit "
                           "WHERE level = 'commune' AND code = :c", c=code)
    g_full, g_simple = shape(full["geometry"]), shape(simple["geometry"])
    assert shapely.get_num_coordinates(g_full) == n_db
    assert g_full.area == pytest.approx(area_db, rel=1e-6)
    assert shapely.get_num_coordinates(g_simple) < n_db
    assert g_simple.area == pytest.approx(area_db, rel=0.05)


@pytest.mark.parametrize("tolerance", [100, 500])
def test_simplified_outline_stays_within_the_tolerance_on_the_ground(layer_client, make_user, tolerance):
    """simplify=M is done in degrees (layers.sql.simplified_sql, not through EPSG:3405): the
    outline must still stay within M metres on the ground, with fewer vertices."""
    import json

    h = make_user("viewer")
    code = first_communes()[0]
    simple = layer_client.get(f"/collections/communes/items?code={code}&simplify={tolerance}",
                              headers=h).json()["features"][0]
    (n_db, n_simple, hausdorff), = sql(
        "SELECT ST_NPoints(geom), ST_NPoints(s), ST_HausdorffDistance(ST_Transform(geom, 3405), "
        "ST_Transform(s, 3405)) FROM admin_unit, ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326) s "
        "WHERE level = 'commune' AND code = :c", g=json.dumps(simple["geometry"]), c=code)
    assert n_simple < n_db
    assert 0 < hausdorff <= tolerance * 1.001  # UTM's scale factor, 0.9996..1.0004


def test_single_item_with_etag_and_404(layer_client, make_user):
    h = make_user("planner")
    model_id = sql("SELECT min(id) FROM security_model")[0][0]
    resp = layer_client.get(f"/collections/models/items/{model_id}", headers=h)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/geo+json")
    assert resp.headers["etag"] == 'W/"1"'
    assert resp.json()["id"] == model_id
    with get_engine().begin() as conn:
        conn.execute(text("UPDATE security_model SET version = 7 WHERE id = :i"), {"i": model_id})
    assert layer_client.get(f"/collections/models/items/{model_id}", headers=h).headers["etag"] == 'W/"7"'
    assert_problem(layer_client.get("/collections/models/items/999999", headers=h), 404)
    page = layer_client.get("/collections/models/items?limit=3", headers=h)
    revalidate = h | {"If-None-Match": page.headers["etag"]}
    again = layer_client.get("/collections/models/items?limit=3", headers=revalidate)
    assert again.status_code == 304 and again.content == b""
    with get_engine().begin() as conn:  # an edit changes the page, so its ETag
        conn.execute(text("UPDATE security_model SET name = name || ' (sửa)' WHERE id = :i"), {"i": model_id})
    changed = layer_client.get("/collections/models/items?limit=3", headers=revalidate)
    assert changed.status_code == 200 and changed.headers["etag"] != page.headers["etag"]
    assert_problem(layer_client.get("/collections/models/items/abc", headers=h), 404)
    commune = layer_client.get("/collections/communes/items?limit=1", headers=h).json()["features"][0]
    one = layer_client.get(f"/collections/communes/items/{commune['id']}", headers=h)
    assert one.status_code == 200 and "etag" not in one.headers


def test_csv_output(layer_client, make_user):
    h = make_user("admin")
    resp = layer_client.get("/collections/models/items?f=csv&limit=100", headers=h)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text.lstrip("\ufeff"))))
    assert len(rows) == 5 == int(resp.headers["OGC-NumberMatched"])
    assert {"id", "name", "type_code", "lon", "lat"} <= set(rows[0])
    assert all(105 < float(r["lon"]) < 108 for r in rows)
    communes = layer_client.get("/collections/communes/items?f=csv&limit=2", headers=h)
    assert communes.text.count("MULTIPOLYGON") == 2


def test_aggregates_suppress_small_counts_for_non_police(layer_client, make_user):
    c1, c2, c3 = first_communes()

    def counts(role: str) -> dict[str, tuple]:
        body = layer_client.get("/collections/incident_counts_commune/items?limit=200",
                                headers=make_user(role)).json()
        return {f["properties"]["code"]: (f["properties"]["count"], f["properties"]["suppressed"])
                for f in body["features"]}

    viewer, police = counts("viewer"), counts("police")
    assert viewer[c1] == (7, False) and viewer[c3] == (4, False)
    assert viewer[c2] == (None, True)
    assert police[c2] == (2, False)
    assert len(viewer) == 114 and sum(1 for v in viewer.values() if v == (0, False)) == 111
    recent = layer_client.get("/collections/incident_counts_commune/items?limit=200&datetime=2025-01-01/..",
                              headers=make_user("viewer")).json()
    assert {f["properties"]["code"]: f["properties"]["count"] for f in recent["features"]}[c3] == 0

    def hexes(role: str, query: str = "") -> list[tuple]:
        body = layer_client.get(f"/collections/incident_hexagons/items?limit=100{query}",
                                headers=make_user(role)).json()
        assert body["cell_m"] == (250 if "cell=250" in query else 500)
        return [(f["properties"]["count"], f["properties"]["suppressed"]) for f in body["features"]]

    police_cells = hexes("police")
    assert sum(n for n, _ in police_cells) == 13  # every incident in exactly one cell
    assert not any(s for _, s in police_cells)
    for query in ("", "&cell=250"):
        cells = hexes("viewer", query)
        assert len(cells) == len(hexes("police", query))  # same cells, only the numbers hidden
        assert all((n is None and s) or (n >= 3 and not s) for n, s in cells)
        assert any(s for _, s in cells)  # the second commune's 2 incidents
        assert sum(n for n, _ in cells if n) <= 11


def test_scope_filters_every_layer(layer_client, make_user):
    c1, c2, _ = first_communes()
    h = make_user("planner", "commune", c1)
    communes = layer_client.get("/collections/communes/items", headers=h).json()
    assert [f["properties"]["code"] for f in communes["features"]] == [c1]
    models = layer_client.get("/collections/models/items?limit=50", headers=h).json()
    assert models["numberMatched"] == 3
    villages = layer_client.get("/collections/villages/items", headers=h).json()
    assert [f["properties"]["parent_code"] for f in villages["features"]] == [c1]
    provinces = layer_client.get("/collections/provinces/items", headers=h).json()
    assert [f["properties"]["code"] for f in provinces["features"]] == ["31"]
    police = make_user("police", "commune", c2)
    assert layer_client.get("/collections/incidents/items", headers=police).json()["numberMatched"] == 2
    cells = layer_client.get("/collections/incident_hexagons/items", headers=police).json()["features"]
    assert sum(f["properties"]["count"] for f in cells) == 2  # only the scoped commune's points
    hp = make_user("viewer", "province", "31")
    assert layer_client.get("/collections/models/items", headers=hp).json()["numberMatched"] == 5
