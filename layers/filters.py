"""Parsing the OGC API Features query parameters: bbox, datetime, limit/offset.

Each parser raises `FilterError` naming the parameter and saying, in Vietnamese and English,
what is wrong, so the API can answer 400 problem+json without guessing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from layers.access import LayerError

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CRS84H = "http://www.opengis.net/def/crs/OGC/0/CRS84h"


class FilterError(LayerError):
    status = 400


@dataclass(frozen=True)
class BBox:
    minx: float
    miny: float
    maxx: float
    maxy: float


@dataclass(frozen=True)
class TimeRange:
    """A half-open instant range [start, end); None = open. Instants give start == end."""

    start: datetime | None
    end: datetime | None
    end_inclusive: bool = False


# Where the analyses may look (the analytics endpoints pass it as ``within``): Vietnam with its
# seas and islands, in CRS84.
VIETNAM_BBOX = BBox(100.0, 4.0, 120.0, 25.0)


def parse_bbox(raw: str | None, crs: str | None = None, *, within: BBox | None = None) -> BBox | None:
    """'minx,miny,maxx,maxy' or the 6-number 3D form (heights are ignored), in CRS84.

    The one parser of ``bbox`` (features, tiles' callers, analytics). A box must have an area
    (min < max on both axes). ``within``: the box must lie inside it (the analytics endpoints
    pass ``VIETNAM_BBOX``)."""
    if raw is None:
        return None
    if crs not in (None, "", CRS84, CRS84H):
        raise FilterError(f"bbox-crs '{crs}' không được hỗ trợ; chỉ dùng {CRS84}",
                          f"bbox-crs '{crs}' is not supported; only {CRS84}", "bbox-crs")
    parts = raw.split(",")
    if len(parts) not in (4, 6):
        raise FilterError(f"bbox cần 4 hoặc 6 số, nhận được {len(parts)}",
                          f"bbox needs 4 or 6 numbers, got {len(parts)}", "bbox")
    try:
        nums = [float(p) for p in parts]
    except ValueError as exc:
        raise FilterError("bbox phải là các số cách nhau bởi dấu phẩy",
                          "bbox must be comma-separated numbers", "bbox") from exc
    if not all(math.isfinite(n) for n in nums):
        raise FilterError("bbox có giá trị không hữu hạn", "bbox has a non-finite value", "bbox")
    minx, miny, maxx, maxy = (nums[0], nums[1], nums[3], nums[4]) if len(nums) == 6 else nums
    if len(nums) == 6 and nums[2] > nums[5]:
        raise FilterError("bbox: độ cao nhỏ nhất lớn hơn độ cao lớn nhất",
                          "bbox: minimum height is above maximum height", "bbox")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise FilterError("bbox nằm ngoài phạm vi kinh độ [-180, 180] / vĩ độ [-90, 90]",
                          "bbox is outside longitude [-180, 180] / latitude [-90, 90]", "bbox")
    if miny > maxy:
        raise FilterError("bbox: vĩ độ nhỏ nhất lớn hơn vĩ độ lớn nhất",
                          "bbox: minimum latitude is above maximum latitude", "bbox")
    if minx > maxx:  # OGC allows this across the antimeridian; Vietnam never needs it
        raise FilterError("bbox: kinh độ nhỏ nhất lớn hơn kinh độ lớn nhất (vượt kinh tuyến 180 "
                          "không được hỗ trợ)",
                          "bbox: minimum longitude is above maximum longitude (crossing the "
                          "antimeridian is not supported)", "bbox")
    if minx == maxx or miny == maxy:
        raise FilterError("bbox không có diện tích (giá trị nhỏ nhất bằng lớn nhất)",
                          "bbox has no area (a minimum equals its maximum)", "bbox")
    if within is not None and not (within.minx <= minx and maxx <= within.maxx
                                   and within.miny <= miny and maxy <= within.maxy):
        area = f"{within.minx:g},{within.miny:g},{within.maxx:g},{within.maxy:g}"
        raise FilterError(f"bbox nằm ngoài Việt Nam (phải trong {area})",
                          f"bbox is outside Vietnam (it must lie within {area})", "bbox")
    return BBox(minx, miny, maxx, maxy)


def _instant(text: str, field: str, *, is_end: bool) -> tuple[datetime, bool]:
    """RFC 3339 date-time, or a full date (a whole local day). Returns (instant, inclusive).

    A time without an offset is local Vietnamese time. A date as an interval end means the
    end of that day, so 'datetime=2025-01-01/2025-01-31' includes all of 31 January.
    """
    text = text.strip()
    try:
        if "T" not in text.upper() and len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(0), tzinfo=VN_TZ)
            return (start + timedelta(days=1), False) if is_end else (start, True)
        value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"'{text}' không phải ngày giờ RFC 3339 (vd. 2025-07-01 hoặc "
                          "2025-07-01T08:00:00Z)",
                          f"'{text}' is not an RFC 3339 date-time (e.g. 2025-07-01 or "
                          "2025-07-01T08:00:00Z)", field) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=VN_TZ)
    return value, True


def parse_datetime(raw: str | None) -> TimeRange | None:
    """OGC datetime: an instant, 'start/end', '../end', 'start/..' (an empty end is open)."""
    if raw is None or raw == "":
        return None
    field = "datetime"
    if "/" not in raw:
        if raw.strip() == "..":
            raise FilterError("'..' chỉ dùng làm một đầu của khoảng",
                              "'..' is only allowed as one end of an interval", field)
        start, _ = _instant(raw, field, is_end=False)
        if len(raw.strip()) == 10:  # a date: the whole local day
            return TimeRange(start, start + timedelta(days=1), False)
        return TimeRange(start, start, True)
    parts = raw.split("/")
    if len(parts) != 2:
        raise FilterError("datetime có nhiều hơn một dấu '/'",
                          "datetime has more than one '/'", field)
    a, b = (p.strip() for p in parts)
    open_a, open_b = a in ("", ".."), b in ("", "..")
    if open_a and open_b:
        raise FilterError("Khoảng thời gian phải có ít nhất một đầu xác định",
                          "An interval needs at least one bounded end", field)
    start = None if open_a else _instant(a, field, is_end=False)[0]
    end, inclusive = (None, False) if open_b else _instant(b, field, is_end=True)
    if start is not None and end is not None and (end < start or (end == start and not inclusive)):
        raise FilterError("datetime: thời điểm bắt đầu sau thời điểm kết thúc",
                          "datetime: the start is after the end", field)
    return TimeRange(start, end, inclusive)


def parse_limit(raw: str | None, default: int, maximum: int) -> int:
    """Over the maximum is an error, never a silent clamp: the caller must page."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise FilterError("limit phải là số nguyên", "limit must be an integer", "limit") from exc
    if value < 1 or value > maximum:
        raise FilterError(f"limit phải từ 1 đến {maximum}; hãy dùng phân trang (offset, liên kết next)",
                          f"limit must be between 1 and {maximum}; page with offset / the next link",
                          "limit")
    return value


def parse_offset(raw: str | None) -> int:
    if raw is None:
        return 0
    try:
        value = int(raw)
    except ValueError as exc:
        raise FilterError("offset phải là số nguyên", "offset must be an integer", "offset") from exc
    if value < 0:
        raise FilterError("offset không được âm", "offset must not be negative", "offset")
    return value


def parse_bool(raw: str, field: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise FilterError(f"{field} phải là true hoặc false", f"{field} must be true or false", field)
