"""Incident count layers narrow the incidents to the extent of the units asked for (a code
filter or the caller's scope) before grouping them (layers.sql._units_asked). The narrowing must
never change a count: every filtered answer equals the unfiltered one restricted to its units,
with incidents spread over the province and placed on unit boundaries and corners."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from antt.db import get_engine

SPREAD = """
INSERT INTO incident (category_code, occurred_at, geom)
SELECT 'crime/theft', timestamptz '2025-09-01 10:00+07' + n * interval '1 hour',
       ST_SetSRID(ST_MakePoint(106.35 + random() * 0.8, 20.6 + random() * 0.6), 4326)
FROM generate_series(1, 600) n;
INSERT INTO incident (category_code, occurred_at, geom)
SELECT 'crime/fraud/online', timestamptz '2025-11-01 10:00+07', (ST_Dump(ST_GeneratePoints(geom, 40))).geom
FROM admin_unit WHERE level = 'village';
INSERT INTO incident (category_code, occurred_at, geom)  -- vertices of unit boundaries
SELECT 'traffic', timestamptz '2025-10-01 10:00+07', (d).geom
FROM (SELECT ST_DumpPoints(geom) AS d FROM admin_unit
      WHERE level = 'village' OR (level = 'commune' AND code IN (SELECT code FROM admin_unit
                                  WHERE level = 'commune' ORDER BY code LIMIT 6))) s
WHERE ((d).path)[array_length((d).path, 1)] % 7 = 0
  AND ST_Within((d).geom, ST_MakeEnvelope(102, 6, 118, 23.5, 4326))
"""


def counts(client, layer: str, headers: dict[str, str], query: str = "") -> dict[str, int]:
    body = client.get(f"/collections/{layer}/items?limit=1000{query}", headers=headers).json()
    assert body["numberMatched"] == body["numberReturned"], "one page expected"
    return {f["properties"]["code"]: f["properties"]["count"] for f in body["features"]}


@pytest.fixture
def spread(layer_client):
    with get_engine().begin() as conn:
        for statement in SPREAD.split(";\n"):
            conn.execute(text(statement))
        units = conn.execute(text(
            "SELECT u.code, u.level, p.code AS parent FROM admin_unit u "
            "LEFT JOIN admin_unit p ON p.id = u.parent_id WHERE u.level IN ('commune', 'village')")).all()
    return layer_client, {r.code: r for r in units}


@pytest.mark.parametrize("layer", ["incident_counts_commune", "incident_counts_village"])
def test_filtered_counts_equal_the_whole_answer_restricted(spread, make_user, layer):
    client, units = spread
    police = make_user("police")
    whole = counts(client, layer, police)
    assert sum(whole.values()) > (300 if layer.endswith("commune") else 120)  # the spread ones count
    communes = sorted(c for c, u in units.items() if u.level == "commune")
    villages = sorted(c for c, u in units.items() if u.level == "village")
    if layer.endswith("commune"):
        asks = [(f"&code={c}", {c}) for c in communes[:4]]
    else:
        asks = ([(f"&code={v}", {v}) for v in villages]
                + [(f"&parent_code={units[v].parent}", {v}) for v in villages])
    asks.append(("&province_code=31", set(whole)))
    for query, expected_codes in asks:
        got = counts(client, layer, police, query)
        assert got == {c: n for c, n in whole.items() if c in expected_codes}, query
    assert any(whole[c] > 0 for c in (villages if layer.endswith("village") else communes[:4]))


@pytest.mark.parametrize("layer", ["incident_counts_commune", "incident_counts_village"])
def test_scoped_accounts_count_as_the_whole_country_does(spread, make_user, layer):
    client, units = spread
    whole = counts(client, layer, make_user("police"))
    village = sorted(c for c, u in units.items() if u.level == "village")[0]
    commune = units[village].parent
    mine = counts(client, layer, make_user("police", "commune", commune))
    expected = {commune} if layer.endswith("commune") else {village}
    assert mine == {c: n for c, n in whole.items() if c in expected}
    assert mine[next(iter(expected))] > 0
    assert counts(client, layer, make_user("police", "province", "31")) == whole


def test_narrowing_is_in_the_statement():
    """The pre-filter is there (else the equality tests above would pass without it)."""
    from api.deps import Principal
    from api.features import build_query, resolve
    from layers.sql import counted_items_query

    police = Principal("t", "police", "all", None)
    with_code = build_query(resolve("incident_counts_village", police), police, {"province_code": "31"})
    plain = build_query(resolve("incident_counts_village", police), police, {})
    assert "ST_Extent" in counted_items_query(with_code, 10, 0)[0]
    assert "ST_Extent" not in counted_items_query(plain, 10, 0)[0]
