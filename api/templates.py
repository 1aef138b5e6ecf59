"""Excel in and out: the template of a commune's year, and its upload.

- ``GET /templates/{commune}/{year}.xlsx``: the template (reports/workbook.py) with the commune's
  villages, institutions, models, the year's events and targets filled in;
- ``POST /templates/{commune}/{year}`` (multipart ``file``, ``dry_run``): the filled template.

An upload is checked whole before anything is written: every error names the sheet, the row,
the column and what was wrong (unknown code, duplicate, bad value, unit outside the account's
scope); with one error nothing is written (422 with the full list). A valid file is applied in
one transaction that writes only what differs from the database, so uploading the same file
again changes nothing; the answer summarises what changed, sheet by sheet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Path, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import Connection, text

from api.analytics import clean, responses, today_vn
from api.audit import record
from api.deps import Principal, get_conn, require_roles
from api.event_rules import check_event
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.targets import (
    CODE_PATTERN,
    PLAN_ROLES,
    better_or_equal,
    in_scope,
    plan_view,
    require_scope,
    unit_row,
)
from geo.placement import point_unit_sql
from reports import workbook as wbk
from reports.workbook import BadValue, CellError, Row

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def template_date(year: int) -> dt.date:
    """The day whose units, institutions and models a template lists."""
    return min(today_vn(), dt.date(year, 12, 31))


# --- the template ----------------------------------------------------------------------------

def template_data(conn: Connection, commune: dict[str, Any], year: int) -> wbk.TemplateData:
    on = template_date(year)
    p = {"cid": commune["id"], "year": year, "on": on}
    villages = conn.execute(text("""SELECT v.code, v.name, uy.launched, uy.movement_class, uy.festival_held
        FROM admin_unit v LEFT JOIN unit_year uy ON uy.unit_id = v.id AND uy.year = :year
        WHERE v.level = 'village' AND v.parent_id = :cid AND v.valid_from <= :on
          AND (v.valid_to IS NULL OR :on < v.valid_to) ORDER BY v.code"""), p).mappings().all()
    institutions = conn.execute(text(f"""SELECT s.id AS code, s.name, s.kind, y.antt_safe, y.launched,
            y.movement_class, y.festival_held
        FROM institution s LEFT JOIN institution_year y ON y.institution_id = s.id AND y.year = :year
        WHERE {point_unit_sql('s', 'commune')} = :cid ORDER BY s.name, s.id"""), p).mappings().all()
    models = conn.execute(text(f"""SELECT m.id AS code, m.name, t.name_vi AS type, v.name AS village,
            r.rating AS last_rating, r.rated_on AS last_rated_on
        FROM security_model m JOIN model_type t ON t.code = m.type_code
        LEFT JOIN admin_unit v ON v.id = m.village_id
        LEFT JOIN LATERAL (SELECT rating, rated_on FROM model_rating WHERE model_id = m.id
                           ORDER BY rated_on DESC, id DESC LIMIT 1) r ON true
        WHERE {point_unit_sql('m', 'commune')} = :cid AND m.founded_on <= :on
          AND NOT (m.status = 'dissolved' AND coalesce(m.status_since, m.founded_on) < make_date(:year, 1, 1))
        ORDER BY v.code NULLS LAST, m.name, m.id"""), p).mappings().all()
    events = conn.execute(text("""SELECT coalesce(e.external_id, 'ID:' || e.id) AS code, e.kind, e.title,
            e.held_on, v.code AS village_code, e.institution_id AS institution_code, e.place, e.participants,
            e.notes, e.attachments
        FROM movement_event e LEFT JOIN admin_unit v ON v.id = e.village_id
        WHERE e.commune_id = :cid AND e.held_on BETWEEN make_date(:year, 1, 1) AND make_date(:year, 12, 31)
        ORDER BY e.held_on, e.id"""), p).mappings().all()
    plan = plan_view(conn, {**commune, "level": "commune"}, year)
    values = {r.target_code: r for r in conn.execute(text("""
        SELECT DISTINCT ON (target_code) target_code, value, recorded_on FROM target_value
        WHERE unit_level = 'commune' AND unit_code = :c AND year = :year
        ORDER BY target_code, recorded_on DESC, id DESC"""), {"c": commune["code"], "year": year})}
    targets = []
    for t in plan["targets"]:
        v = values.get(t["code"])
        targets.append({"code": t["code"], "name": t["name"]["vi"], "unit": t["unit"]["vi"],
                        "direction": wbk.DIRECTION_LABELS[t["direction"]],
                        "province_threshold": t["province_threshold"],
                        "threshold": t["threshold"] if t["threshold_source"] == "commune" else None,
                        "value": v.value if v else None, "recorded_on": v.recorded_on if v else None})
    inst_rows = [{**dict(r), "kind": wbk.INST_KIND_LABELS.get(r["kind"], r["kind"])} for r in institutions]
    return wbk.TemplateData(commune["code"], commune["name"], commune["province_code"], year,
                            [dict(r) for r in villages], inst_rows, [dict(r) for r in models],
                            [dict(r) for r in events], targets)


# --- checking an upload ------------------------------------------------------------------------

@dataclass
class Plan:
    """What an upload would write: (sheet, description, SQL, params) in order, and counts."""

    commune: dict[str, Any]
    year: int
    writes: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, sheet: str, what: str) -> None:
        c = self.counts.setdefault(sheet, {"created": 0, "updated": 0, "unchanged": 0, "removed": 0})
        c[what] += 1

    def write(self, sheet: str, what: str, description: str, sql: str, params: dict[str, Any]) -> None:
        self.count(sheet, what)
        self.writes.append((sheet, description, sql, params))


def _parse(row: Row, key: str, parser, errors: list[CellError]) -> Any:
    try:
        return parser(row.values.get(key))
    except BadValue as exc:
        errors.append(row.error(key, exc.vi, exc.en))
        return None


def _duplicates(rows: list[Row], key: str, errors: list[CellError], what_vi: str, what_en: str) -> set[int]:
    """Row numbers repeating an earlier row's KEY (reported), so they are skipped."""
    seen: dict[str, int] = {}
    dup = set()
    for r in rows:
        code = wbk.text_value(r.values.get(key))
        if code is None:
            continue
        if code in seen:
            errors.append(r.error(key, f"{what_vi} \"{code}\" trùng với dòng {seen[code]}",
                                  f"{what_en} \"{code}\" repeats row {seen[code]}"))
            dup.add(r.number)
        else:
            seen[code] = r.number
    return dup


