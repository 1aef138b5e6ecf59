"""The in-process tile memo (api/tiles.py, layers/versionwatch.py): a repeated tile without the
database, and never a tile older than its rules allow.

Writes "from elsewhere" go through an engine of their own (as another worker or psql would):
only the `antt_data` notification (migration 0015) can tell this process about them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from antt.db import get_engine, make_engine
from antt.settings import get_settings
from api.deps import principal_cache
from api.readroute import MIN_LSN_HEADER, format_lsn
from layers import versionwatch

HEX = "/collections/incident_hexagons/tiles/WebMercatorQuad/3/6/3"
COMMUNES = "/collections/communes/tiles/WebMercatorQuad/3/6/3"
POINTS = "/collections/incidents/tiles/WebMercatorQuad/3/6/3"
INSERT_INCIDENT = ("INSERT INTO incident (category_code, occurred_at, geom) SELECT 'crime/theft', "
                   "'2025-09-01T10:00+07', ST_PointOnSurface(geom) FROM admin_unit "
                   "WHERE level = 'commune' ORDER BY code LIMIT 1")


@pytest.fixture
def client(layer_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The layer client with the memo on (the API tests' default is off: see conftest)."""
    monkeypatch.setenv("ANTT_TILE_MEMO_MB", "64")
    get_settings.cache_clear()
    return layer_client


@pytest.fixture
def elsewhere() -> Iterator[Engine]:
    """An engine of its own on the app's database: its writes are not this app's."""
    eng = make_engine(get_engine().url.render_as_string(hide_password=False))
    yield eng
    eng.dispose()


