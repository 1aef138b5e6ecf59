"""api.geojson: FeatureCollections with outlines spliced as PostGIS wrote them (checked against
the parsed form, on the real Hải Phòng communes)."""

from __future__ import annotations

import json
import math

import pytest
from sqlalchemy import text

from api.geojson import feature_collection_entry, unit_geometries


def test_a_collection_by_hand():
    entry = feature_collection_entry(
        [("31001", '{"type":"Point","coordinates":[106.5,20.8]}', {"name": "Xã Đông", "share": 0.25}),
         ("31002", None, {"name": "Phường \"Tây\"", "n": 3, "ok": True, "gone": None})],
        numberReturned=2, parameters={"date": "2026-12-01", "radius": 500.0})
    assert entry.media_type == "application/json"
    text_ = entry.body.decode("utf-8")
    assert "Xã Đông" in text_  # UTF-8 as is, as JSONResponse writes
    assert json.loads(text_) == {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": "31001", "geometry": {"type": "Point", "coordinates": [106.5, 20.8]},
             "properties": {"name": "Xã Đông", "share": 0.25}},
            {"type": "Feature", "id": "31002", "geometry": None,
             "properties": {"name": "Phường \"Tây\"", "n": 3, "ok": True, "gone": None}}],
        "numberReturned": 2, "parameters": {"date": "2026-12-01", "radius": 500.0}}
    empty = json.loads(feature_collection_entry([], numberReturned=0).body)
    assert empty == {"type": "FeatureCollection", "features": [], "numberReturned": 0}


def test_nan_is_refused_not_written():
    with pytest.raises(ValueError):
        feature_collection_entry([("1", None, {"x": math.nan})])


def test_spliced_outlines_are_the_parsed_ones(haiphong_engine):
    with haiphong_engine.connect() as conn:
        ids = list(conn.execute(text(
            "SELECT id FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 20")).scalars())
        for simplify in (0.0, 20.0, 500.0):
            outlines = unit_geometries(conn, ids, simplify)
            assert sorted(outlines) == sorted(ids)
            body = json.loads(feature_collection_entry(
                ((i, outlines[i], {"id": i}) for i in ids), numberReturned=len(ids)).body)
            for feature in body["features"]:
                assert feature["geometry"] == json.loads(outlines[feature["id"]])
                assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        full = json.loads(unit_geometries(conn, ids[:1], 0.0)[ids[0]])
        coarse = json.loads(unit_geometries(conn, ids[:1], 500.0)[ids[0]])
        assert len(json.dumps(coarse)) < len(json.dumps(full))  # simplified
    assert unit_geometries(None, [], 20.0) == {}  # no ids: no query
