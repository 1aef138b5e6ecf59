"""`antt export map`: a standalone offline HTML report map (and a PNG) of a commune or province."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

app = typer.Typer(help="Xuất bản đồ báo cáo / export report maps", no_args_is_help=True)


@app.command("map")
def export_map_cmd(
    commune: str = typer.Option(None, help="Mã xã / commune code (GSO, 5 digits)"),
    province: str = typer.Option(None, help="Mã tỉnh / province code (2 digits)"),
    out: Path = typer.Option(None, help="HTML file (default exports/<code>.html)"),
    png: Path = typer.Option(None, help="Also write a PNG screenshot (headless Chromium)"),
    on: str = typer.Option(None, help="Reference date YYYY-MM-DD (default today)"),
    start: str = typer.Option(None, help="Incident counts from YYYY-MM-DD (default on - 1 year)"),
) -> None:
    """Write the report map; every asset is inlined, so it opens without any network."""
    from antt.db import database_url, make_engine
    from web.report import ReportError, export_map

    if bool(commune) == bool(province):
        typer.echo("Cần đúng một trong --commune/--province / give exactly one of --commune, --province",
                   err=True)
        raise typer.Exit(2)
    try:
        on_date = dt.date.fromisoformat(on) if on else None
        start_date = dt.date.fromisoformat(start) if start else None
    except ValueError as exc:
        typer.echo(f"Ngày không hợp lệ / invalid date: {exc}", err=True)
        raise typer.Exit(2) from exc
    out = out or Path("exports") / f"{commune or province}.html"
    engine = make_engine(database_url(start=True))
    try:
        html_path, png_path = export_map(engine, out, commune=commune, province=province, png=png,
                                         on=on_date, start=start_date)
    except ReportError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(f"{html_path} ({html_path.stat().st_size / 1024:.0f} KB)")
    if png_path:
        typer.echo(f"{png_path} ({png_path.stat().st_size / 1024:.0f} KB)")