def _other_unit(conn: Connection, principal: Principal, level: str, code: str, commune: dict[str, Any]
                ) -> tuple[str, str]:
    """Why a code is not one of this commune's: unknown, or in a unit outside the scope, or
    simply in another commune."""
    if level == "village":
        row = conn.execute(text("""SELECT v.code, c.code AS commune_code, c.province_code FROM admin_unit v
            JOIN admin_unit c ON c.id = v.parent_id WHERE v.level = 'village' AND v.code = :c LIMIT 1"""),
                           {"c": code}).mappings().first()
    else:
        table = {"institution": "institution", "model": "security_model"}[level]
        ident = int(code) if code.isdigit() and len(code) < 10 else -1
        row = conn.execute(text(f"""SELECT c.code AS commune_code, c.province_code FROM {table} t
            JOIN admin_unit c ON c.id = t.commune_id WHERE t.id = :i"""), {"i": ident}).mappings().first()
    names = {"village": ("mã thôn", "village code"), "institution": ("mã cơ quan", "institution code"),
             "model": ("mã mô hình", "model code")}[level]
    if row is None:
        return f"{names[0]} \"{code}\" không tồn tại", f"unknown {names[1]} \"{code}\""
    unit = {"level": "commune", "code": row["commune_code"], "commune_code": row["commune_code"],
            "province_code": row["province_code"]}
    if not in_scope(principal, unit):
        return (f"{names[0]} \"{code}\" thuộc đơn vị ngoài phạm vi tài khoản",
                f"{names[1]} \"{code}\" is in a unit outside the account's scope")
    return (f"{names[0]} \"{code}\" không thuộc xã {commune['code']} (thuộc xã {row['commune_code']})",
            f"{names[1]} \"{code}\" is not in commune {commune['code']} (it is in {row['commune_code']})")


