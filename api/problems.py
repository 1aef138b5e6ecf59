"""RFC 9457 problem+json errors, bilingual (Vietnamese first, then English).

Every error the API returns goes through here, so the shape is the same everywhere:
``{"type", "title", "status", "detail", "detail_vi", "detail_en", "errors": [{"field", ...}]}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException  # also the router's own 404/405

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_TITLES = {
    400: ("Yêu cầu không hợp lệ", "Bad request"),
    401: ("Chưa đăng nhập", "Not authenticated"),
    403: ("Không có quyền", "Forbidden"),
    404: ("Không tìm thấy", "Not found"),
    409: ("Xung đột dữ liệu", "Conflict"),
    412: ("Dữ liệu đã bị người khác thay đổi", "Precondition failed (stale write)"),
    413: ("Kết quả quá lớn", "Result too large"),
    422: ("Dữ liệu không hợp lệ", "Unprocessable content"),
    428: ("Thiếu If-Match", "Precondition required"),
    429: ("Quá nhiều yêu cầu", "Too many requests"),
    500: ("Lỗi máy chủ", "Internal server error"),
    503: ("Dịch vụ tạm thời không sẵn sàng", "Service unavailable"),
    507: ("Hết chỗ lưu trữ", "Insufficient storage"),
}


class Problem(Exception):
    """Raise anywhere in the API to answer with problem+json."""

    def __init__(self, status: int, vi: str, en: str, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(en)
        self.status, self.vi, self.en = status, vi, en
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra


def field_error(field: str, vi: str, en: str) -> dict[str, str]:
    return {"field": field, "message_vi": vi, "message_en": en, "message": f"{vi} / {en}"}


def problem_response(status: int, vi: str, en: str, errors: list[dict[str, Any]] | None = None,
                     headers: dict[str, str] | None = None, instance: str | None = None,
                     **extra: Any) -> JSONResponse:
    title_vi, title_en = _TITLES.get(status, ("Lỗi", "Error"))
    body: dict[str, Any] = {
        "type": f"https://antt-map.local/problems/{status}",
        "title": f"{title_vi} / {title_en}",
        "status": status,
        "detail": f"{vi} / {en}",
        "detail_vi": vi,
        "detail_en": en,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


_UNAVAILABLE = ("Cơ sở dữ liệu tạm thời không truy cập được; hãy thử lại sau giây lát",
                "The database cannot be reached right now; retry in a moment")


def db_problem(exc: BaseException) -> tuple[int, str, str, dict[str, str], str | None]:
    """(status, vi, en, headers, sqlstate) for an error the database (or its pool) raised.

    By SQLSTATE: the server unreachable, restarting or shutting down, too many connections,
    out of memory -> 503 with Retry-After (the same request will work once it is back; pools
    ping idle connections and drop dead ones, so workers recover without a restart); a
    statement over the timeout -> 503 (narrow the request); disk full -> 507; a
    concurrent-update conflict -> 503, retry; constraint violations -> 409/422; bad data ->
    400. Anything else -> 500. The SQL and the server's message are logged, never sent (they
    may name tables and values)."""
    if isinstance(exc, PoolTimeout):
        return 503, *_UNAVAILABLE, {"Retry-After": "2"}, None
    orig = getattr(exc, "orig", None)
    code: str = getattr(orig, "pgcode", None) or ""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated or code.startswith("08") or (
            not code and type(orig).__name__ in ("OperationalError", "InterfaceError")):
        return 503, *_UNAVAILABLE, {"Retry-After": "2"}, code or None
    if code in ("57P01", "57P02", "57P03", "53300", "53400", "25006", "58P01"):
        return 503, *_UNAVAILABLE, {"Retry-After": "5"}, code
    if code == "57014":
        return (503, "Truy vấn chạy quá thời gian cho phép (statement_timeout); hãy thu hẹp yêu cầu "
                "(vùng, thời gian, bộ lọc) hoặc thử lại sau",
                "The query ran longer than the server allows (statement_timeout); narrow the "
                "request (area, period, filters) or retry later", {"Retry-After": "30"}, code)
    if code == "53100":
        return (507, "Ổ đĩa của cơ sở dữ liệu đã đầy; dữ liệu chưa được ghi",
                "The database disk is full; nothing was written", {}, code)
    if code == "53200":
        return (503, "Cơ sở dữ liệu hết bộ nhớ; hãy thử lại sau hoặc thu hẹp yêu cầu",
                "The database ran out of memory; retry later or narrow the request",
                {"Retry-After": "30"}, code)
    if code in ("40001", "40P01", "55P03"):
        return (503, "Xung đột với một thao tác đồng thời; hãy thử lại",
                "Conflict with a concurrent operation; retry", {"Retry-After": "1"}, code)
    if code in ("23505", "23503", "23P01"):
        return 409, "Xung đột với dữ liệu đã có", "Conflicts with existing data", {}, code
    if code.startswith("23"):
        return 422, "Dữ liệu vi phạm ràng buộc", "The data violates a constraint", {}, code
    if code.startswith("22"):
        return 400, "Giá trị không hợp lệ", "Invalid value", {}, code
    return 500, "Lỗi cơ sở dữ liệu", "Database error", {}, code or None


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body",)) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.vi, exc.en, exc.errors, exc.headers,
                                instance=request.url.path, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            field_error(_loc(tuple(e.get("loc", ()))),
                        f"Giá trị không hợp lệ: {e.get('msg')}", str(e.get("msg")))
            for e in exc.errors()
        ]
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(422, f"Dữ liệu không hợp lệ ở: {fields}",
                                f"Invalid input at: {fields}", errors, instance=request.url.path)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        status, vi, en, headers, code = db_problem(exc)
        log.warning("%s %s -> %d (SQLSTATE %s): %s", request.method, request.url.path, status,
                    code, str(getattr(exc, "orig", exc)).strip().splitlines()[:1], exc_info=status == 500)
        extra = {"sqlstate": code} if code else {}
        return problem_response(status, vi, en, headers=headers, instance=request.url.path, **extra)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette runs this in its outermost middleware, then re-raises for the server's log.
        return problem_response(500, "Lỗi không mong đợi; đã được ghi lại",
                                "Unexpected error; it has been logged", instance=request.url.path)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        title_vi, title_en = _TITLES.get(exc.status_code, ("Lỗi", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title_en
        return problem_response(exc.status_code, title_vi, detail, headers=exc.headers,
                                instance=request.url.path)
