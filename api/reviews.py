"""The yearly (or 6-month) review of a commune's models, and the committee's decisions.

- ``POST /reviews``: open the review of a commune for a year: every model with its rating
  history and the proposal of ``geo.review`` (replicate, keep, strengthen, dissolve) and why;
- ``GET /reviews?commune=&year=``, ``GET /reviews/{id}``;
- ``PUT /reviews/{id}/items/{item_id}``: a committee member confirms the proposal or changes it
  (a changed decision needs its reason); ``POST /reviews/{id}/confirm``: confirm every open
  proposal as proposed;
- ``POST /reviews/{id}/items/{item_id}/replicas``: a model decided 'replicate' seeds planned
  new ones: planned launch points of its type in the villages named.

Why decisions are final once taken: a confirmed decision becomes a status event on the model
(``model_status_event``; 'dissolve' also sets the model's status), with audit rows in the same
transaction; undoing it is a new decision in a later review, not an edit of history.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, text

from api.analytics import bad, clean, responses, today_vn
from api.audit import record
from api.deps import Principal, get_conn, get_principal, require_roles
from api.guards import reject_nul
from api.problems import Problem, field_error
from api.targets import CODE_PATTERN, require_scope, unit_row
from geo import review as rv

OPEN_ROLES = ("admin", "committee", "planner")
DECIDE_ROLES = ("admin", "committee")
Decision = Literal["replicate", "keep", "strengthen", "dissolve"]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Reason = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_no_nul)]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    commune: str = Field(pattern=CODE_PATTERN, description="Mã xã / commune code")
    year: int = Field(ge=2000, le=2100)
    kind: Literal["so_ket", "tong_ket"] = Field("tong_ket", description="so_ket: 6 tháng; tong_ket: năm")
    reviewed_on: dt.date | None = Field(None, description="Ngày họp xét / date of the review "
                                                          "(default: today, not in the future)")


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Decision
    reason: Reason | None = Field(None, description="Bắt buộc khi khác đề xuất / required when the "
                                                    "decision differs from the proposal")


class ReplicasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    villages: list[Annotated[str, Field(pattern=CODE_PATTERN)]] = Field(min_length=1, max_length=50)
    launch_date: dt.date = Field(description="Ngày dự kiến phát động / planned launch date")


router = APIRouter(tags=["reviews"], dependencies=[Depends(reject_nul)])


def _review(conn: Connection, review_id: int) -> dict[str, Any]:
    row = conn.execute(text("""SELECT r.id, r.commune_code, r.year, r.kind, r.reviewed_on, r.created_by,
            r.created_at, c.name AS commune_name
        FROM model_review r LEFT JOIN admin_unit c ON c.id = r.commune_id WHERE r.id = :id"""),
        {"id": review_id}).mappings().first()
    if row is None:
        raise Problem(404, f"Không có đợt xét {review_id}", f"No review {review_id}",
                      [field_error("review_id", "không tồn tại", "unknown")])
    return dict(row)


def _items(conn: Connection, review_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(text("""
        SELECT i.id, i.model_id, m.name, m.type_code, t.name_vi AS type_name, m.status AS model_status,
               v.code AS village_code, v.name AS village_name, i.proposal, i.reason_vi, i.reason_en,
               i.ratings, i.decision, i.decision_reason, i.decided_by, i.decided_at, i.version,
               (SELECT count(*) FROM launch_point l WHERE l.source_model_id = m.id
                                                   AND l.status = 'planned') AS planned_replicas
        FROM model_review_item i JOIN security_model m ON m.id = i.model_id
        JOIN model_type t ON t.code = m.type_code LEFT JOIN admin_unit v ON v.id = m.village_id
        WHERE i.review_id = :id ORDER BY v.code NULLS LAST, m.name, i.id"""), {"id": review_id}).mappings()
    out = []
    for r in rows:
        item = {k: clean(v) for k, v in r.items()}
        vi, en = rv.DECISION_LABELS[r["proposal"]]
        item["proposal_label"] = {"vi": vi, "en": en}
        out.append(item)
    return out


def review_view(conn: Connection, review_id: int) -> dict[str, Any]:
    rev = {k: clean(v) for k, v in _review(conn, review_id).items()}
    items = _items(conn, review_id)
    counts: dict[str, dict[str, int]] = {"proposed": {}, "decided": {}}
    for i in items:
        counts["proposed"][i["proposal"]] = counts["proposed"].get(i["proposal"], 0) + 1
        if i["decision"]:
            counts["decided"][i["decision"]] = counts["decided"].get(i["decision"], 0) + 1
    rev["open"] = sum(1 for i in items if not i["decision"])
    return {**rev, "counts": counts, "items": items,
            "decisions": {k: {"vi": vi, "en": en} for k, (vi, en) in rv.DECISION_LABELS.items()}}


def _check_review_scope(conn: Connection, principal: Principal, rev: dict[str, Any]) -> None:
    require_scope(principal, unit_row(conn, "commune", rev["commune_code"], rev["reviewed_on"]), "review_id")


@router.post("/reviews", status_code=201, responses=responses(401, 403, 404, 422),
             summary="Mở đợt xét mô hình / open a review of a commune's models")
def open_review(body: ReviewIn, principal: Principal = Depends(require_roles(*OPEN_ROLES)),
                conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    on = body.reviewed_on or today_vn()
    if on > today_vn():
        raise bad("reviewed_on", "không được ở tương lai", "must not be in the future")
    if not dt.date(body.year, 1, 1) <= on <= dt.date(body.year + 1, 3, 31):
        raise bad("reviewed_on", f"phải trong năm {body.year} (hoặc quý I năm sau)",
                  f"must fall in {body.year} (or the first quarter after it)")
    unit = unit_row(conn, "commune", body.commune, on)
    require_scope(principal, unit, "commune")
    if conn.execute(text("SELECT 1 FROM model_review WHERE commune_code = :c AND year = :y AND kind = :k"),
                    {"c": body.commune, "y": body.year, "k": body.kind}).first():
        raise Problem(409, "Đợt xét này đã có", "This review already exists",
                      [field_error("kind", "đã có đợt xét cùng xã, năm, loại",
                                   "a review of the same commune, year and kind exists")])
    proposals = rv.propose(conn, body.commune, on)
    rid = conn.execute(text("""INSERT INTO model_review (commune_id, commune_code, year, kind, reviewed_on,
            created_by) VALUES (:cid, :c, :y, :k, :on, :by) RETURNING id"""),
        {"cid": unit["id"], "c": body.commune, "y": body.year, "k": body.kind, "on": on,
         "by": principal.username}).scalar_one()
    for p in proposals.to_dict("records"):
        conn.execute(text("""INSERT INTO model_review_item (review_id, model_id, proposal, reason_vi,
                reason_en, ratings) VALUES (:r, :m, :p, :vi, :en, CAST(:ratings AS jsonb))"""),
                     {"r": rid, "m": p["model_id"], "p": p["proposal"], "vi": p["reason_vi"],
                      "en": p["reason_en"], "ratings": json.dumps(p["ratings"])})
    record(conn, principal, "create", "model_review", rid,
           after={"commune": body.commune, "year": body.year, "kind": body.kind, "reviewed_on": on,
                  "items": len(proposals)})
    conn.commit()
    return review_view(conn, rid)


@router.get("/reviews", responses=responses(401, 403, 404, 422),
            summary="Các đợt xét mô hình / reviews of models")
def list_reviews(commune: str | None = Query(None, pattern=CODE_PATTERN),
                 year: int | None = Query(None, ge=2000, le=2100),
                 principal: Principal = Depends(get_principal),
                 conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    from api.scope import commune_ids_sql

    where, params = ["true"], {}
    if commune is not None:
        require_scope(principal, unit_row(conn, "commune", commune), "commune")
        where.append("r.commune_code = :c")
        params["c"] = commune
    sub = commune_ids_sql(principal)
    if sub is not None:
        where.append(f"r.commune_code IN (SELECT code FROM admin_unit WHERE id IN ({sub}))")
        params["scope_code"] = principal.scope_code
    if year is not None:
        where.append("r.year = :y")
        params["y"] = year
    rows = conn.execute(text(f"""
        SELECT r.id, r.commune_code, c.name AS commune_name, r.year, r.kind, r.reviewed_on, r.created_by,
               count(i.id) AS items, count(i.id) FILTER (WHERE i.decision IS NULL) AS open
        FROM model_review r LEFT JOIN admin_unit c ON c.id = r.commune_id
        LEFT JOIN model_review_item i ON i.review_id = r.id
        WHERE {' AND '.join(where)} GROUP BY r.id, c.name ORDER BY r.reviewed_on DESC, r.id DESC
        LIMIT 500"""), params).mappings()
    return {"reviews": [{k: clean(v) for k, v in r.items()} for r in rows]}


ReviewId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/reviews/{review_id}", responses=responses(401, 403, 404),
            summary="Một đợt xét mô hình / one review")
def get_review(review_id: ReviewId, principal: Principal = Depends(get_principal),
               conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    _check_review_scope(conn, principal, _review(conn, review_id))
    return review_view(conn, review_id)


def apply_decision(conn: Connection, principal: Principal, rev: dict[str, Any], item: dict[str, Any],
                   decision: str, reason: str | None) -> None:
    """Record the decision, the model's status event and (dissolve) its new status, with audit."""
    before_item = {k: clean(v) for k, v in item.items()}
    conn.execute(text("""UPDATE model_review_item SET decision = :d, decision_reason = :r, decided_by = :by,
            decided_at = now(), version = version + 1 WHERE id = :id AND decision IS NULL"""),
                 {"d": decision, "r": reason, "by": principal.username, "id": item["id"]})
    model = conn.execute(text("SELECT id, status, status_since, version FROM security_model WHERE id = :m "
                              "FOR UPDATE"), {"m": item["model_id"]}).mappings().one()
    after_status = "dissolved" if decision == "dissolve" else model["status"]
    conn.execute(text("""INSERT INTO model_status_event (model_id, on_date, decision, status_before,
            status_after, review_item_id, decided_by, reason)
        VALUES (:m, :on, :d, :b, :a, :i, :by, :r)"""),
                 {"m": model["id"], "on": rev["reviewed_on"], "d": decision, "b": model["status"],
                  "a": after_status, "i": item["id"], "by": principal.username,
                  "r": reason or item["reason_vi"]})
    if decision == "dissolve" and model["status"] != "dissolved":
        conn.execute(text("""UPDATE security_model SET status = 'dissolved', status_since = :on,
                version = version + 1, updated_at = now() WHERE id = :m"""),
                     {"on": rev["reviewed_on"], "m": model["id"]})
        record(conn, principal, "update", "models", model["id"],
               before={"status": model["status"], "status_since": model["status_since"]},
               after={"status": "dissolved", "status_since": rev["reviewed_on"]},
               detail={"review_id": rev["id"], "review_item_id": item["id"]})
    record(conn, principal, "decide", "model_review_item", item["id"], before=before_item,
           after={"decision": decision, "decision_reason": reason}, detail={"review_id": rev["id"]})


