"""Request guards shared by the D2 routers.

Why: PostgreSQL text cannot hold NUL characters, so a query string with %00 would fail in the
driver (a 500); it is refused up front as a 422 naming the parameter.
"""

from __future__ import annotations

import datetime as dt

from fastapi import Request

from api.problems import Problem, field_error


def reject_nul(request: Request) -> None:
    for name, value in request.query_params.multi_items():
        if "\x00" in value or "\x00" in name:
            raise Problem(422, f"Tham số {name!r} chứa ký tự NUL", f"Parameter {name!r} contains NUL",
                          [field_error(f"query.{name}", "chứa ký tự NUL", "contains a NUL character")])


def utc_instant(value: dt.datetime, field: str, local: dt.tzinfo) -> dt.datetime:
    """An aware UTC datetime between 1900 and 2100 (naive values are in ``local`` time); odd
    offsets such as +16:00 or years outside that range are a 422, not a driver error."""
    aware = value.replace(tzinfo=local) if value.tzinfo is None else value
    try:
        out = aware.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise _out_of_range(field) from exc
    if not (1900 <= out.year <= 2100):
        raise _out_of_range(field)
    return out


def _out_of_range(field: str) -> Problem:
    return Problem(422, f"{field}: thời điểm ngoài khoảng 1900-2100",
                   f"{field}: time outside 1900-2100", [field_error(field, "ngoài khoảng", "out of range")])