def _yearly(conn: Connection, plan: Plan, rows: list[Row], table: str, key_col: str, ids: dict[str, int],
            columns: tuple[str, ...], parsers: dict[str, Any], sheet: str, errors: list[CellError]) -> None:
    """unit_year / institution_year rows: write the columns that differ."""
    for r in rows:
        values = {c: _parse(r, c, parsers[c], errors) for c in columns}
        uid = ids.get(wbk.text_value(r.values.get("code")) or "")
        if uid is None:
            continue
        current = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table} WHERE {key_col} = :u "
                                    "AND year = :y"), {"u": uid, "y": plan.year}).mappings().first()
        if current is None and all(v is None for v in values.values()):
            plan.count(sheet, "unchanged")
            continue
        if current is not None and all(current[c] == values[c] for c in columns):
            plan.count(sheet, "unchanged")
            continue
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
        plan.write(sheet, "created" if current is None else "updated",
                   f"{sheet} {r.values.get('code')}: " + ", ".join(
                       f"{c} {None if current is None else current[c]} → {values[c]}" for c in columns
                       if current is None or current[c] != values[c]),
                   f"INSERT INTO {table} ({key_col}, year, {', '.join(columns)}) "
                   f"VALUES (:u, :y, {', '.join(':' + c for c in columns)}) "
                   f"ON CONFLICT ({key_col}, year) DO UPDATE SET {sets}",
                   {"u": uid, "y": plan.year, **values})


