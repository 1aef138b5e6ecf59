"""Pages of aggregate layers in the shared result cache (api/features.py items): a page is
computed once per data version, computing it stores the pages after it (the `next` links hit),
and every cached page is the page the layer computes with the cache off."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from antt.db import get_engine
from antt.settings import get_settings

HEX = "/collections/incident_hexagons/items"
MORE = """INSERT INTO incident (category_code, occurred_at, geom)
SELECT 'crime/theft', timestamptz '2025-09-01 10:00+07' + n * interval '1 hour',
       ST_SetSRID(ST_MakePoint(106.5 + (n % 40) * 0.013, 20.7 + (n / 40) * 0.011), 4326)
FROM generate_series(0, 399) n"""


def _pages(client, headers: dict[str, str], url: str) -> list:
    """Every page of `url`, following `next`: (X-Result-Cache, numberMatched, features)."""
    out = []
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        out.append((r.headers.get("x-result-cache"), body["numberMatched"], body["features"]))
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    return out


def _cache_off(monkeypatch: pytest.MonkeyPatch, off: bool) -> None:
    if off:
        monkeypatch.setenv("ANTT_RESULT_CACHE_MB", "0")
    else:
        monkeypatch.delenv("ANTT_RESULT_CACHE_MB", raising=False)
    get_settings.cache_clear()


@pytest.fixture
def many_cells(layer_client):
    with get_engine().begin() as conn:
        conn.execute(text(MORE))
    return layer_client


def test_pages_after_the_first_are_stored_with_it_and_equal_the_computed_ones(many_cells, make_user,
                                                                               monkeypatch):
    viewer = make_user("viewer")
    url = f"{HEX}?limit=50&cell=1000"
    first = _pages(many_cells, viewer, url)
    assert len(first) >= 3  # several pages, so the prefill is exercised
    assert [state for state, _, _ in first] == ["miss"] + ["hit"] * (len(first) - 1)
    again = _pages(many_cells, viewer, url)
    assert [state for state, _, _ in again] == ["hit"] * len(first)
    _cache_off(monkeypatch, True)
    computed = _pages(many_cells, viewer, url)
    assert [state for state, _, _ in computed] == [None] * len(first)
    assert [(m, f) for _, m, f in computed] == [(m, f) for _, m, f in first] == [(m, f) for _, m, f in again]
    ids = [f["id"] for _, _, page in computed for f in page]
    assert len(ids) == len(set(ids)) == computed[0][1]  # every cell once across the pages


def test_a_write_makes_every_page_a_miss_with_the_new_counts(many_cells, make_user):
    police = make_user("police")
    url = f"{HEX}?limit=50&cell=1000"
    before = _pages(many_cells, police, url)
    total = sum(f["properties"]["count"] for _, _, page in before for f in page)
    with get_engine().begin() as conn:
        conn.execute(text(MORE.replace("0, 399", "0, 99")))
    after = _pages(many_cells, police, url)
    assert after[0][0] == "miss"
    assert sum(f["properties"]["count"] for _, _, page in after for f in page) == total + 100


def test_roles_offsets_and_filters_are_their_own_pages(many_cells, make_user):
    police, viewer = make_user("police"), make_user("viewer")
    url = f"{HEX}?limit=50&cell=1000"
    as_police = _pages(many_cells, police, url)
    as_viewer = _pages(many_cells, viewer, url)
    assert as_viewer[0][0] == "miss"  # not the police's page
    assert any(f["properties"]["suppressed"] for _, _, page in as_viewer for f in page)
    assert not any(f["properties"]["suppressed"] for _, _, page in as_police for f in page)
    shifted = many_cells.get(f"{HEX}?limit=50&cell=1000&offset=7", headers=viewer)
    assert shifted.headers["x-result-cache"] == "miss"
    assert shifted.json()["features"] == [f for _, _, page in as_viewer for f in page][7:57]
    recent = many_cells.get(f"{HEX}?limit=50&cell=1000&datetime=2025-09-10/..", headers=viewer)
    assert recent.headers["x-result-cache"] == "miss"


def test_points_and_csv_are_never_stored(many_cells, make_user):
    police = make_user("police")
    for url in ("/collections/incidents/items?limit=5", f"{HEX}?limit=50&cell=1000&f=csv"):
        r = many_cells.get(url, headers=police)
        assert r.status_code == 200 and "x-result-cache" not in r.headers
    with get_engine().connect() as conn:
        groups = conn.execute(text("SELECT DISTINCT grp FROM result_cache")).scalars().all()
    assert groups == []
