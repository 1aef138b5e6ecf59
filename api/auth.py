"""Login (OAuth2 password flow → JWT + HttpOnly cookie), logout and `GET /auth/me`.

Failed logins are rate limited per username and per client IP (settings.login_rate_limit per
minute, counted in PostgreSQL so every worker shares it: see api/ratelimit.py); over the limit
→ 429 problem+json with Retry-After.
Every login, failed or not, leaves an audit row.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from antt.accounts import authenticate
from antt.settings import get_settings
from api.audit import record
from api.deps import Principal, get_conn, get_principal, issue_token
from api.problems import Problem
from api.ratelimit import FailureWindow

COOKIE = "antt_token"

# Who may write which collection (the contract); the page uses it to show edit tools.
EDITABLE_BY_ROLE: dict[str, tuple[str, ...]] = {
    "admin": ("models", "fire_groups", "incidents", "institutions", "launch_points"),
    "police": ("incidents",),
    "planner": ("models", "fire_groups", "institutions", "launch_points"),
    "committee": (),
    "viewer": (),
}


def _problem(code: int, desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/problem+json": {}}}


@lru_cache
def login_limiter() -> FailureWindow:
    """The limiter's settings (its counts live in the database; tests hold its clock)."""
    return FailureWindow(get_settings().login_rate_limit, 60.0)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    username: str
    role: str
    scope_level: str
    scope_code: str | None


class Me(BaseModel):
    username: str
    role: str
    scope_level: str
    scope_code: str | None
    sees_points: bool = Field(description="Thấy điểm vụ việc chính xác / sees exact incident points")
    can_edit: list[str] = Field(description="Lớp được sửa / collections this account may edit")


router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenOut, summary="Đăng nhập / log in (OAuth2 password)",
             responses={401: _problem(401, "Sai tên hoặc mật khẩu / bad credentials"),
                        422: _problem(422, "Thiếu trường / missing field"),
                        429: _problem(429, "Quá nhiều lần sai / too many failed logins")})
def login(request: Request, response: Response,
          form: Annotated[OAuth2PasswordRequestForm, Depends()],
          conn: Connection = Depends(get_conn)) -> TokenOut:
    ip = request.client.host if request.client else "unknown"
    keys = (f"user:{form.username}", f"ip:{ip}")
    limiter = login_limiter()
    wait, reserved = limiter.reserve(conn, *keys)  # counted before the password is checked
    if wait is not None:
        raise Problem(429, f"Quá nhiều lần đăng nhập sai; thử lại sau {wait} giây",
                      f"Too many failed logins; retry in {wait} s",
                      headers={"Retry-After": str(wait)}, retry_after=wait)
    account = authenticate(conn, form.username, form.password)
    if account is None:  # the reserved rows stay: they are this failure
        record(conn, None, "login_failed", "app_user", form.username, detail={"ip": ip})
        conn.commit()
        raise Problem(401, "Sai tên đăng nhập hoặc mật khẩu", "Wrong username or password",
                      headers={"WWW-Authenticate": "Bearer"})
    limiter.forgive(conn, reserved, clear=f"user:{form.username}")
    principal = Principal.of(account)
    record(conn, principal, "login", "app_user", account.username, detail={"ip": ip})
    conn.commit()
    token = issue_token(account)
    response.set_cookie(COOKIE, token, max_age=get_settings().token_minutes * 60, httponly=True,
                        samesite="strict", path="/")
    return TokenOut(access_token=token, username=account.username, role=account.role,
                    scope_level=account.scope_level, scope_code=account.scope_code)


@router.post("/auth/logout", status_code=204, summary="Đăng xuất / log out (clears the cookie)")
def logout() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/auth/me", response_model=Me, summary="Tài khoản hiện tại / the current account",
            responses={401: _problem(401, "Chưa đăng nhập / not authenticated")})
def me(principal: Principal = Depends(get_principal)) -> Me:
    return Me(username=principal.username, role=principal.role,
              scope_level=principal.scope_level, scope_code=principal.scope_code,
              sees_points=principal.sees_points,
              can_edit=list(EDITABLE_BY_ROLE.get(principal.role, ())))