def check_upload(conn: Connection, principal: Principal, data: bytes, commune_code: str | None,
                 year: int | None, wanted: tuple[str, ...] | None) -> tuple[Plan | None, list[CellError],
                                                                          list[str]]:
    """Every check of an upload; (plan of writes, errors, notes)."""
    read = wbk.read_workbook(data, wanted)
    errors = list(read.errors)
    notes = [f"Trang không dùng, bỏ qua / sheet not used, ignored: {n}" for n in read.unknown_sheets]
    meta_row = wbk.META_ROW
    if read.commune_code is None or read.year is None:
        if not any(e.row is None and e.sheet == "-" for e in errors):
            errors.append(CellError(wbk.INFO_SHEET, meta_row, "B", "Mã xã / Năm",
                                    "thiếu mã xã hoặc năm của mẫu (tải lại mẫu từ hệ thống)",
                                    "the template's commune code or year is missing "
                                    "(download a new template)"))
        return None, errors, notes
    if commune_code is not None and read.commune_code != commune_code:
        errors.append(CellError(wbk.INFO_SHEET, meta_row, "B", "Mã xã",
                                f"tệp là mẫu của xã {read.commune_code}, không phải xã {commune_code}",
                                f"the file is the template of commune {read.commune_code}, "
                                f"not {commune_code}"))
    if year is not None and read.year != year:
        errors.append(CellError(wbk.INFO_SHEET, meta_row + 3, "B", "Năm",
                                f"tệp là mẫu năm {read.year}, không phải năm {year}",
                                f"the file is the template of {read.year}, not {year}"))
    on = template_date(read.year)
    try:
        commune = unit_row(conn, "commune", read.commune_code, on)
    except Problem:
        errors.append(CellError(wbk.INFO_SHEET, meta_row, "B", "Mã xã", f"không có xã mã {read.commune_code}",
                                f"no commune with code {read.commune_code}"))
        return None, errors, notes
    if not in_scope(principal, commune):
        errors.append(CellError(wbk.INFO_SHEET, meta_row, "B", "Mã xã",
                                f"xã {read.commune_code} ngoài phạm vi tài khoản",
                                f"commune {read.commune_code} is outside the account's scope"))
        return None, errors, notes
    plan = Plan(commune, read.year)
    p = {"cid": commune["id"], "on": on, "year": read.year}
    village_ids = {r.code: r.id for r in conn.execute(text(
        "SELECT code, id FROM admin_unit WHERE level = 'village' AND parent_id = :cid AND valid_from <= :on "
        "AND (valid_to IS NULL OR :on < valid_to)"), p)}
    inst_ids = {str(r.id): r.id for r in conn.execute(text(
        f"SELECT s.id FROM institution s WHERE {point_unit_sql('s', 'commune')} = :cid"), p)}
    model_rows = {str(r.id): r for r in conn.execute(text(
        f"SELECT m.id, m.founded_on FROM security_model m WHERE {point_unit_sql('m', 'commune')} = :cid"), p)}

    def known(rows: list[Row], ids: dict[str, Any], level: str) -> list[Row]:
        ok = []
        for r in rows:
            code = wbk.text_value(r.values.get("code"))
            if code is None:
                errors.append(r.error("code", "thiếu mã", "the code is missing"))
            elif code not in ids:
                vi, en = _other_unit(conn, principal, level, code, commune)
                errors.append(r.error("code", vi, en))
            else:
                ok.append(r)
        return ok

    rows = read.rows
    if "villages" in rows:
        dup = _duplicates(rows["villages"], "code", errors, "mã thôn", "village code")
        good = known([r for r in rows["villages"] if r.number not in dup], village_ids, "village")
        _yearly(conn, plan, good, "unit_year", "unit_id", village_ids,
                ("launched", "movement_class", "festival_held"),
                {"launched": wbk.parse_bool, "movement_class": wbk.parse_class,
                 "festival_held": wbk.parse_bool}, "Thôn", errors)
    if "institutions" in rows:
        dup = _duplicates(rows["institutions"], "code", errors, "mã cơ quan", "institution code")
        good = known([r for r in rows["institutions"] if r.number not in dup], inst_ids, "institution")
        _yearly(conn, plan, good, "institution_year", "institution_id", inst_ids,
                ("antt_safe", "launched", "movement_class", "festival_held"),
                {"antt_safe": wbk.parse_bool, "launched": wbk.parse_bool, "movement_class": wbk.parse_class,
                 "festival_held": wbk.parse_bool}, "Cơ quan", errors)
    if "models" in rows:
        dup = _duplicates(rows["models"], "code", errors, "mã mô hình", "model code")
        for r in known([r for r in rows["models"] if r.number not in dup], model_rows, "model"):
            rating = _parse(r, "rating", wbk.parse_rating, errors)
            rated_on = _parse(r, "rated_on", wbk.parse_date, errors)
            note = wbk.text_value(r.values.get("note"))
            if rating is None and rated_on is None:
                plan.count("Mô hình", "unchanged")
                continue
            if rating is None or rated_on is None:
                missing = "rating" if rating is None else "rated_on"
                errors.append(r.error(missing, "cần cả xếp loại và ngày xếp loại",
                                      "both the rating and its date are needed"))
                continue
            model = model_rows[wbk.text_value(r.values["code"])]
            if rated_on > today_vn():
                errors.append(r.error("rated_on", "ngày xếp loại ở tương lai",
                                      "the rating date is in the future"))
                continue
            if rated_on < model.founded_on:
                founded = f"{model.founded_on:%d/%m/%Y}"
                errors.append(r.error("rated_on", f"trước ngày thành lập mô hình ({founded})",
                                      f"before the model was founded ({founded})"))
                continue
            cur = conn.execute(text("SELECT id, rating, note FROM model_rating WHERE model_id = :m "
                                    "AND rated_on = :d ORDER BY id LIMIT 1"),
                               {"m": model.id, "d": rated_on}).first()
            if cur is not None and cur.rating == rating and (note is None or cur.note == note):
                plan.count("Mô hình", "unchanged")
            elif cur is not None:
                plan.write("Mô hình", "updated", f"Mô hình {model.id}: xếp loại {cur.rating} → {rating} "
                           f"({rated_on:%d/%m/%Y})", "UPDATE model_rating SET rating = :r, note = :n, "
                           "rated_by = :by WHERE id = :id",
                           {"r": rating, "n": note, "by": principal.username, "id": cur.id})
            else:
                plan.write("Mô hình", "created",
                           f"Mô hình {model.id}: xếp loại {rating} ({rated_on:%d/%m/%Y})",
                           "INSERT INTO model_rating (model_id, rating, rated_on, rated_by, note) "
                           "VALUES (:m, :r, :d, :by, :n)",
                           {"m": model.id, "r": rating, "d": rated_on, "by": principal.username, "n": note})
    if "events" in rows:
        _check_events(conn, principal, plan, rows["events"], errors)
    if "targets" in rows:
        _check_targets(conn, principal, plan, rows["targets"], errors)
    return plan, errors, notes


