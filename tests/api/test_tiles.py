"""Vector tiles: decoded with mapbox_vector_tile and counted against PostGIS."""

from __future__ import annotations

import math
from contextlib import contextmanager

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from antt.db import get_engine
from api.deps import Principal
from layers.catalogue import CATALOGUE
from layers.sql import LayerQuery
from layers.tiles import BUFFER, EXTENT, TileTooLarge, build_tile, tile_width_m


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def scalar(query: str, **params):
    with get_engine().connect() as conn:
        return conn.execute(text(query), params).scalar_one()


def first_point() -> tuple[float, float]:
    with get_engine().connect() as conn:
        return tuple(conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM admin_unit "
            "WHERE level = 'commune' ORDER BY code LIMIT 1) x")).one())


def decode(resp) -> dict:
    return mapbox_vector_tile.decode(resp.content)


def test_commune_tile_holds_every_commune_it_touches(layer_client, make_user):
    h = make_user("viewer")
    lon, lat = first_point()
    z = 9
    x, y = tile_of(lon, lat, z)
    resp = layer_client.get(f"/collections/communes/tiles/WebMercatorQuad/{z}/{x}/{y}", headers=h)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    features = decode(resp)["communes"]["features"]
    margin = tile_width_m(z) / EXTENT * BUFFER
    expected = scalar(
        "SELECT count(*) FROM admin_unit WHERE level = 'commune' AND ST_Intersects("
        "ST_Transform(geom, 3857), ST_Expand(ST_TileEnvelope(:z, :x, :y), :m))", z=z, x=x, y=y, m=margin)
    assert len(features) == expected == int(resp.headers["X-Tile-Features"])
    assert expected > 10  # a z9 tile over Hải Phòng holds many communes
    assert {"code", "name", "kind"} <= set(features[0]["properties"])
    assert len(resp.content) <= 500_000


