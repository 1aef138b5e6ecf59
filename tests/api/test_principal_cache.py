"""The short principal cache (api.deps.PrincipalCache) and the tile endpoint's fast path.

The cache may trust a checked credential for ANTT_AUTH_CACHE_SECONDS; these tests pin what it
must never do: serve a disabled account or a revoked key once that time has passed, outlive a
token, accept a credential it did not check, or hide a change this process made itself.
Changes made elsewhere are announced by NOTIFY (migration 0007) and seen at once; the TTL tests
run with the listener off (`no_listener`), the bound that holds when its connection is down.
"""

from __future__ import annotations

import datetime as dt
import math
import time

import jwt
import mapbox_vector_tile
import pytest
from sqlalchemy import text

from antt.accounts import create_api_key, create_user
from antt.db import get_engine
from antt.settings import get_settings
from api.deps import ALGORITHM, principal_cache

PASSWORD = "mat-khau-thu-nghiem"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(principal_cache, "clock", fake)
    principal_cache.clear()
    yield fake
    principal_cache.clear()


@pytest.fixture
def no_listener(monkeypatch) -> None:
    """As if the notification connection were down: only the TTL bounds the cache."""
    monkeypatch.setattr("api.deps.listen", lambda *args, **kwargs: None)


def _sql(statement: str, **params) -> None:
    with get_engine().begin() as conn:  # as another process would: no in-process notification
        conn.execute(text(statement), params)


def test_a_change_made_elsewhere_is_seen_at_once_through_notify(layer_client, make_user, clock):
    headers = make_user("viewer", username="thong_bao")
    with get_engine().begin() as conn:
        create_user(conn, "khoa_thong_bao", PASSWORD, "viewer")
        key = create_api_key(conn, "khoa_thong_bao")
    assert layer_client.get("/auth/me", headers=headers).status_code == 200
    from antt.listen import _listeners

    [listener] = [v for (eid, ch), v in _listeners.items() if eid == id(get_engine())]
    assert listener.connected.wait(5)  # listening (its first act is to clear the cache)
    time.sleep(0.2)  # the notifications of make_user/create_user above have been delivered
    for h in (headers, {"X-API-Key": key}):
        assert layer_client.get("/auth/me", headers=h).status_code == 200
    assert len(principal_cache._entries) == 2  # both cached
    _sql("UPDATE app_user SET active = false WHERE username = 'thong_bao'")  # as psql would
    _sql("UPDATE api_key SET revoked_at = now()")
    deadline = time.monotonic() + 2.0  # the clock is held: only the notification can do it
    codes = None
    while time.monotonic() < deadline:
        codes = [layer_client.get("/auth/me", headers=h).status_code for h in (headers, {"X-API-Key": key})]
        if codes == [401, 401]:
            break
        time.sleep(0.02)
    assert codes == [401, 401]


