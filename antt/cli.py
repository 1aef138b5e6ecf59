"""`antt`: the one command-line tool for everything a person does from a shell.

Sub-commands live next to the code they drive; this module only wires them together.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console

app = typer.Typer(help="antt-map: bản đồ phong trào toàn dân bảo vệ ANTQ / ANTQ movement map",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="Cụm PostGIS nhúng / the embedded PostGIS cluster", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(code)


@db_app.command("up")
def db_up() -> None:
    """Start (or reuse) the embedded cluster and print its URL."""
    from antt.cluster import ClusterError
    from antt.db import database_url
    from antt.settings import get_settings

    if get_settings().database_url:
        console.print("DATABASE_URL is set: the embedded cluster is not used.")
        typer.echo(database_url())
        return
    try:
        typer.echo(database_url(start=True))
    except ClusterError as exc:
        _fail(str(exc))


@db_app.command("down")
def db_down() -> None:
    """Stop the embedded cluster (data is kept)."""
    from antt.cluster import default_cluster

    default_cluster().down()
    console.print("Đã dừng / stopped")


@db_app.command("status")
def db_status() -> None:
    """Show whether the cluster runs, and the PostgreSQL/PostGIS versions."""
    from antt.cluster import default_cluster
    from antt.db import DatabaseError, check_postgis, database_url, make_engine
    from antt.settings import get_settings

    info: dict[str, object] = {}
    if get_settings().database_url:
        info["external"] = True
    else:
        info.update(default_cluster().status())
    try:
        eng = make_engine(database_url())
        info.update(check_postgis(eng))
        eng.dispose()
    except (DatabaseError, Exception) as exc:  # noqa: BLE001 - status reports, never raises
        info["error"] = str(exc).splitlines()[0]
    typer.echo(json.dumps(info, indent=2, ensure_ascii=False))


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as libpq (psql, pg_dump) takes it: 'postgresql+psycopg2://' is not a
    scheme libpq knows; the rest (user, password, host, port, database, query) is kept."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


@db_app.command("replica")
def db_replica(
    down: bool = typer.Option(False, "--down", help="Stop the replica (data and slot kept)."),
    status: bool = typer.Option(False, "--status", help="Print its state and lag as JSON."),
    remove: bool = typer.Option(False, "--remove", help="Stop it, delete it, drop its slot."),
) -> None:
    """A streaming read replica of the embedded cluster on loopback (pg_basebackup, a
    replication slot, standby.signal), under .antt/replica on its own port; prints the
    READ_DATABASE_URL to give `antt serve`."""
    from antt.cluster import ClusterError, default_replica
    from antt.settings import get_settings

    if get_settings().database_url:
        _fail("DATABASE_URL is set: replicate an external server with its own tools, then set "
              "READ_DATABASE_URL.")
    replica = default_replica()
    try:
        if status:
            typer.echo(json.dumps(replica.status(), indent=2, ensure_ascii=False))
        elif down:
            replica.down()
            console.print("Đã dừng bản sao / replica stopped")
        elif remove:
            replica.remove()
            console.print("Đã xóa bản sao và slot / replica and its slot removed")
        else:
            url = replica.up()
            console.print(f"Bản sao đang chạy / replica streaming on port {replica.port}")
            typer.echo("READ_DATABASE_URL=" + libpq_url(url))
    except ClusterError as exc:
        _fail(str(exc))


@db_app.command("url")
def db_url(libpq: bool = typer.Option(False, "--libpq",
                                      help="The form psql/pg_dump accept (postgresql://...)")
           ) -> None:
    """Print the database URL in force (SQLAlchemy form; --libpq for psql)."""
    from antt.db import database_url

    url = database_url()
    typer.echo(libpq_url(url) if libpq else url)


def _psql_binary() -> str | None:
    """psql on PATH, else in the PostgreSQL the embedded cluster uses."""
    import shutil
    import subprocess

    found = shutil.which("psql")
    if found:
        return found
    try:
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    candidate = f"{bindir}/psql"
    return candidate if shutil.which(candidate) else None


@db_app.command("psql", context_settings={"allow_extra_args": True,
                                          "ignore_unknown_options": True})
def db_psql(ctx: typer.Context) -> None:
    """Open psql on the project database (DATABASE_URL or the embedded cluster, started if
    needed). Extra arguments go to psql, e.g. `antt db psql -c 'select 1'`."""
    import signal
    import subprocess

    from antt.cluster import ClusterError
    from antt.db import database_url

    psql = _psql_binary()
    if psql is None:
        _fail("Không tìm thấy psql / psql not found (apt-get install postgresql-client-15)")
    try:
        url = libpq_url(database_url(start=True))
    except ClusterError as exc:
        _fail(str(exc))
    # psql handles Ctrl-C itself (it cancels the query); this process only waits for it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = subprocess.run([psql, url, *ctx.args]).returncode
    finally:
        signal.signal(signal.SIGINT, previous)
    raise typer.Exit(code)


@app.command("migrate")
def migrate(revision: str = typer.Argument("heads")) -> None:
    """Bring the schema to REVISION (default: head)."""
    from antt import migrate as m
    from antt.db import check_postgis, database_url, make_engine

    url = database_url(start=True)
    m.upgrade(url, revision)
    eng = make_engine(url)
    versions = check_postgis(eng)
    eng.dispose()
    console.print(f"Schema at {m.current(url)}; PostGIS {versions['postgis']}")


@app.command("serve")
def serve(
    host: str = typer.Option(None, help="Default: ANTT_HOST or 127.0.0.1"),
    port: int = typer.Option(None, help="Default: ANTT_PORT or 8000"),
    workers: int = typer.Option(1, help="uvicorn worker processes (they share nothing but the "
                                        "database: see README, 'Several workers and a replica')"),
) -> None:
    """Serve the API and the map page."""
    import uvicorn

    from antt.db import database_url
    from antt.settings import get_settings

    s = get_settings()
    database_url(start=True)
    # Behind a proxy, the client's address (the failed-login limit is per IP) comes from
    # X-Forwarded-For, trusted only from ANTT_FORWARDED_ALLOW_IPS.
    uvicorn.run("api.app:create_app", factory=True, host=host or s.host, port=port or s.port,
                workers=workers, proxy_headers=bool(s.forwarded_allow_ips),
                forwarded_allow_ips=s.forwarded_allow_ips, timeout_keep_alive=s.keep_alive_s)


def _register_subcommands() -> None:
    """Sub-commands owned by the packages they drive (import, demo, user, export, bench)."""
    import importlib

    for module, name in (
        ("data.importers.cli", "import"),
        ("data.demo.cli", "demo"),
        ("api.cli", "user"),
        ("web.export_cli", "export"),
        ("bench.cli", "bench"),
    ):
        mod = importlib.import_module(module)
        if isinstance(mod.app, typer.Typer) and getattr(mod, "SINGLE_COMMAND", False):
            app.command(name)(mod.main)
        else:
            app.add_typer(mod.app, name=name)


_register_subcommands()

if __name__ == "__main__":
    app()