def test_etag_304_cache_control_and_204(layer_client, make_user):
    h = make_user("viewer")
    lon, lat = first_point()
    x, y = tile_of(lon, lat, 10)
    url = f"/collections/communes/tiles/WebMercatorQuad/10/{x}/{y}"
    first = layer_client.get(url, headers=h)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, no-cache"  # same for every viewer scoped to all
    again = layer_client.get(url, headers=h | {"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = layer_client.get(url, headers=h | {"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.headers["etag"] == etag
    px, py = tile_of(-150.0, 10.0, 10)  # the Pacific: nothing of ours there
    empty = layer_client.get(f"/collections/communes/tiles/WebMercatorQuad/10/{px}/{py}", headers=h)
    assert empty.status_code == 204 and empty.content == b""
    bad = layer_client.get("/collections/communes/tiles/WebMercatorQuad/3/9/1", headers=h)
    assert bad.status_code == 404 and bad.headers["content-type"].startswith("application/problem+json")


def test_incident_points_for_police_hexagons_for_others(layer_client, make_user):
    lon, lat = first_point()
    z = 14
    x, y = tile_of(lon, lat, z)
    police = layer_client.get(f"/collections/incidents/tiles/WebMercatorQuad/{z}/{x}/{y}",
                              headers=make_user("police"))
    points = decode(police)["incidents"]["features"]
    margin = tile_width_m(z) / EXTENT * BUFFER
    expected = scalar("SELECT count(*) FROM incident WHERE ST_Intersects(ST_Transform(geom, 3857), "
                      "ST_Expand(ST_TileEnvelope(:z, :x, :y), :m))", z=z, x=x, y=y, m=margin)
    assert len(points) == expected >= 7  # at least the first commune's 7, all within ~60 m
    assert points[0]["geometry"]["type"] == "Point"
    viewer = make_user("viewer")
    hexes = layer_client.get(f"/collections/incident_hexagons/tiles/WebMercatorQuad/{z}/{x}/{y}",
                             headers=viewer)
    cells = decode(hexes)["incident_hexagons"]["features"]
    assert cells
    for cell in cells:  # MVT has no null: a hidden count is simply absent
        props = cell["properties"]
        hidden = props["suppressed"] and "count" not in props
        assert hidden or (props["count"] >= 3 and not props["suppressed"])
    assert sum(c["properties"].get("count", 0) for c in cells) <= expected
    assert layer_client.get(f"/collections/incidents/tiles/WebMercatorQuad/{z}/{x}/{y}",
                            headers=viewer).status_code == 403


def test_tilejson(layer_client, make_user):
    body = layer_client.get("/collections/models/tilejson.json", headers=make_user("viewer")).json()
    assert body["tilejson"] == "3.0.0"
    assert body["tiles"][0].endswith("/collections/models/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert body["vector_layers"][0]["id"] == "models"
    assert body["vector_layers"][0]["fields"]["rating"] == "String"
    minx, miny, maxx, maxy = body["bounds"]
    assert 105 < minx <= maxx < 108 and 20 < miny <= maxy < 22  # the models' extent


def _query(layer_id: str) -> LayerQuery:
    return LayerQuery(CATALOGUE[layer_id], Principal("t", "admin"))


def test_heavy_polygon_tile_is_simplified_not_cut(layer_client):
    lon, lat = first_point()
    x, y = tile_of(lon, lat, 8)
    with get_engine().connect() as conn:
        full = build_tile(conn, _query("communes"), 8, x, y)
        assert full.generalisation == "none"
        lighter = build_tile(conn, _query("communes"), 8, x, y, max_bytes=len(full.data) - 1)
    assert len(lighter.data) < len(full.data)
    assert lighter.generalisation.startswith("simplified")
    assert lighter.features == full.features
    assert len(mapbox_vector_tile.decode(lighter.data)["communes"]["features"]) == full.features


def test_heavy_point_tile_becomes_counts_that_add_up(layer_client):
    lon, lat = first_point()
    x, y = tile_of(lon, lat, 12)
    with get_engine().connect() as conn:
        full = build_tile(conn, _query("incidents"), 12, x, y)
        assert full.features >= 7
        aggregated = build_tile(conn, _query("incidents"), 12, x, y, max_bytes=len(full.data) - 1)
        assert aggregated.generalisation == "aggregated"
        cells = mapbox_vector_tile.decode(aggregated.data)["incidents"]["features"]
        assert sum(c["properties"]["count"] for c in cells) == aggregated.features == full.features
        assert all(c["properties"]["aggregated"] for c in cells)
        with pytest.raises(TileTooLarge):
            build_tile(conn, _query("incidents"), 12, x, y, max_bytes=5)


def _scatter_incidents(conn, z: int, x: int, y: int) -> None:
    """150 incidents in the tile (uncommitted: the caller rolls back), 100 of them in one
    corner so that cells hold several."""
    conn.execute(text("SELECT setseed(0.42)"))
    conn.execute(text("""
        INSERT INTO incident (category_code, occurred_at, geom)
        SELECT 'crime/theft', timestamptz '2026-05-01 10:00+07',
               ST_Transform(ST_SetSRID(ST_MakePoint(ST_XMin(e) + (ST_XMax(e) - ST_XMin(e)) * random() * f,
                                                    ST_YMin(e) + (ST_YMax(e) - ST_YMin(e)) * random() * f),
                                       3857), 4326)
        FROM ST_TileEnvelope(:z, :x, :y) e, generate_series(1, 150) n,
             LATERAL (SELECT CASE WHEN n <= 100 THEN 0.1 ELSE 1 END AS f) s"""), {"z": z, "x": x, "y": y})


@contextmanager
def _scattered_tile():
    """A connection whose open transaction holds 150 more incidents in the z9 tile of the first
    commune (rolled back afterwards), the tile's (z, x, y) and its full-detail tile."""
    lon, lat = first_point()
    z = 9
    x, y = tile_of(lon, lat, z)
    with get_engine().connect() as conn:
        _scatter_incidents(conn, z, x, y)
        try:
            yield conn, (z, x, y), build_tile(conn, _query("incidents"), z, x, y)
        finally:
            conn.rollback()


def _points_in_tile(conn, z: int, x: int, y: int) -> list[tuple[float, float]]:
    return conn.execute(text(
        "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(geom, 3857) g FROM incident) p "
        "WHERE ST_Intersects(g, ST_TileEnvelope(:z, :x, :y))"), {"z": z, "x": x, "y": y}).all()


def test_point_counts_are_the_grid_cells_of_the_points(layer_client):
    """The counts step groups the tile's points by the grid node they snap to (64 grid units),
    one feature per node with its points' count, drawn at their mean: checked against the
    points by hand (in EPSG:3857 metres)."""
    from collections import defaultdict

    from layers.tiles import CLUSTER_GRID_UNITS

    with _scattered_tile() as (conn, (z, x, y), full):
        tile = build_tile(conn, _query("incidents"), z, x, y, max_bytes=len(full.data) - 1)
        points = _points_in_tile(conn, z, x, y)
        x0, y1 = conn.execute(text("SELECT ST_XMin(e), ST_YMax(e) FROM ST_TileEnvelope(:z, :x, :y) e"),
                              {"z": z, "x": x, "y": y}).one()
    assert tile.generalisation == "aggregated" and tile.features == len(points) > 20
    cell, unit = tile_width_m(z) / EXTENT * CLUSTER_GRID_UNITS, tile_width_m(z) / EXTENT
    groups = defaultdict(list)
    for px, py in points:
        groups[(round(px / cell), round(py / cell))].append((px, py))
    expected = sorted((round((sum(p[0] for p in g) / len(g) - x0) / unit),
                       round((y1 - sum(p[1] for p in g) / len(g)) / unit), len(g)) for g in groups.values())
    decoded = mapbox_vector_tile.decode(tile.data, default_options={"y_coord_down": True})
    features = decoded["incidents"]["features"]
    got = sorted((f["geometry"]["coordinates"][0], f["geometry"]["coordinates"][1], f["properties"]["count"])
                 for f in features)
    assert len(got) == len(expected) > 1
    assert sorted(c for *_, c in got) == sorted(c for *_, c in expected) and max(c for *_, c in got) > 1
    assert all(abs(a[0] - b[0]) <= 1 and abs(a[1] - b[1]) <= 1 for a, b in zip(got, expected, strict=True))


def test_a_point_tile_past_the_cap_is_never_served_whole(layer_client, monkeypatch):
    """A full-detail point tile stops at point_cap(max_bytes) features, and any tile of that
    many points is over max_bytes (each point feature takes MIN_POINT_FEATURE_BYTES or more):
    the counts are served, summing every point."""
    import layers.tiles
    from layers.tiles import MIN_POINT_FEATURE_BYTES

    with _scattered_tile() as (conn, (z, x, y), full):
        assert full.generalisation == "none" and full.features > 150
        assert len(full.data) >= MIN_POINT_FEATURE_BYTES * full.features  # the bound holds
        seen = []
        real = layers.tiles.run_tile_statement

        def spy(conn, st):
            data, n = real(conn, st)
            seen.append((st.generalisation, n, len(data)))
            return data, n

        counts = build_tile(conn, _query("incidents"), z, x, y, max_bytes=len(full.data) - 1)
        max_bytes = len(counts.data)  # the counts fit, the full tile does not
        # a bound that puts the cap at half the points (the real one needs a bigger tile)
        monkeypatch.setattr(layers.tiles, "MIN_POINT_FEATURE_BYTES", max_bytes // (full.features // 2))
        monkeypatch.setattr(layers.tiles, "run_tile_statement", spy)
        tile = build_tile(conn, _query("incidents"), z, x, y, max_bytes=max_bytes)
    cap = layers.tiles.point_cap(max_bytes)
    assert cap < full.features
    assert seen[0][:2] == ("none", cap) and seen[0][2] > max_bytes  # stopped at the cap, still over
    assert tile.generalisation == "aggregated" and tile.features == full.features


def test_tile_bounds_and_hexagon_cells_by_zoom():
    from layers.tiles import hex_cell_for_zoom, tile_bbox

    world = tile_bbox(0, 0, 0)
    assert world.minx == -180 and world.maxx == 180
    assert world.maxy == pytest.approx(85.0511, abs=1e-4) and world.miny == pytest.approx(-85.0511, abs=1e-4)
    lon, lat = 106.68, 20.86
    box = tile_bbox(12, *tile_of(lon, lat, 12))
    assert box.minx <= lon <= box.maxx and box.miny <= lat <= box.maxy
    # z12 tiles are ~9.8 km wide: 40 cells of 245 m -> the 250 m rung, but never under the request.
    assert hex_cell_for_zoom(12, 500) == 500
    assert hex_cell_for_zoom(14, 250) == 250
    assert hex_cell_for_zoom(9, 500) == 2_000  # ~78 km tile / 40 = 1.96 km
    assert hex_cell_for_zoom(0, 500) == 64_000