def test_disabled_account_is_refused_once_the_ttl_passes(layer_client, make_user, clock, no_listener):
    ttl = get_settings().auth_cache_seconds
    assert 0 < ttl <= 10  # "a few seconds", as documented
    headers = make_user("viewer", username="tam_ngung")
    tile = "/collections/communes/tiles/WebMercatorQuad/3/6/3"
    assert layer_client.get("/auth/me", headers=headers).status_code == 200
    assert layer_client.get(tile, headers=headers).status_code == 200
    _sql("UPDATE app_user SET active = false WHERE username = 'tam_ngung'")
    clock.now += ttl - 0.5  # within the window the cached principal may still be served
    assert layer_client.get("/auth/me", headers=headers).status_code == 200
    clock.now += 1.0  # past it: the account is loaded again and refused, on every endpoint
    for url in ("/auth/me", tile, "/collections/communes/items?limit=1"):
        r = layer_client.get(url, headers=headers)
        assert r.status_code == 401, (url, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")


def test_ttl_zero_turns_the_cache_off(layer_client, make_user, clock, monkeypatch):
    monkeypatch.setenv("ANTT_AUTH_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    headers = make_user("viewer", username="khong_dem")
    assert layer_client.get("/auth/me", headers=headers).status_code == 200
    _sql("UPDATE app_user SET active = false WHERE username = 'khong_dem'")
    assert layer_client.get("/auth/me", headers=headers).status_code == 401


def test_revoked_api_key_is_refused_once_the_ttl_passes(layer_client, clock, no_listener):
    with get_engine().begin() as conn:
        create_user(conn, "khoa_api", PASSWORD, "viewer")
        key = create_api_key(conn, "khoa_api")
    headers = {"X-API-Key": key}
    tile = "/collections/communes/tiles/WebMercatorQuad/3/6/3"
    assert layer_client.get(tile, headers=headers).status_code == 200
    # a wrong secret with the right prefix is never taken from the cache
    wrong = key[:-3] + ("aaa" if not key.endswith("aaa") else "bbb")
    assert layer_client.get(tile, headers={"X-API-Key": wrong}).status_code == 401
    _sql("UPDATE api_key SET revoked_at = now()")
    assert layer_client.get(tile, headers=headers).status_code == 200  # cached, within the TTL
    clock.now += get_settings().auth_cache_seconds + 0.1
    assert layer_client.get(tile, headers=headers).status_code == 401


def test_in_process_account_changes_are_seen_at_once(layer_client, make_user, clock, no_listener):
    police = make_user("police", username="doi_vai_tro")
    points = "/collections/incidents/tiles/WebMercatorQuad/3/6/3"
    assert layer_client.get(points, headers=police).status_code == 200
    with get_engine().begin() as conn:  # same token, the account re-roled through this process
        create_user(conn, "doi_vai_tro", PASSWORD, "committee", replace=True)
    r = layer_client.get(points, headers=police)  # no clock advance: the cache was cleared
    assert r.status_code == 403 and "incident_hexagons" in r.text
    hexes = layer_client.get("/collections/incident_hexagons/tiles/WebMercatorQuad/3/6/3", headers=police)
    assert hexes.status_code == 200
    for cell in mapbox_vector_tile.decode(hexes.content)["incident_hexagons"]["features"]:
        assert cell["geometry"]["type"] == "Polygon"  # cells, never points
        props = cell["properties"]
        assert props["suppressed"] or props["count"] >= 3


def test_a_cached_entry_never_outlives_its_token(layer_client, make_user, clock, no_listener):
    make_user("viewer", username="het_han")
    claims = {"sub": "het_han", "iat": dt.datetime.now(dt.UTC),
              "exp": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)}
    token = jwt.encode(claims, get_settings().signing_key(), algorithm=ALGORITHM)
    assert layer_client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    [(expires, principal)] = principal_cache._entries.values()
    assert principal.username == "het_han"
    assert expires - clock.now <= 2.0 < get_settings().auth_cache_seconds
    # a token signed with another key is refused even though this user's entry is cached
    forged = jwt.encode(claims, "another-signing-key-of-at-least-32-bytes", algorithm=ALGORITHM)
    assert layer_client.get("/auth/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_a_new_engine_starts_with_an_empty_cache(make_user, layer_client, clock, no_listener):
    headers = make_user("viewer", username="mot_csdl")
    assert layer_client.get("/auth/me", headers=headers).status_code == 200
    assert principal_cache.get(get_engine(), next(iter(principal_cache._entries))) is not None
    assert principal_cache.get(object(), next(iter(principal_cache._entries))) is None


def test_a_lookup_begun_before_a_clear_is_not_stored():
    from api.deps import Principal, PrincipalCache

    cache, owner = PrincipalCache(maxsize=2, clock=FakeClock()), object()
    key = PrincipalCache.key("jwt", "token")
    started = cache.generation  # the account row was read here ...
    cache.clear()  # ... then changed by this process (before or at its commit)
    cache.put(owner, key, Principal("u", "police"), 5.0, started)
    assert cache.get(owner, key) is None
    cache.put(owner, key, Principal("u", "committee"), 5.0, cache.generation)
    assert cache.get(owner, key).role == "committee"
    for i in range(3):  # bounded: a full cache drops what expired, else everything
        cache.put(owner, PrincipalCache.key("jwt", str(i)), Principal("u", "viewer"), 5.0, cache.generation)
    assert len(cache._entries) <= 2


# --- the tile endpoint's fast path -------------------------------------------------------------

def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def test_tiles_are_served_by_the_fast_route_and_the_documented_one_stays(layer_client, make_user,
                                                                         monkeypatch):
    import api.tiles

    paths = [p for p in layer_client.app.openapi()["paths"] if "/tiles/" in p]
    assert paths == ["/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{x}/{y}"]  # documented once
    fast_calls = []
    original = api.tiles.run_in_threadpool  # only the fast route calls it through this module

    async def counting(fn, *args):
        fast_calls.append(args[1:])
        return await original(fn, *args)

    monkeypatch.setattr(api.tiles, "run_in_threadpool", counting)
    h = make_user("viewer")
    base = "/collections/communes/tiles/WebMercatorQuad"
    # what the fast route's int convertors do not take falls through to the FastAPI route
    bad = layer_client.get(f"{base}/abc/0/0", headers=h)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert layer_client.get(f"{base}/-1/0/0", headers=h).status_code == 404
    assert layer_client.get(f"{base}/99/0/0", headers=h).status_code == 404
    assert layer_client.get(f"{base}/3/6/3").status_code == 401
    head = layer_client.head(f"{base}/3/6/3", headers=h)  # GET only, as before
    assert head.status_code == 405 and head.headers["allow"] == "GET"
    assert head.headers["content-type"].startswith("application/problem+json")
    ok = layer_client.get(f"{base}/3/6/3", headers=h)
    assert ok.status_code == 200 and mapbox_vector_tile.decode(ok.content)["communes"]["features"]
    bad_filter = layer_client.get(f"{base}/3/6/3?nonsense=1", headers=h)
    assert bad_filter.status_code == 400 and "nonsense" in bad_filter.text
    # the fast route served the well-formed ones (99/0/0 included: 404 from the same code)
    assert [c[2:] for c in fast_calls] == [(99, 0, 0), (3, 6, 3), (3, 6, 3), (3, 6, 3)]


def test_tile_connections_go_back_to_the_pool_in_transaction_mode(layer_client, make_user):
    h = make_user("police")
    for url in ("/collections/incidents/tiles/WebMercatorQuad/3/6/3",  # with an audit insert
                "/collections/incidents/tiles/WebMercatorQuad/3/6/3?nonsense=1",  # 400 mid-request
                "/collections/incidents/tiles/WebMercatorQuad/3/0/0"):  # 204
        layer_client.get(url, headers=h)
        pool = get_engine().pool
        conns = [get_engine().connect() for _ in range(pool.checkedin())]
        try:
            assert conns and all(not c.connection.driver_connection.autocommit for c in conns)
        finally:
            for c in conns:
                c.close()
    with get_engine().connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'read_points'")).scalar_one()
    assert n == 1  # the tile with points, once
