"""Who is calling: bearer tokens (OAuth2 password flow) or API keys -> a Principal.

Every endpoint that returns data takes a Principal, so role and scope checks happen on the
server, never in the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Connection

from antt.accounts import POINT_ROLES, Account, account_for_api_key, get_account
from antt.db import get_engine
from antt.settings import get_settings
from api.problems import Problem

oauth2 = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    """The caller: an account, its role and the unit it is scoped to."""

    username: str
    role: str
    scope_level: str = "all"
    scope_code: str | None = None

    @property
    def sees_points(self) -> bool:
        """Exact incident points go to police and admin only."""
        return self.role in POINT_ROLES

    @classmethod
    def of(cls, account: Account) -> Principal:
        return cls(account.username, account.role, account.scope_level, account.scope_code)


def issue_token(account: Account) -> str:
    s = get_settings()
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": account.username, "role": account.role, "iat": now,
              "exp": now + dt.timedelta(minutes=s.token_minutes)}
    return jwt.encode(claims, s.signing_key(), algorithm=ALGORITHM)


def get_conn() -> Iterator[Connection]:
    """One connection per request; writes commit explicitly."""
    with get_engine().connect() as conn:
        yield conn


def _unauthorized() -> Problem:
    return Problem(401, "Cần đăng nhập hoặc khóa API hợp lệ",
                   "A valid bearer token or API key is required",
                   headers={"WWW-Authenticate": "Bearer"})


def get_principal(request: Request, token: str | None = Depends(oauth2),
                  conn: Connection = Depends(get_conn)) -> Principal:
    api_key = request.headers.get("X-API-Key")
    if api_key:
        account = account_for_api_key(conn, api_key)
        if account is None:
            raise _unauthorized()
        return Principal.of(account)
    if not token:
        token = request.cookies.get("antt_token")
    if not token:
        raise _unauthorized()
    try:
        claims = jwt.decode(token, get_settings().signing_key(), algorithms=[ALGORITHM])
    except jwt.PyJWTError as exc:
        raise _unauthorized() from exc
    account = get_account(conn, claims.get("sub", ""))
    if account is None:  # deleted or deactivated since the token was issued
        raise _unauthorized()
    return Principal.of(account)


def require_roles(*roles: str):
    """Dependency factory: only these roles pass; others get 403 problem+json."""

    def check(principal: Principal = Depends(get_principal)) -> Principal:
        if principal.role not in roles:
            raise Problem(403, f"Vai trò '{principal.role}' không được phép",
                          f"Role '{principal.role}' may not do this")
        return principal

    return check