def _watch(timeout: float = 5.0) -> versionwatch.VersionWatch:
    """The process's watch once it is listening, has beaten and has a caught-up position."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        w = versionwatch.running(get_engine())
        if w is not None and w.healthy() and w.caught_up is not None:
            return w
        time.sleep(0.02)
    raise AssertionError("the version watch did not become healthy")


def _memo_hit(client: TestClient, url: str, headers: dict[str, str]):
    """Ask until the answer comes from the memo (the first ones fill it); the first answer too."""
    first = client.get(url, headers=headers)
    assert first.status_code == 200, first.text
    _watch()
    for _ in range(3):
        r = client.get(url, headers=headers)
        if r.headers.get("x-tile-cache") == "memo":
            return first, r
    raise AssertionError(f"no memo hit: {r.headers.get('x-tile-cache')}")


def _hex_counts(content: bytes) -> int:
    return sum(f["properties"].get("count") or 0
               for f in mapbox_vector_tile.decode(content)["incident_hexagons"]["features"])


def test_a_repeated_tile_comes_from_the_memo_without_a_connection(client, make_user, monkeypatch):
    viewer = make_user("viewer")
    first, hit = _memo_hit(client, COMMUNES, viewer)
    assert hit.status_code == 200 and hit.content == first.content
    for h in ("etag", "cache-control", "vary", "x-tile-features", "x-tile-generalisation",
              "content-type"):
        assert hit.headers.get(h) == first.headers.get(h), h
    assert first.headers["cache-control"] == "public, no-cache"
    assert "Authorization" not in hit.headers.get("vary", "")
    # neither the threadpool nor the pool: the memo answers on the event loop
    import api.tiles

    def no_threadpool(*_args):
        raise AssertionError("the memo hit went to the threadpool")

    checkouts = []
    from sqlalchemy import event

    def count(*_args) -> None:
        checkouts.append(1)

    event.listen(get_engine(), "checkout", count)
    try:
        with monkeypatch.context() as m:
            m.setattr(api.tiles, "run_in_threadpool", no_threadpool)
            again = client.get(COMMUNES, headers=viewer)
            same = client.get(COMMUNES, headers=viewer | {"If-None-Match": first.headers["etag"]})
    finally:
        event.remove(get_engine(), "checkout", count)
    assert again.headers["x-tile-cache"] == "memo" and again.content == first.content
    assert again.headers["x-antt-database"] == "memo"
    assert same.status_code == 304 and same.headers["etag"] == first.headers["etag"]
    assert not checkouts
    # a private tile (scoped account) keeps its own headers from the memo too
    scoped = make_user("committee", "province", "31")
    first, hit = _memo_hit(client, COMMUNES, scoped)
    assert hit.headers["cache-control"] == "private, no-cache"
    assert "Authorization, Cookie" in hit.headers["vary"] and hit.content == first.content
    assert hit.headers["vary"] == first.headers["vary"]


def test_a_write_elsewhere_ends_the_memo_hit_within_moments(client, make_user, elsewhere):
    viewer = make_user("viewer")
    first, hit = _memo_hit(client, HEX, viewer)
    counts = _hex_counts(first.content)
    with elsewhere.begin() as conn:
        for _ in range(3):  # three in one cell: a viewer sees counts of 3 or more
            conn.execute(text(INSERT_INCIDENT))
    deadline = time.monotonic() + 2.0
    while True:
        r = client.get(HEX, headers=viewer)
        if r.headers["x-tile-cache"] != "memo":
            break
        assert r.content == first.content  # until the notification, the previous tile
        assert time.monotonic() < deadline, "still served from the memo 2 s after the write"
        time.sleep(0.01)
    assert r.headers["etag"] != first.headers["etag"] and _hex_counts(r.content) == counts + 3
    again = client.get(HEX, headers=viewer)
    assert again.headers["x-tile-cache"] == "memo" and again.content == r.content
    # a write to a table the tile does not read leaves its entry alone
    with elsewhere.begin() as conn:
        conn.execute(text("UPDATE security_model SET name = name || ' mới'"))
    time.sleep(0.3)
    assert client.get(HEX, headers=viewer).headers["x-tile-cache"] == "memo"


def test_a_caller_ahead_of_the_notifications_is_not_served_from_the_memo(client, make_user):
    viewer = make_user("viewer")
    first, _ = _memo_hit(client, HEX, viewer)
    w = _watch()
    ahead = client.get(HEX, headers=viewer | {MIN_LSN_HEADER: format_lsn(w.caught_up + 1_000_000)})
    assert ahead.status_code == 200 and ahead.headers["x-tile-cache"] != "memo"
    assert ahead.content == first.content
    behind = client.get(HEX, headers=viewer | {MIN_LSN_HEADER: format_lsn(w.caught_up)})
    assert behind.headers["x-tile-cache"] == "memo"


def test_a_writer_reads_its_own_write(client, make_user, elsewhere):
    police = make_user("police")
    first, _ = _memo_hit(client, HEX, police)
    with elsewhere.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incident LIMIT 1")).one()
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
               "properties": {"category_code": "crime/theft", "occurred_at": "2025-09-02T10:00:00"}}
    for i in range(3):
        r = client.post("/collections/incidents/items", json=feature, headers=police)
        assert r.status_code == 201 and r.headers["x-antt-lsn"], r.text  # the position, memo on
        after = client.get(HEX, headers=police)  # the cookie goes back on its own
        assert _hex_counts(after.content) == _hex_counts(first.content) + i + 1


def test_listener_down_means_no_memo_and_it_recovers(client, make_user, elsewhere, monkeypatch):
    viewer = make_user("viewer")
    first, _ = _memo_hit(client, COMMUNES, viewer)
    w = _watch()
    with monkeypatch.context() as m:
        m.setattr(w, "healthy", lambda: False)
        for _ in range(3):
            r = client.get(COMMUNES, headers=viewer)
            assert r.headers["x-tile-cache"] == "hit" and r.content == first.content
    assert client.get(COMMUNES, headers=viewer).headers["x-tile-cache"] == "memo"
    # its connection killed: the memo is dropped at reconnection, and used again after
    old_pid, gap = w.listener.backend_pid, w.gap
    with elsewhere.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": old_pid}).scalar()
    deadline = time.monotonic() + 5
    while w.gap == gap or not w.healthy():
        assert time.monotonic() < deadline, "the listener did not reconnect"
        time.sleep(0.02)
    assert w.listener.backend_pid != old_pid
    r = client.get(COMMUNES, headers=viewer)
    assert r.headers["x-tile-cache"] == "hit" and r.content == first.content
    assert client.get(COMMUNES, headers=viewer).headers["x-tile-cache"] == "memo"


def test_incident_points_never_come_from_the_memo_and_are_audited(client, make_user):
    police = make_user("police")
    client.get(HEX, headers=police)  # starts the watch
    _watch()
    states = []
    for _ in range(4):
        r = client.get(POINTS, headers=police)
        assert r.status_code == 200
        states.append(r.headers["x-tile-cache"])
    assert states == ["miss", "hit", "hit", "hit"]
    with get_engine().connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'read_points'")).scalar()
    assert n == 4


def test_no_memo_before_authentication(client, make_user):
    viewer = make_user("viewer")
    first, _ = _memo_hit(client, COMMUNES, viewer)
    assert client.get(COMMUNES).status_code == 401
    assert client.get(COMMUNES, headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert client.get(COMMUNES, headers={"X-API-Key": "nonsense"}).status_code == 401
    principal_cache.clear()  # as after its time to live: the account is loaded again first
    r = client.get(COMMUNES, headers=viewer)
    assert r.headers["x-tile-cache"] == "hit" and r.content == first.content
    assert client.get(COMMUNES, headers=viewer).headers["x-tile-cache"] == "memo"
    with get_engine().begin() as conn:  # a disabled account: refused, memo or not
        conn.execute(text("UPDATE app_user SET active = false WHERE role = 'viewer'"))
    principal_cache.clear()
    assert client.get(COMMUNES, headers=viewer).status_code == 401


def test_memo_off(client, make_user, monkeypatch):
    monkeypatch.setenv("ANTT_TILE_MEMO_MB", "0")
    get_settings.cache_clear()
    viewer = make_user("viewer")
    states = [client.get(COMMUNES, headers=viewer).headers["x-tile-cache"] for _ in range(4)]
    assert states == ["miss", "hit", "hit", "hit"]


def test_memo_is_bounded_by_bytes():
    memo = versionwatch.Memo(1000)
    token = (1, (0,))
    for i in range(5):
        memo.put(f"k{i}", token, i, 300)
    assert len(memo) == 3 and memo.bytes == 900
    assert memo.get("k0", token) is None and memo.get("k4", token) == 4
    assert memo.get("k4", (2, (0,))) is None and "k4" not in memo._entries  # stale: gone
    memo.put("big", token, "x", 1001)
    assert memo.get("big", token) is None