def _item(conn: Connection, review_id: int, item_id: int) -> dict[str, Any]:
    row = conn.execute(text("""SELECT id, review_id, model_id, proposal, reason_vi, decision, version
        FROM model_review_item WHERE id = :i AND review_id = :r FOR UPDATE"""),
                       {"i": item_id, "r": review_id}).mappings().first()
    if row is None:
        raise Problem(404, f"Không có mục {item_id} trong đợt xét {review_id}",
                      f"No item {item_id} in review {review_id}",
                      [field_error("item_id", "không tồn tại", "unknown")])
    return dict(row)


@router.put("/reviews/{review_id}/items/{item_id}", responses=responses(401, 403, 404, 422) | {
    409: {"description": "Đã quyết định / already decided"}},
    summary="Xác nhận hoặc thay đổi đề xuất / confirm or change a proposal")
def decide(body: DecisionIn, review_id: ReviewId, item_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
           principal: Principal = Depends(require_roles(*DECIDE_ROLES)),
           conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    rev = _review(conn, review_id)
    _check_review_scope(conn, principal, rev)
    item = _item(conn, review_id, item_id)
    if item["decision"] is not None:
        raise Problem(409, "Mục này đã được quyết định", "This item has already been decided",
                      [field_error("item_id", f"đã quyết định: {item['decision']}",
                                   f"already decided: {item['decision']}")])
    if body.decision != item["proposal"] and not body.reason:
        raise bad("reason", "cần nêu lý do khi thay đổi đề xuất", "a reason is required when changing "
                  "the proposal")
    apply_decision(conn, principal, rev, item, body.decision, body.reason)
    conn.commit()
    return review_view(conn, review_id)


@router.post("/reviews/{review_id}/confirm", responses=responses(401, 403, 404),
             summary="Xác nhận mọi đề xuất còn mở / confirm every open proposal as proposed")
def confirm_all(review_id: ReviewId, principal: Principal = Depends(require_roles(*DECIDE_ROLES)),
                conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    rev = _review(conn, review_id)
    _check_review_scope(conn, principal, rev)
    ids = conn.execute(text("SELECT id FROM model_review_item WHERE review_id = :r AND decision IS NULL "
                            "ORDER BY id"), {"r": review_id}).scalars().all()
    for item_id in ids:
        item = _item(conn, review_id, item_id)
        apply_decision(conn, principal, rev, item, item["proposal"], None)
    conn.commit()
    return review_view(conn, review_id)


@router.post("/reviews/{review_id}/items/{item_id}/replicas", status_code=201,
             responses=responses(401, 403, 404, 422),
             summary="Nhân rộng: dự kiến xây dựng mô hình mới / plan new models from a replicated one")
def replicas(body: ReplicasIn, review_id: ReviewId, item_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
             principal: Principal = Depends(require_roles(*OPEN_ROLES)),
             conn: Connection = Depends(get_conn)) -> dict[str, Any]:
    rev = _review(conn, review_id)
    _check_review_scope(conn, principal, rev)
    item = _item(conn, review_id, item_id)
    if item["decision"] != "replicate":
        raise bad("item_id", "chỉ mô hình được quyết định nhân rộng", "only a model decided 'replicate'")
    if body.launch_date < rev["reviewed_on"]:
        raise bad("launch_date", "không trước ngày xét", "must not be before the review")
    model = conn.execute(text("""SELECT m.id, m.name, m.type_code, t.name_vi FROM security_model m
        JOIN model_type t ON t.code = m.type_code WHERE m.id = :m"""),
                         {"m": item["model_id"]}).mappings().one()
    created = []
    errors = []
    units = []
    for i, code in enumerate(body.villages):
        try:
            unit = unit_row(conn, "village", code, body.launch_date)
        except Problem:
            errors.append(field_error(f"villages.{i}", f"không có thôn mã {code}", f"no village {code}"))
            continue
        try:
            require_scope(principal, unit)
        except Problem:
            errors.append(field_error(f"villages.{i}", "ngoài phạm vi tài khoản",
                                      "outside the account's scope"))
            continue
        units.append(unit)
    if errors:
        raise Problem(422, "Thôn không hợp lệ", "Invalid villages", errors)
    for unit in units:
        commune = unit_row(conn, "commune", unit["commune_code"], body.launch_date)
        lid = conn.execute(text("""INSERT INTO launch_point (name, theme, launch_date, status, notes,
                commune_id, village_id, created_by, model_type_code, source_model_id)
            VALUES (:name, :theme, :d, 'planned', :notes, :cid, :vid, :by, :t, :m) RETURNING id"""),
            {"name": f"Nhân rộng {model['name_vi']} – {unit['name']}",
             "theme": f"Nhân rộng mô hình {model['name_vi']}", "d": body.launch_date,
             "notes": f"Nhân rộng từ mô hình \"{model['name']}\" (đợt xét {rev['kind']} {rev['year']})",
             "cid": commune["id"], "vid": unit["id"], "by": principal.username, "t": model["type_code"],
             "m": model["id"]}).scalar_one()
        record(conn, principal, "create", "launch_points", lid,
               after={"village": unit["code"], "model_type_code": model["type_code"],
                      "source_model_id": model["id"], "launch_date": body.launch_date},
               detail={"review_id": review_id, "review_item_id": item_id})
        created.append({"id": lid, "village_code": unit["code"], "launch_date": body.launch_date.isoformat()})
    conn.commit()
    return {"created": created, "source_model_id": model["id"]}