EVENT_FIELD_COLUMNS = {"kind": "kind", "title": "title", "held_on": "held_on", "village_code": "village_code",
                       "institution_id": "institution_code", "launch_point_id": "code", "place": "place",
                       "participants": "participants", "notes": "notes", "attachments": "attachments",
                       "external_id": "code", "commune_code": None}
EVENT_COLUMNS = ("kind", "title", "held_on", "village_id", "institution_id", "place", "participants",
                 "notes", "attachments")


def _stored(row: Any, column: str) -> Any:
    """A value as compared between the file and the database (attachments as a plain list)."""
    return list(row[column] or []) if column == "attachments" else row[column]


def _check_events(conn: Connection, principal: Principal, plan: Plan, rows: list[Row],
                  errors: list[CellError]) -> None:
    commune = plan.commune
    dup = _duplicates(rows, "code", errors, "mã sự kiện", "event code")
    natural: dict[tuple, int] = {}
    for r in rows:
        if r.number in dup:
            continue
        n_before = len(errors)
        code = wbk.text_value(r.values.get("code"))
        kind = _parse(r, "kind", wbk.parse_kind, errors)
        held_on = _parse(r, "held_on", wbk.parse_date, errors)
        title = wbk.text_value(r.values.get("title"))
        participants = _parse(r, "participants", lambda v: wbk.parse_number(v, integer=True), errors)
        inst = wbk.text_value(r.values.get("institution_code"))
        for key, value in (("kind", kind), ("title", title), ("held_on", held_on)):
            if value is None and not any(e.row == r.number and e.header == r.sheet.col(key).header
                                         for e in errors):
                errors.append(r.error(key, "bắt buộc", "required"))
        attachments = wbk.parse_list(r.values.get("attachments"))
        for a in attachments:
            if any(c in a for c in "/\\\x00") or len(a) > 255:
                errors.append(r.error("attachments", f"\"{a}\" không phải tên tệp",
                                      f"\"{a}\" is not a file name"))
        if inst is not None and not inst.isdigit():
            errors.append(r.error("institution_code", f"mã cơ quan \"{inst}\" phải là số",
                                  f"institution code \"{inst}\" must be a number"))
            inst = None
        if len(errors) > n_before:
            continue
        data = {"kind": kind, "title": title, "held_on": held_on, "commune_code": commune["code"],
                "village_code": wbk.text_value(r.values.get("village_code")),
                "institution_id": int(inst) if inst else None, "launch_point_id": None,
                "place": wbk.text_value(r.values.get("place")), "participants": participants,
                "notes": wbk.text_value(r.values.get("notes")), "attachments": attachments,
                "external_id": None if code is None or code.startswith("ID:") else code}
        cols, problems = check_event(conn, principal, data)
        for e in problems:
            col = EVENT_FIELD_COLUMNS.get(e["field"].split(".")[0])
            errors.append(r.error(col, e["message_vi"], e["message_en"]))
        if problems:
            continue
        key = (kind, held_on, title)
        if key in natural:
            first = natural[key]
            errors.append(r.error("title", f"sự kiện trùng với dòng {first}", f"repeats row {first}"))
            continue
        natural[key] = r.number
        existing = None
        if code is not None and code.startswith("ID:"):
            ident = code[3:]
            existing = conn.execute(text("SELECT * FROM movement_event WHERE id = :i AND commune_id = :c"),
                                    {"i": int(ident) if ident.isdigit() and len(ident) < 10 else -1,
                                     "c": commune["id"]}).mappings().first()
            if existing is None:
                errors.append(r.error("code", f"không có sự kiện {code} của xã này",
                                      f"no event {code} in this commune"))
                continue
        elif code is not None:
            existing = conn.execute(text("SELECT * FROM movement_event WHERE external_id = :x"),
                                    {"x": code}).mappings().first()
            if existing is not None and existing["commune_id"] != commune["id"]:
                errors.append(r.error("code", f"mã sự kiện \"{code}\" đã dùng cho xã khác",
                                      f"event code \"{code}\" belongs to another commune"))
                continue
        else:
            existing = conn.execute(text("""SELECT * FROM movement_event WHERE commune_id = :c AND kind = :k
                AND held_on = :d AND title = :t ORDER BY id LIMIT 1"""),
                                    {"c": commune["id"], "k": kind, "d": held_on,
                                     "t": title}).mappings().first()
        if existing is None:
            plan.write("Sự kiện", "created", f"Sự kiện mới: {title} ({held_on:%d/%m/%Y})",
                       """INSERT INTO movement_event (external_id, kind, title, held_on, commune_id,
                           village_id, institution_id, place, participants, notes, attachments, created_by)
                       VALUES (:external_id, :kind, :title, :held_on, :commune_id, :village_id,
                               :institution_id, :place, :participants, :notes, :attachments, :by)""",
                       {**cols, "by": principal.username})
            continue
        changed = [c for c in EVENT_COLUMNS if _stored(existing, c) != _stored(cols, c)]
        if not changed:
            plan.count("Sự kiện", "unchanged")
            continue
        plan.write("Sự kiện", "updated", f"Sự kiện {existing['id']}: " + ", ".join(changed),
                   """UPDATE movement_event SET kind = :kind, title = :title, held_on = :held_on,
                       village_id = :village_id, institution_id = :institution_id, place = :place,
                       participants = :participants, notes = :notes, attachments = :attachments,
                       version = version + 1, updated_at = now() WHERE id = :id""",
                   {**cols, "id": existing["id"]})


