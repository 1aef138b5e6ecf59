"""bbox / datetime / limit parsing: the edge cases OGC API Features names (no database)."""

from datetime import UTC, datetime, timedelta

import pytest

from layers.filters import (
    CRS84,
    VN_TZ,
    BBox,
    FilterError,
    parse_bbox,
    parse_datetime,
    parse_limit,
    parse_offset,
)


def test_bbox_four_and_six_numbers():
    assert parse_bbox("106.1,20.5,107.0,21.1") == BBox(106.1, 20.5, 107.0, 21.1)
    # 3D form: minx, miny, minz, maxx, maxy, maxz; heights are dropped.
    assert parse_bbox("106.1,20.5,-10,107.0,21.1,100") == BBox(106.1, 20.5, 107.0, 21.1)
    assert parse_bbox(None) is None
    assert parse_bbox("1,2,3,4", CRS84) == BBox(1, 2, 3, 4)


@pytest.mark.parametrize("raw, fragment", [
    ("1,2,3", "4 or 6"),
    ("1,2,3,4,5", "4 or 6"),
    ("a,2,3,4", "comma-separated"),
    ("1,2,nan,4", "non-finite"),
    ("107,20,106,21", "minimum longitude"),
    ("106,21,107,20", "minimum latitude"),
    ("106,20,190,21", "outside"),
    ("106,-95,107,21", "outside"),
    ("106,20,50,107,21,10", "height"),
    # the stricter rule of the former analytics parser, now the one parser's: a box has an area
    ("106,20,106,21", "no area"),
    ("106,20,107,20", "no area"),
])
def test_bbox_errors_name_the_field(raw, fragment):
    with pytest.raises(FilterError) as err:
        parse_bbox(raw)
    assert err.value.field == "bbox"
    assert fragment in err.value.en
    assert err.value.vi and err.value.vi != err.value.en


def test_bbox_within_vietnam_for_the_analyses():
    """The analytics endpoints pass VIETNAM_BBOX (their former parser's rule); features do not."""
    from layers.filters import VIETNAM_BBOX

    assert parse_bbox("106,20,107,21", within=VIETNAM_BBOX) == BBox(106, 20, 107, 21)
    assert parse_bbox("100,4,120,25", within=VIETNAM_BBOX) == BBox(100, 4, 120, 25)
    for raw in ("99.9,20,107,21", "106,20,120.1,21", "106,3.9,107,21", "106,20,107,25.1"):
        with pytest.raises(FilterError) as err:
            parse_bbox(raw, within=VIETNAM_BBOX)
        assert err.value.field == "bbox" and "outside Vietnam" in err.value.en
    assert parse_bbox("1,2,3,4") == BBox(1, 2, 3, 4)


def test_bbox_crs_other_than_crs84_is_refused():
    with pytest.raises(FilterError) as err:
        parse_bbox("1,2,3,4", "http://www.opengis.net/def/crs/EPSG/0/3405")
    assert err.value.field == "bbox-crs"


def test_datetime_instant_and_whole_day():
    at = parse_datetime("2025-07-01T08:00:00Z")
    assert at.start == at.end == datetime(2025, 7, 1, 8, tzinfo=UTC)
    assert at.end_inclusive
    day = parse_datetime("2025-07-01")  # a date is the whole local day
    assert day.start == datetime(2025, 7, 1, tzinfo=VN_TZ)
    assert day.end == day.start + timedelta(days=1) and not day.end_inclusive
    naive = parse_datetime("2025-07-01T08:00:00")  # no offset: local Vietnamese time
    assert naive.start.utcoffset() == timedelta(hours=7)


def test_datetime_intervals_with_open_ends():
    both = parse_datetime("2025-01-01/2025-01-31")
    assert both.start == datetime(2025, 1, 1, tzinfo=VN_TZ)
    assert both.end == datetime(2025, 2, 1, tzinfo=VN_TZ) and not both.end_inclusive
    open_start = parse_datetime("../2025-01-31T00:00:00Z")
    assert open_start.start is None and open_start.end_inclusive
    open_end = parse_datetime("2025-01-01/..")
    assert open_end.end is None and open_end.start is not None
    empty_end = parse_datetime("2025-01-01/")
    assert empty_end.end is None


@pytest.mark.parametrize("raw", ["../..", "/", "..", "2025-13-01", "yesterday", "2025-02-01/2025-01-01",
                                 "2025-01-01/2025-02-01/2025-03-01"])
def test_datetime_errors(raw):
    with pytest.raises(FilterError) as err:
        parse_datetime(raw)
    assert err.value.field == "datetime"


def test_limit_over_maximum_is_an_error_not_a_clamp():
    assert parse_limit(None, 10, 10_000) == 10
    assert parse_limit("10000", 10, 10_000) == 10_000
    for bad in ("10001", "0", "-1", "ten"):
        with pytest.raises(FilterError) as err:
            parse_limit(bad, 10, 10_000)
        assert err.value.field == "limit"
    assert parse_offset("5") == 5
    with pytest.raises(FilterError):
        parse_offset("-1")
