"""Aggregates for non-police roles: small counts suppressed, never points."""

from __future__ import annotations

from datetime import date

import pytest

from geo.aggregates import commune_aggregate, hex_aggregate, suppress, village_aggregate
from geo.filters import IncidentFilter

PERIOD = IncidentFilter(date(2025, 7, 1), date(2026, 6, 30))


def test_suppress():
    assert suppress([0, 1, 2, 3, 10]) == ([0, None, None, 3, 10], [False, True, True, False, False])
    assert suppress([4], min_count=5) == ([None], [True])


def test_village_and_commune_aggregates(site_engine, site):
    df = village_aggregate(site_engine, PERIOD, commune_code=site.commune_code, on=date(2026, 6, 30))
    names = {v: k for k, v in site.villages.items()}
    got = {names[i]: (c, s) for i, c, s in zip(df["id"], df["count"], df["suppressed"], strict=True)}
    assert got == {"V1": (0, False), "V2": (0, False), "V3": (3, False), "V4": (None, True)}
    assert not {"x", "y", "geometry"} & set(df.columns)
    com = commune_aggregate(site_engine, PERIOD, commune_code=site.commune_code).iloc[0]
    assert (com["count"], com["suppressed"]) == (4, False)
    # last year: E4 (15 Jan 2025, before the merger; no commune of its date is loaded) counts
    # in today's commune holding it: 1, suppressed, so the change is not given
    assert (com["count_last_year"], com["suppressed_last_year"], com["change"]) == (None, True, None)


def test_hex_aggregate(site_engine, site):
    with pytest.raises(ValueError):
        hex_aggregate(site_engine, 100, PERIOD, commune_code=site.commune_code)
    df = hex_aggregate(site_engine, 250, PERIOD, commune_code=site.commune_code)
    assert set(df.columns) == {"i", "j", "geometry", "count", "suppressed"}
    # the 4 incidents sit in 2 village centres: 3 in one hexagon, 1 in another (suppressed)
    shown = df[df["count"].map(lambda c: c is not None and c > 0)]
    assert shown["count"].tolist() == [3] and df["suppressed"].sum() == 1