def _check_targets(conn: Connection, principal: Principal, plan: Plan, rows: list[Row],
                   errors: list[CellError]) -> None:
    from api.targets import definitions

    commune = plan.commune
    defs = definitions(conn)
    view = {t["code"]: t for t in plan_view(conn, {**commune, "level": "commune"}, plan.year)["targets"]}
    dup = _duplicates(rows, "code", errors, "mã chỉ tiêu", "target code")
    pid = conn.execute(text("SELECT id FROM plan WHERE unit_level = 'commune' AND unit_code = :c "
                            "AND year = :y"), {"c": commune["code"], "y": plan.year}).scalar()
    own = {} if pid is None else dict(conn.execute(text(
        "SELECT target_code, threshold FROM plan_target WHERE plan_id = :p"), {"p": pid}).all())
    for r in rows:
        if r.number in dup:
            continue
        code = wbk.text_value(r.values.get("code"))
        d = defs.get(code or "")
        if d is None:
            errors.append(r.error("code", f"mã chỉ tiêu \"{code}\" không có trong danh mục",
                                  f"unknown target code \"{code}\""))
            continue
        n_before = len(errors)
        threshold = _parse(r, "threshold", wbk.parse_number, errors)
        value = _parse(r, "value", wbk.parse_number, errors)
        recorded_on = _parse(r, "recorded_on", wbk.parse_date, errors)
        if len(errors) > n_before:
            continue
        base = view[code]["province_threshold"] if code in view else d.default_threshold
        if threshold is not None:
            if d.measure == "percent" and threshold > 100:
                errors.append(r.error("threshold", "tỷ lệ không quá 100", "a percentage is at most 100"))
                continue
            if base is not None and not better_or_equal(d.direction, threshold, base):
                errors.append(r.error(
                    "threshold", f"xã chỉ được nâng chỉ tiêu, không thấp hơn mức của tỉnh ({base:g})",
                    f"a commune may only raise a target, not below the province's ({base:g})"))
                continue
        if (value is None) != (recorded_on is None):
            errors.append(r.error("value" if value is None else "recorded_on",
                                  "cần cả kết quả và ngày ghi nhận",
                                  "both the value and its date are needed"))
            continue
        if value is not None and d.metric is not None:
            errors.append(r.error("value", "chỉ tiêu này được tính tự động, không nhập kết quả",
                                  "this target is computed from the registry; no value is entered"))
            continue
        if value is not None and d.measure == "percent" and value > 100:
            errors.append(r.error("value", "tỷ lệ không quá 100", "a percentage is at most 100"))
            continue
        if recorded_on is not None and recorded_on > today_vn():
            errors.append(r.error("recorded_on", "ở tương lai", "in the future"))
            continue
        current = own.get(code)
        if threshold == current:
            plan.count("Chỉ tiêu", "unchanged")
        elif threshold is None:
            plan.write("Chỉ tiêu", "removed", f"Chỉ tiêu {code}: bỏ mức riêng của xã ({current:g})",
                       "DELETE FROM plan_target WHERE plan_id = (SELECT id FROM plan "
                       "WHERE unit_level = 'commune' AND unit_code = :c AND year = :y) AND target_code = :t",
                       {"c": commune["code"], "y": plan.year, "t": code})
        else:
            plan.write("Chỉ tiêu", "updated" if current is not None else "created",
                       f"Chỉ tiêu {code}: mức của xã {current} → {threshold:g}",
                       """WITH p AS (INSERT INTO plan (unit_level, unit_code, year, created_by)
                              VALUES ('commune', :c, :y, :by)
                              ON CONFLICT (unit_level, unit_code, year) DO UPDATE SET updated_at = now()
                              RETURNING id)
                          INSERT INTO plan_target (plan_id, target_code, threshold) SELECT id, :t, :v FROM p
                          ON CONFLICT (plan_id, target_code) DO UPDATE SET threshold = EXCLUDED.threshold""",
                       {"c": commune["code"], "y": plan.year, "by": principal.username, "t": code,
                        "v": threshold})
        if value is not None:
            cur = conn.execute(text("""SELECT value FROM target_value WHERE target_code = :t
                AND unit_level = 'commune' AND unit_code = :c AND year = :y AND recorded_on = :d"""),
                               {"t": code, "c": commune["code"], "y": plan.year, "d": recorded_on}).first()
            if cur is not None and cur.value == value:
                plan.count("Chỉ tiêu", "unchanged")
            else:
                plan.write("Chỉ tiêu", "created" if cur is None else "updated",
                           f"Chỉ tiêu {code}: kết quả {value:g} ({recorded_on:%d/%m/%Y})",
                           """INSERT INTO target_value (target_code, unit_level, unit_code, year, value,
                                  recorded_on, created_by) VALUES (:t, 'commune', :c, :y, :v, :d, :by)
                              ON CONFLICT (target_code, unit_level, unit_code, year, recorded_on)
                              DO UPDATE SET value = EXCLUDED.value, created_by = EXCLUDED.created_by""",
                           {"t": code, "c": commune["code"], "y": plan.year, "v": value, "d": recorded_on,
                            "by": principal.username})


