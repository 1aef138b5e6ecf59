"""Accounts: roles, scopes, argon2 password hashes and API keys.

Why here and not in api/: the shell (`antt user add`, `antt demo`) creates accounts too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, event, text

ROLES = ("admin", "police", "planner", "committee", "viewer")
# Roles that may see exact incident points. Everyone else gets aggregates only.
POINT_ROLES = frozenset({"admin", "police"})
SCOPE_LEVELS = ("all", "province", "commune")

_hasher = PasswordHasher()
# Called whenever this process changes an account or a key (api.deps clears its principal cache).
_change_listeners: list[Callable[[], None]] = []


class AccountError(ValueError):
    """Bad account input (unknown role, bad scope, duplicate user)."""


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    scope_level: str
    scope_code: str | None
    full_name: str | None = None

    @property
    def sees_points(self) -> bool:
        return self.role in POINT_ROLES


def on_accounts_changed(listener: Callable[[], None]) -> None:
    """Register `listener` to be called when this process changes an account or an API key."""
    _change_listeners.append(listener)


def accounts_changed(conn: Connection) -> None:
    """Notify the listeners now and again when `conn` commits: a request that reads the old
    row between the two (before the commit) cannot leave a stale entry behind."""

    def notify(*_args) -> None:
        for listener in _change_listeners:
            listener()

    notify()
    event.listen(conn, "commit", notify, once=True)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _row_to_account(row) -> Account:
    return Account(row.id, row.username, row.role, row.scope_level, row.scope_code, row.full_name)


def create_user(conn: Connection, username: str, password: str, role: str,
                scope_level: str = "all", scope_code: str | None = None,
                full_name: str | None = None, is_demo: bool = False,
                replace: bool = False) -> Account:
    """Create (or with replace=True, reset) an account. Scope codes must name a real unit."""
    if role not in ROLES:
        raise AccountError(f"Vai trò không hợp lệ / unknown role {role!r}; one of {ROLES}")
    if scope_level not in SCOPE_LEVELS:
        raise AccountError(f"Phạm vi không hợp lệ / unknown scope {scope_level!r}")
    if (scope_level == "all") != (scope_code is None):
        raise AccountError("Phạm vi 'all' không có mã; các phạm vi khác cần mã / "
                           "scope 'all' takes no code; province/commune need one")
    if scope_code is not None:
        found = conn.execute(text(
            "SELECT 1 FROM admin_unit WHERE level = :l AND code = :c LIMIT 1"),
            {"l": scope_level, "c": scope_code}).first()
        if not found:
            raise AccountError(f"Không có đơn vị / no {scope_level} with code {scope_code!r}")
    if len(password) < 8:
        raise AccountError("Mật khẩu tối thiểu 8 ký tự / password needs 8+ characters")
    params = {"u": username, "h": hash_password(password), "r": role, "sl": scope_level,
              "sc": scope_code, "fn": full_name, "d": is_demo}
    conflict = ("ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, "
                "role = EXCLUDED.role, scope_level = EXCLUDED.scope_level, "
                "scope_code = EXCLUDED.scope_code, full_name = EXCLUDED.full_name, active = true"
                if replace else "")
    row = conn.execute(text(
        "INSERT INTO app_user (username, password_hash, role, scope_level, scope_code, "
        f"full_name, is_demo) VALUES (:u, :h, :r, :sl, :sc, :fn, :d) {conflict} "
        "RETURNING id, username, role, scope_level, scope_code, full_name"), params).first()
    if row is None:
        raise AccountError(f"Tài khoản đã tồn tại / user {username!r} already exists")
    accounts_changed(conn)
    return _row_to_account(row)


def authenticate(conn: Connection, username: str, password: str) -> Account | None:
    row = conn.execute(text(
        "SELECT id, username, role, scope_level, scope_code, full_name, password_hash "
        "FROM app_user WHERE username = :u AND active"), {"u": username}).first()
    if row is None or not verify_password(row.password_hash, password):
        return None
    return _row_to_account(row)


def get_account(conn: Connection, username: str) -> Account | None:
    row = conn.execute(text(
        "SELECT id, username, role, scope_level, scope_code, full_name FROM app_user "
        "WHERE username = :u AND active"), {"u": username}).first()
    return _row_to_account(row) if row else None


def create_api_key(conn: Connection, username: str, label: str | None = None) -> str:
    """A new key 'antt_<prefix>_<secret>'; only its hash is stored."""
    account = get_account(conn, username)
    if account is None:
        raise AccountError(f"Không có tài khoản / no user {username!r}")
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(24)
    conn.execute(text(
        "INSERT INTO api_key (user_id, prefix, key_hash, label) VALUES (:u, :p, :h, :l)"),
        {"u": account.id, "p": prefix, "h": hash_password(secret), "l": label})
    accounts_changed(conn)
    return f"antt_{prefix}_{secret}"


def account_for_api_key(conn: Connection, key: str) -> Account | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "antt":
        return None
    row = conn.execute(text(
        "SELECT k.key_hash, u.id, u.username, u.role, u.scope_level, u.scope_code, u.full_name "
        "FROM api_key k JOIN app_user u ON u.id = k.user_id "
        "WHERE k.prefix = :p AND k.revoked_at IS NULL AND u.active"), {"p": parts[1]}).first()
    if row is None or not verify_password(row.key_hash, parts[2]):
        return None
    return _row_to_account(row)
