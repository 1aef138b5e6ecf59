"""`antt user ...`: accounts from the shell (add, list, key).

Each command is one transaction; bad input (unknown role, unknown scope unit, short password)
exits with code 2 and a bilingual message, never a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

app = typer.Typer(help="Tài khoản / accounts", no_args_is_help=True)
console = Console(stderr=True)


def _engine():
    from antt.db import database_url, make_engine

    return make_engine(database_url(start=True))


@app.command("add")
def add(
    username: str = typer.Argument(..., help="Tên đăng nhập / username"),
    role: str = typer.Option(..., "--role", help="admin | police | planner | committee | viewer"),
    province: str | None = typer.Option(None, "--province", help="Mã tỉnh / province code scope"),
    commune: str | None = typer.Option(None, "--commune", help="Mã xã / commune code scope"),
    full_name: str | None = typer.Option(None, "--full-name"),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Đọc mật khẩu từ stdin / read the password from stdin"),
    replace: bool = typer.Option(False, "--replace", help="Đặt lại nếu đã có / reset if it exists"),
) -> None:
    """Create an account scoped to the whole country, a province or a commune."""
    from antt.accounts import AccountError, create_user

    if province and commune:
        console.print("[red]Chỉ một trong --province / --commune; give only one of them[/red]")
        raise typer.Exit(2)
    scope_level, scope_code = ("province", province) if province else (
        ("commune", commune) if commune else ("all", None))
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Mật khẩu / password", hide_input=True, confirmation_prompt=True)
    eng = _engine()
    try:
        with eng.begin() as conn:
            account = create_user(conn, username, password, role, scope_level, scope_code,
                                  full_name=full_name, replace=replace)
    except AccountError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    finally:
        eng.dispose()
    scope = account.scope_code or "all"
    typer.echo(f"{account.username}\t{account.role}\t{account.scope_level}:{scope}")


@app.command("list")
def list_users() -> None:
    """List accounts (never their hashes)."""
    eng = _engine()
    try:
        with eng.connect() as conn:
            rows = conn.execute(text(
                "SELECT u.username, u.role, u.scope_level, u.scope_code, u.active, u.is_demo, "
                "(SELECT count(*) FROM api_key k WHERE k.user_id = u.id AND k.revoked_at IS NULL) "
                "AS keys FROM app_user u ORDER BY u.username")).all()
    finally:
        eng.dispose()
    table = Table("username", "role", "scope", "active", "demo", "api keys")
    for r in rows:
        table.add_row(r.username, r.role, f"{r.scope_level}:{r.scope_code or 'all'}",
                      str(r.active), str(r.is_demo), str(r.keys))
    Console().print(table)


@app.command("key")
def key(username: str = typer.Argument(...),
        label: str | None = typer.Option(None, "--label")) -> None:
    """Print a new API key for USERNAME (shown once; only its hash is stored)."""
    from antt.accounts import AccountError, create_api_key

    eng = _engine()
    try:
        with eng.begin() as conn:
            api_key = create_api_key(conn, username, label)
    except AccountError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    finally:
        eng.dispose()
    typer.echo(api_key)
