"""RFC 9457 problem+json errors, bilingual (Vietnamese first, then English).

Every error the API returns goes through here, so the shape is the same everywhere:
``{"type", "title", "status", "detail", "detail_vi", "detail_en", "errors": [{"field", ...}]}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException  # also the router's own 404/405

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

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        title_vi, title_en = _TITLES.get(exc.status_code, ("Lỗi", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title_en
        return problem_response(exc.status_code, title_vi, detail, headers=exc.headers,
                                instance=request.url.path)
