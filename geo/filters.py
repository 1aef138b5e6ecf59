"""Incident filters used by every analysis: a date range, a category path prefix, youth.

Why one module: the same filter must mean the same thing in coverage, hotspots, heatmaps and
series, and must stay index-friendly (a range on ``occurred_at``, not a cast per row).
Dates are local Vietnamese dates (Asia/Ho_Chi_Minh); ``end`` is inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local_midnight(day: date) -> datetime:
    """The instant a local Vietnamese day starts (timezone-aware)."""
    return datetime.combine(day, time(0), tzinfo=VN_TZ)


def shift_year(day: date, years: int) -> date:
    """The same calendar day ``years`` away; 29 February maps to 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents an analysis looks at.

    start, end: local dates, both inclusive (None = open).
    category: a path prefix; 'crime' matches 'crime' and 'crime/theft' but not 'crimes'.
    youth: True = only youth-involved, False = only not youth-involved, None = all.
    """

    start: date | None = None
    end: date | None = None
    category: str | None = None
    youth: bool | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.end < self.start:
            raise ValueError("end before start / ngày kết thúc trước ngày bắt đầu")
        if self.category is not None and (not self.category.strip() or self.category.endswith("/")):
            raise ValueError("category must be a path such as 'crime' or 'crime/theft'")

    def last_year(self) -> IncidentFilter:
        """The same period one year earlier ("cùng kỳ năm trước")."""
        return replace(self, start=self.start and shift_year(self.start, -1),
                       end=self.end and shift_year(self.end, -1))

    def sql(self, alias: str = "i", prefix: str = "f_") -> tuple[str, dict[str, Any]]:
        """A WHERE fragment (never empty: 'TRUE' at least) and its bind parameters."""
        parts: list[str] = []
        params: dict[str, Any] = {}
        if self.start is not None:
            parts.append(f"{alias}.occurred_at >= :{prefix}start")
            params[f"{prefix}start"] = local_midnight(self.start)
        if self.end is not None:
            parts.append(f"{alias}.occurred_at < :{prefix}end")
            params[f"{prefix}end"] = local_midnight(self.end + timedelta(days=1))
        if self.category is not None:
            like = self.category.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            col = f"{alias}.category_code"
            parts.append(f"({col} = :{prefix}cat OR {col} LIKE :{prefix}catlike)")
            params[f"{prefix}cat"] = self.category
            params[f"{prefix}catlike"] = like + "/%"
        if self.youth is not None:
            parts.append(f"{alias}.youth_involved = :{prefix}youth")
            params[f"{prefix}youth"] = self.youth
        return (" AND ".join(parts) or "TRUE"), params
