"""Unit search: diacritics optional, codes, ranking, validity date and scope."""

from __future__ import annotations

from sqlalchemy import text

from antt.db import get_engine
from layers.search import normalise_query


def test_normalise_query_strips_diacritics_and_kind_words():
    assert normalise_query("Xã Tân Kỳ") == "tan ky"
    assert normalise_query("xa tan ky") == "tan ky"
    assert normalise_query("  Thôn   Đông Hải ") == "dong hai"
    assert normalise_query("Phường") == "phuong"  # a kind word alone is kept as the query


def test_without_diacritics_finds_the_commune_and_the_village(layer_client, make_user):
    h = make_user("viewer")
    plain = layer_client.get("/search?q=tan ky", headers=h).json()
    accented = layer_client.get("/search?q=Tân Kỳ", headers=h).json()
    assert plain == accented
    top = [(r["level"], r["name"]) for r in plain[:2]]
    assert ("commune", "Tân Kỳ") in top and ("village", "Tân Kỳ") in top  # exact names first
    commune = next(r for r in plain if r["level"] == "commune" and r["name"] == "Tân Kỳ")
    assert commune["full_name"] == "Xã Tân Kỳ" and commune["parent_name"] == "Hải Phòng"
    minx, miny, maxx, maxy = commune["bbox"]
    lon, lat = commune["centroid"]
    assert minx <= lon <= maxx and miny <= lat <= maxy
    village = next(r for r in plain if r["level"] == "village")
    assert village["kind"] == "thôn" and village["parent_name"]


def test_ranking_exact_before_prefix_before_similar(layer_client, make_user):
    h = make_user("viewer")
    names = [r["name"] for r in layer_client.get("/search?q=tan&limit=50&level=commune", headers=h).json()]
    assert names, "Hải Phòng has communes named Tân ..."
    prefixed = [n for n in names if normalise_query(n).startswith("tan")]
    assert names[:len(prefixed)] == prefixed  # every prefix match before any other match
    typo = layer_client.get("/search?q=tan kyy&level=commune", headers=h).json()
    assert typo and typo[0]["name"] == "Tân Kỳ"  # trigram similarity tolerates a typo


def test_by_code_and_level(layer_client, make_user):
    h = make_user("viewer")
    with get_engine().connect() as conn:
        code, name = conn.execute(text(
            "SELECT code, name FROM admin_unit WHERE level = 'commune' ORDER BY code DESC LIMIT 1")).one()
    hit = layer_client.get(f"/search?q={code}", headers=h).json()
    assert hit[0]["code"] == code and hit[0]["name"] == name
    province = layer_client.get("/search?q=hai phong&level=province", headers=h).json()
    assert [r["code"] for r in province] == ["31"]


def test_validity_date_and_scope(layer_client, make_user):
    h = make_user("viewer")
    assert layer_client.get("/search?q=tan ky&date=2024-06-30", headers=h).json() == []
    assert layer_client.get("/search?q=tan ky&date=2025-07-01", headers=h).json()
    with get_engine().connect() as conn:
        first = conn.execute(text(
            "SELECT code FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 1")).scalar_one()
    scoped = make_user("committee", "commune", first)
    found = layer_client.get("/search?q=tan ky", headers=scoped).json()
    # Only the village 'Tân Kỳ' lies in the first commune; the commune 'Tân Kỳ' is elsewhere.
    assert [(r["level"], r["name"]) for r in found] == [("village", "Tân Kỳ")]


def test_bad_input_is_problem_json(layer_client, make_user):
    h = make_user("viewer")
    for query, field in (("q=%20", "q"), ("q=tan&limit=0", "limit"), ("q=tan&limit=51", "limit"),
                         ("q=tan&level=district", "level")):
        resp = layer_client.get(f"/search?{query}", headers=h)
        assert resp.status_code == 400, query
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in resp.json()["errors"]]
    assert layer_client.get("/search?q=tan").status_code == 401
    assert layer_client.get("/search", headers=h).status_code == 422