def apply_workbook(conn: Connection, principal: Principal, data: bytes, commune_code: str | None,
                   year: int | None, wanted: tuple[str, ...] | None, dry_run: bool) -> dict[str, Any]:
    """Check the whole upload; with errors raise 422 listing them all (nothing written); else
    write the differences in this connection's transaction and summarise."""
    plan, errors, notes = check_upload(conn, principal, data, commune_code, year, wanted)
    if errors or plan is None:
        conn.rollback()
        listed = [e.as_dict() for e in errors]
        raise Problem(422, f"Tệp có {len(listed)} lỗi; chưa ghi dữ liệu nào",
                      f"The file has {len(listed)} error(s); nothing was written", listed,
                      error_count=len(listed))
    for _sheet, _desc, sql, params in plan.writes:
        conn.execute(text(sql), params)
    summary = {"commune": plan.commune["code"], "year": plan.year, "dry_run": dry_run,
               "changed": len(plan.writes), "sheets": plan.counts,
               "changes": [f"{s}: {d}" for s, d, _q, _p in plan.writes], "notes": notes}
    if dry_run:
        conn.rollback()
        return summary
    record(conn, principal, "import", "template", f"{plan.commune['code']}/{plan.year}",
           detail={k: v for k, v in summary.items() if k != "dry_run"})
    conn.commit()
    return summary


