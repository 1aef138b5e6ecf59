"""Who is calling: bearer tokens (OAuth2 password flow) or API keys -> a Principal.

Every endpoint that returns data takes a Principal, so role and scope checks happen on the
server, never in the page.

A checked credential is trusted for `ANTT_AUTH_CACHE_SECONDS` (default 5 s) before its account
is loaded again (`PrincipalCache`): see there for what that does and does not change.

Which database a request reads from (the primary or a replica) is decided in api/readroute.py;
`get_conn` gives that connection. Accounts are always loaded from the primary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from antt.accounts import (
    POINT_ROLES,
    Account,
    account_for_api_key,
    get_account,
    on_accounts_changed,
)
from antt.db import get_engine, is_replica, primary_of
from antt.listen import listen
from antt.settings import get_settings
from api.problems import Problem
from api.readroute import request_connection

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


def get_conn(request: Request) -> Iterator[Connection]:
    """One connection per request; writes commit explicitly. Reads (GET, HEAD) get a replica's
    when one is fit to answer (api/readroute.py), everything else the primary's."""
    yield from request_connection(request)


def _unauthorized() -> Problem:
    return Problem(401, "Cần đăng nhập hoặc khóa API hợp lệ",
                   "A valid bearer token or API key is required",
                   headers={"WWW-Authenticate": "Bearer"})


class PrincipalCache:
    """Credential -> Principal for a few seconds, so a request need not load its account.

    Why: every authenticated request loaded its account (a database round trip; an API key
    also an argon2 verification, tens of milliseconds), which was most of the fixed cost of a
    small vector tile.

    What stays the same: the key is a hash of the whole credential (bearer token or API key),
    never the username; a token's signature and expiry are checked before it is cached and its
    entry never outlives the token's `exp`; failures are never cached. Accounts and keys
    changed through this process (`antt.accounts.create_user`, `create_api_key`) clear the
    cache at once and again at commit, and a lookup begun before a clear is not stored
    (`generation`), so such a change is never hidden.

    Other processes: every change to `app_user` or `api_key`, by whoever (another worker or
    host, the `antt user` CLI, psql), sends a notification at commit (migration 0007) that
    every worker listens for (`antt.listen`) and answers by clearing its cache: such a change
    is seen at once. If that connection is down, the cache is cleared when it drops and when it
    is back, and meanwhile a change is seen at most `ttl` seconds late — the bound holds
    whatever happens to the listener. `ttl` 0 turns the cache off. The cache belongs to one
    database (its primary engine): a new engine empties it. Each worker has its own copy; the
    truth is the primary's rows, which every lookup reads (never a replica, which may lag).
    """

    def __init__(self, maxsize: int = 4096, clock=time.monotonic) -> None:
        self.maxsize, self.clock = maxsize, clock
        self._entries: dict[bytes, tuple[float, Principal]] = {}
        self._owner: object | None = None
        self._lock = threading.Lock()
        self.generation = 0  # bumped by clear(): a lookup begun before it is not stored

    @staticmethod
    def key(kind: str, credential: str) -> bytes:
        return hashlib.blake2b(f"{kind}:{credential}".encode(), digest_size=20).digest()

    def get(self, owner: object, key: bytes) -> Principal | None:
        if owner is not self._owner:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, owner: object, key: bytes, principal: Principal, ttl: float,
            generation: int) -> None:
        if ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return
            if owner is not self._owner:
                self._entries, self._owner = {}, owner
            now = self.clock()
            if len(self._entries) >= self.maxsize:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= self.maxsize:
                    self._entries = {}
            self._entries[key] = (now + ttl, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
            self.generation += 1


principal_cache = PrincipalCache()
on_accounts_changed(principal_cache.clear)
ACCOUNTS_CHANNEL = "antt_accounts"  # NOTIFY'd by the triggers of migration 0007


def _on_primary(conn: Connection, lookup):
    """Run `lookup(conn)` on the primary: `conn` itself, or a short primary connection when
    `conn` reads from a replica (a replica may not have replayed a just-disabled account).
    If the primary cannot be reached, the replica's copy is used: nothing can be changed on
    a primary that is down, so the replica holds the latest account rows there are."""
    if not is_replica(conn.engine):
        return lookup(conn)
    try:
        primary = get_engine().connect()
    except DBAPIError:
        return lookup(conn)
    with primary:
        return lookup(primary)


def authenticate(request: Request, token: str | None, conn: Connection) -> Principal:
    """The caller of `request` (bearer token, `antt_token` cookie or X-API-Key), else 401."""
    ttl = get_settings().auth_cache_seconds
    owner, generation = primary_of(conn.engine), principal_cache.generation
    if ttl > 0:
        listen(owner, ACCOUNTS_CHANNEL, principal_cache.clear)
    api_key = request.headers.get("X-API-Key")
    if api_key:
        key = _credential_key(request, token)
        principal = principal_cache.get(owner, key)
        if principal is None:
            account = _on_primary(conn, lambda c: account_for_api_key(c, api_key))
            if account is None:
                raise _unauthorized()
            principal = Principal.of(account)
            principal_cache.put(owner, key, principal, ttl, generation)
        return principal
    token = token or request.cookies.get("antt_token")
    key = _credential_key(request, token)
    if key is None:
        raise _unauthorized()
    principal = principal_cache.get(owner, key)
    if principal is not None:
        return principal
    try:
        claims = jwt.decode(token, get_settings().signing_key(), algorithms=[ALGORITHM])
    except jwt.PyJWTError as exc:
        raise _unauthorized() from exc
    account = _on_primary(conn, lambda c: get_account(c, claims.get("sub", "")))
    if account is None:  # deleted or deactivated since the token was issued
        raise _unauthorized()
    principal = Principal.of(account)
    exp = claims.get("exp")
    if isinstance(exp, int | float):  # never trusted past the token's own expiry
        ttl = min(ttl, exp - time.time())
    principal_cache.put(owner, key, principal, ttl, generation)
    return principal


def cached_principal(request: Request, token: str | None) -> Principal | None:
    """The caller of `request` if its credential is in the principal cache, else None; no
    database, no signature check (a cached token was checked before it was stored, and its
    entry never outlives it). For the tile memo's fast path (api/tiles.py): a miss goes the
    normal way, through `authenticate`."""
    if get_settings().auth_cache_seconds <= 0:
        return None
    key = _credential_key(request, token)
    return None if key is None else principal_cache.get(get_engine(), key)


def _credential_key(request: Request, token: str | None) -> bytes | None:
    """The principal cache's key of the request's credential: X-API-Key first, else the bearer
    token, else the `antt_token` cookie; None without any."""
    api_key = request.headers.get("X-API-Key")
    if api_key:
        return PrincipalCache.key("key", api_key)
    token = token or request.cookies.get("antt_token")
    return PrincipalCache.key("jwt", token) if token else None


def get_principal(request: Request, token: str | None = Depends(oauth2),
                  conn: Connection = Depends(get_conn)) -> Principal:
    return authenticate(request, token, conn)


def require_roles(*roles: str):
    """Dependency factory: only these roles pass; others get 403 problem+json."""

    def check(principal: Principal = Depends(get_principal)) -> Principal:
        if principal.role not in roles:
            raise Problem(403, f"Vai trò '{principal.role}' không được phép",
                          f"Role '{principal.role}' may not do this")
        return principal

    return check
