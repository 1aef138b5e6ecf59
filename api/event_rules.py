"""The one validation of a movement event (festival, forum, launch, review), shared by the
events API (api/events.py) and the Excel uploads (api/templates.py): a row of a workbook is
refused for exactly the reasons a request would be. Its own module so that both import it
and neither imports the other for it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, text

from api.analytics import today_vn
from api.deps import Principal
from api.problems import field_error
from api.targets import in_scope


def check_event(conn: Connection, principal: Principal, data: dict[str, Any],
                ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(columns to store, errors): every rule an event must meet, each error naming its field."""
    errors: list[dict[str, str]] = []
    held_on: dt.date = data["held_on"]
    if held_on > today_vn():
        errors.append(field_error("held_on", "không được ở tương lai (sự kiện đã tổ chức)",
                                  "must not be in the future (an event that took place)"))
    if held_on < dt.date(1990, 1, 1):
        errors.append(field_error("held_on", "trước năm 1990", "before 1990"))
    commune = conn.execute(text("""SELECT id, code, province_code FROM admin_unit
        WHERE level = 'commune' AND code = :c
        ORDER BY (valid_from <= :d AND (valid_to IS NULL OR :d < valid_to)) DESC, valid_from DESC LIMIT 1"""),
        {"c": data["commune_code"], "d": held_on}).mappings().first()
    out = {k: data.get(k) for k in ("kind", "title", "held_on", "place", "participants", "notes",
                                     "external_id", "launch_point_id", "institution_id")}
    out["attachments"] = list(data.get("attachments") or [])
    if commune is None:
        errors.append(field_error("commune_code", f"không có xã mã {data['commune_code']}",
                                  f"no commune with code {data['commune_code']}"))
        return out, errors
    unit = {"level": "commune", "code": commune["code"], "commune_code": commune["code"],
            "province_code": commune["province_code"]}
    if not in_scope(principal, unit):
        errors.append(field_error("commune_code", "ngoài phạm vi tài khoản", "outside the account's scope"))
    out["commune_id"] = commune["id"]
    out["village_id"] = None
    if data.get("village_code"):
        village = conn.execute(text("""SELECT id FROM admin_unit WHERE level = 'village' AND code = :v
            AND parent_id = :c ORDER BY valid_from DESC LIMIT 1"""),
            {"v": data["village_code"], "c": commune["id"]}).first()
        if village is None:
            errors.append(field_error("village_code", f"không có thôn mã {data['village_code']} thuộc xã "
                                                      f"{commune['code']}",
                                      f"no village {data['village_code']} in commune {commune['code']}"))
        else:
            out["village_id"] = village.id
    if data.get("institution_id"):
        inst = conn.execute(text("""SELECT id, village_id FROM institution WHERE id = :i
            AND (commune_id = :c OR unit_at(geom, 'commune', :d) = :c)"""),
            {"i": data["institution_id"], "c": commune["id"], "d": held_on}).first()
        if inst is None:
            errors.append(field_error("institution_id", f"không có cơ quan {data['institution_id']} thuộc xã",
                                      f"no institution {data['institution_id']} in this commune"))
        elif out["village_id"] is None:
            out["village_id"] = inst.village_id
    if data.get("launch_point_id") and not conn.execute(text(
            "SELECT 1 FROM launch_point WHERE id = :l AND commune_id = :c"),
            {"l": data["launch_point_id"], "c": commune["id"]}).first():
        errors.append(field_error("launch_point_id", "không có điểm phát động này trong xã",
                                  "no such launch point in this commune"))
    return out, errors