async def read_upload(file: UploadFile, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        mb = limit // (1024 * 1024)
        raise Problem(413, f"Tệp lớn hơn {mb} MB", f"File larger than {mb} MB",
                      [field_error("file", "quá lớn", "too large")])
    if not data:
        raise Problem(422, "Tệp rỗng", "The file is empty", [field_error("file", "rỗng", "empty")])
    return data


router = APIRouter(tags=["templates"], dependencies=[Depends(reject_nul)])
CommuneCode = Annotated[str, Path(pattern=CODE_PATTERN)]
Year = Annotated[int, Path(ge=2000, le=2100)]


@router.get("/templates/{commune}/{year}.xlsx", responses=responses(401, 403, 404, 422) | {
    200: {"content": {XLSX: {}}, "description": "Mẫu Excel / the Excel template"}},
    summary="Tải mẫu Excel của xã theo năm / download a commune's template for a year")
def download_template(commune: CommuneCode, year: Year,
                      principal: Principal = Depends(require_roles(*PLAN_ROLES)),
                      conn: Connection = Depends(get_conn)) -> Response:
    unit = unit_row(conn, "commune", commune, template_date(year))
    require_scope(principal, unit, "commune")
    body = wbk.build_template(template_data(conn, unit, year))
    name = f"mau-phong-trao-{commune}-{year}.xlsx"
    return Response(body, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.post("/templates/{commune}/{year}", responses=responses(401, 403, 404, 422) | {
    413: {"description": "Tệp quá lớn / file too large"}},
    summary="Tải lên mẫu đã điền / upload a filled template")
async def upload_template(commune: CommuneCode, year: Year,
                          file: UploadFile = File(..., description="Tệp .xlsx đã điền / the filled .xlsx"),
                          dry_run: bool = Query(False, description="Chỉ kiểm tra, không ghi / check only"),
                          principal: Principal = Depends(require_roles(*PLAN_ROLES)),
                          conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    unit = await run_in_threadpool(unit_row, conn, "commune", commune, template_date(year))
    require_scope(principal, unit, "commune")
    data = await read_upload(file, MAX_UPLOAD_BYTES)
    out = await run_in_threadpool(apply_workbook, conn, principal, data, commune, year, None, dry_run)
    return {k: clean(v) if not isinstance(v, dict | list) else v for k, v in out.items()}
