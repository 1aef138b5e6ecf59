"""Data versions (migration 0007), HTTP caching by the book, and the shared tile cache."""

from __future__ import annotations

import re
import threading

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from antt.db import get_engine
from api.deps import Principal
from layers import tilecache
from layers.catalogue import CATALOGUE
from layers.sql import LayerQuery
from layers.tiles import tile_statements
from layers.versions import TRACKED, data_version, tables_read, tracked_tables, version_tables

INSERT_INCIDENT = ("INSERT INTO incident (category_code, occurred_at, geom) SELECT 'crime/theft', "
                   "'2025-09-01T10:00+07', ST_PointOnSurface(geom) FROM admin_unit "
                   "WHERE level = 'commune' ORDER BY code LIMIT 1")


def test_tracked_tables_are_the_ones_with_triggers(engine):
    with engine.connect() as conn:
        triggers = set(conn.execute(text(
            "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname LIKE '%\\_data\\_version'"
        )).scalars())
        rows = set(conn.execute(text("SELECT tbl FROM data_version")).scalars())
    assert triggers == rows  # later migrations may track more (antt_track_changes)
    assert set(TRACKED) <= rows


@pytest.mark.parametrize("layer_id", sorted(CATALOGUE))
@pytest.mark.parametrize("caller", [Principal("p", "police"), Principal("c", "committee", "province", "31")])
def test_the_tables_a_tile_reads_are_found(engine, layer_id, caller):
    """What `tables_read` finds in every tile statement is a real table (not a CTE, a function
    or a word in a comment), and includes the layer's own table; each layer is then either
    versioned over all of them or not versioned at all (an ETag of its bytes, never cached)."""
    layer = CATALOGUE[layer_id]
    if not layer.visible_to(caller.role):
        caller = Principal("p", "police", caller.scope_level, caller.scope_code)
    with engine.connect() as conn:
        real = set(conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
        for st in tile_statements(LayerQuery(layer, caller), 12, 3253, 1800):
            reads = tables_read(st.sql)
            assert reads and reads <= real, (layer_id, reads - real)
            main = re.search(r"\bFROM\s+([a-z_]+)\s+[a-z]\b", layer.source or "")
            if main:
                assert main.group(1) in reads
            versioned = version_tables(conn, st.sql)
            assert versioned is None or set(versioned) == reads | {"admin_unit"}
            assert (versioned is None) == bool(reads - tracked_tables(conn))


def test_a_layer_over_an_untracked_table_is_never_cached(layer_client, make_user):
    """As for a table added by a later migration without antt_track_changes."""
    import layers.versions

    with get_engine().begin() as conn:
        conn.execute(text("DROP TRIGGER security_model_data_version ON security_model"))
        conn.execute(text("DELETE FROM data_version WHERE tbl = 'security_model'"))
    layers.versions._tracked.clear()
    viewer = make_user("viewer")
    url = "/collections/models/tiles/WebMercatorQuad/3/6/3"
    first = layer_client.get(url, headers=viewer)
    assert first.status_code == 200 and "x-tile-cache" not in first.headers
    assert first.headers["cache-control"] == "private, no-cache"
    assert layer_client.get(url, headers=viewer | {"If-None-Match": first.headers["etag"]}).status_code == 304
    with get_engine().begin() as conn:  # still exact: the ETag is the bytes'
        conn.execute(text("UPDATE security_model SET name = name || ' mới'"))
    changed = layer_client.get(url, headers=viewer | {"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]
    page = layer_client.get("/collections/models/items?limit=2", headers=viewer)
    assert page.headers["cache-control"] == "private, no-cache"
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tile_cache")).scalar() == 0
    layers.versions._tracked.clear()


def test_version_grows_with_each_committed_write_only(engine):
    with engine.connect() as conn:
        v0 = data_version(conn, ["incident"])
        other0 = data_version(conn, ["security_model"])
    with engine.begin() as conn:
        conn.execute(text(INSERT_INCIDENT))
        conn.execute(text("UPDATE incident SET description = 'x'"))
    with engine.connect() as conn:
        assert data_version(conn, ["incident"]) == v0 + 2  # two statements
    with engine.connect() as conn:  # a rolled-back write changes nothing
        conn.execute(text(INSERT_INCIDENT))
        conn.rollback()
        assert data_version(conn, ["incident"]) == v0 + 2
        assert data_version(conn, ["security_model"]) == other0
        assert data_version(conn, ["incident", "security_model"]) == v0 + 2 + other0


def test_folding_keeps_the_version_and_never_blocks_another_writer(engine):
    """A long writer folds (and holds the counter row); another writer of the same table is
    not blocked, its fold skips; after both commit the version counts both."""
    with engine.connect() as conn:
        v0 = data_version(conn, ["incident"])
    long = engine.connect()
    try:
        long.execute(text(INSERT_INCIDENT))
        long.execute(text("SELECT antt_fold_changes('incident')"))  # holds incident's counter row
        with engine.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '1s'"))
            other.execute(text(INSERT_INCIDENT))  # would fail on lock_timeout if it waited
            other.execute(text("SELECT antt_fold_changes('incident')"))  # skips, never waits
        with engine.connect() as reader:  # the long one is not committed: not counted
            assert data_version(reader, ["incident"]) == v0 + 1
        long.commit()
    finally:
        long.close()
    with engine.begin() as conn:
        assert data_version(conn, ["incident"]) == v0 + 2
        conn.execute(text("SELECT antt_fold_changes('incident')"))
    with engine.connect() as conn:
        assert data_version(conn, ["incident"]) == v0 + 2
        assert conn.execute(text("SELECT count(*) FROM data_change WHERE tbl = 'incident'")).scalar() == 0


def test_concurrent_writers_each_count(engine):
    with engine.connect() as conn:
        v0 = data_version(conn, ["incident"])
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(10):
                with engine.begin() as conn:
                    conn.execute(text(INSERT_INCIDENT))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with engine.connect() as conn:
        assert data_version(conn, ["incident"]) == v0 + 40


# --- HTTP -----------------------------------------------------------------------------------

HEX = "/collections/incident_hexagons/tiles/WebMercatorQuad/3/6/3"
COMMUNES = "/collections/communes/tiles/WebMercatorQuad/3/6/3"


def test_tile_etag_304_server_cache_and_invalidation(layer_client, make_user):
    viewer = make_user("viewer")
    first = layer_client.get(HEX, headers=viewer)
    assert first.status_code == 200 and first.headers["x-tile-cache"] == "miss"
    assert first.headers["cache-control"] == "public, no-cache"
    assert "Authorization" not in first.headers.get("vary", "")
    again = layer_client.get(HEX, headers=viewer)
    assert again.headers["x-tile-cache"] == "hit" and again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]
    same = layer_client.get(HEX, headers=viewer | {"If-None-Match": first.headers["etag"]})
    assert same.status_code == 304 and same.content == b""
    # another viewer scoped to the whole country: the same tile, from the same entry
    other = make_user("viewer")
    assert layer_client.get(HEX, headers=other).headers["x-tile-cache"] == "hit"
    with get_engine().connect() as conn:
        (entries,) = conn.execute(text("SELECT count(*) FROM tile_cache")).one()
    assert entries == 1
    counts = sum(f["properties"].get("count") or 0
                 for f in mapbox_vector_tile.decode(first.content)["incident_hexagons"]["features"])
    # a write to the incident table: new version, new ETag, rebuilt; the old entry goes
    with get_engine().begin() as conn:
        for _ in range(3):  # three in one cell: visible to a viewer (counts under 3 are hidden)
            conn.execute(text(INSERT_INCIDENT))
    changed = layer_client.get(HEX, headers=viewer | {"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.headers["x-tile-cache"] == "miss"
    assert changed.headers["etag"] != first.headers["etag"]
    new_counts = sum(f["properties"].get("count") or 0
                     for f in mapbox_vector_tile.decode(changed.content)["incident_hexagons"]["features"])
    assert new_counts == counts + 3
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tile_cache")).scalar() == 1
    # the communes tile reads admin_unit only: an incident does not change it
    c1 = layer_client.get(COMMUNES, headers=viewer)
    with get_engine().begin() as conn:
        conn.execute(text(INSERT_INCIDENT))
    c2 = layer_client.get(COMMUNES, headers=viewer)
    assert c2.headers["etag"] == c1.headers["etag"] and c2.headers["x-tile-cache"] == "hit"


def test_public_and_private(layer_client, make_user):
    viewer, police = make_user("viewer"), make_user("police")
    scoped = make_user("committee", "province", "31")
    cases = [
        (viewer, COMMUNES, "public, no-cache"),
        (viewer, HEX, "public, no-cache"),
        (police, COMMUNES, "public, no-cache"),
        (police, HEX, "private, no-cache"),  # unsuppressed counts: police only
        (police, "/collections/incidents/tiles/WebMercatorQuad/3/6/3", "private, no-cache"),
        (scoped, COMMUNES, "private, no-cache"),  # depends on the account's scope
        (viewer, "/collections/communes/items?limit=2", "public, no-cache"),
        (scoped, "/collections/communes/items?limit=2", "private, no-cache"),
        (police, "/collections/incidents/items?limit=2", "private, no-cache"),
    ]
    for headers, url, expected in cases:
        r = layer_client.get(url, headers=headers)
        assert r.status_code == 200, (url, r.status_code)
        assert r.headers["cache-control"] == expected, url
        varies = "Authorization" in r.headers.get("vary", "")
        assert varies == expected.startswith("private"), url
    # the police and the viewer get different hexagon tiles, hence different ETags
    assert (layer_client.get(HEX, headers=viewer).headers["etag"]
            != layer_client.get(HEX, headers=police).headers["etag"])


def test_points_are_audited_even_from_the_cache_and_on_304(layer_client, make_user):
    police = make_user("police")
    url = "/collections/incidents/tiles/WebMercatorQuad/3/6/3"
    first = layer_client.get(url, headers=police)
    second = layer_client.get(url, headers=police | {"If-None-Match": first.headers["etag"]})
    assert first.headers["x-tile-cache"] == "miss" and second.headers["x-tile-cache"] == "hit"
    assert second.status_code == 304
    with get_engine().connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'read_points'")).scalar()
    assert n == 2


def test_items_etag_follows_the_data_version(layer_client, make_user):
    viewer = make_user("viewer")
    url = "/collections/incident_counts_commune/items?limit=5"
    page = layer_client.get(url, headers=viewer)
    etag = page.headers["etag"]
    assert layer_client.get(url, headers=viewer | {"If-None-Match": etag}).status_code == 304
    with get_engine().begin() as conn:
        conn.execute(text(INSERT_INCIDENT))
    assert layer_client.get(url, headers=viewer | {"If-None-Match": etag}).status_code == 200


def test_cache_is_bounded(engine):
    from layers.tiles import Tile

    blob = Tile(b"x" * 10_000, 1, "none")
    with engine.connect() as conn:
        conn.connection.driver_connection.autocommit = True
        for i in range(20):
            tilecache.put(conn, f"00000000-0000-0000-0000-{i:012d}", f"g{i}", 1, blob, max_bytes=10**9)
        assert conn.execute(text("SELECT count(*) FROM tile_cache")).scalar() == 20
        tilecache.evict(conn, 55_000)
        kept = conn.execute(text("SELECT sum(size_bytes), count(*) FROM tile_cache")).one()
        assert kept == (50_000, 5)
        # the newest stay
        assert tilecache.get(conn, "00000000-0000-0000-0000-000000000019") is not None
        assert tilecache.get(conn, "00000000-0000-0000-0000-000000000000") is None
        conn.connection.driver_connection.autocommit = False


def test_cache_off(layer_client, make_user, monkeypatch):
    from antt.settings import get_settings

    monkeypatch.setenv("ANTT_TILE_CACHE_MB", "0")
    get_settings.cache_clear()
    viewer = make_user("viewer")
    assert layer_client.get(HEX, headers=viewer).headers["x-tile-cache"] == "miss"
    assert layer_client.get(HEX, headers=viewer).headers["x-tile-cache"] == "miss"
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tile_cache")).scalar() == 0
