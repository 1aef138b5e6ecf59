"""`antt demo`: generate demo data and print the demo accounts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from data.importers.cli import warm_coverage

SINGLE_COMMAND = True
app = typer.Typer(help="Dữ liệu mẫu / demo data")
console = Console()


def accounts_table(result) -> Table:
    table = Table(title="Tài khoản mẫu / demo accounts")
    for header in ("Tên đăng nhập / username", "Mật khẩu / password", "Vai trò / role", "Phạm vi / scope"):
        table.add_column(header)
    for a in result.accounts:
        table.add_row(a.username, a.password, a.role, a.scope)
    return table


@app.command()
def main(
    boundaries: Path = typer.Option(None, "--boundaries", help="2025 commune file (default: ANTT_BOUNDARIES; "
                                    "neither: a synthetic province)"),
    existing: bool = typer.Option(False, "--existing", help="Use the communes already in the database."),
    province: str = typer.Option(None, "--province", help="Only this province code."),
    seed: int = typer.Option(20250819, "--seed", help="Same seed, same data."),
    years: int = typer.Option(3, "--years", min=1, max=10),
    incidents: int = typer.Option(10_000, "--incidents", min=0),
    villages_per_commune: int = typer.Option(9, "--villages-per-commune", min=1, max=60),
    until: str = typer.Option(None, "--until", help="Last day of the data, YYYY-MM-DD "
                              "(default: end of last month)"),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing if the database has any data."),
    scope: str = typer.Option("province", "--scope", help="province (one file or province) | country "
                              "(all 34 provinces, 3,321 communes; loads the national boundaries if missing)"),
    incidents_per_year: int = typer.Option(None, "--incidents-per-year", min=0,
                                           help="Incidents per year (overrides --incidents: × --years)."),
    with_pre2025: bool = typer.Option(False, "--with-pre2025", help="--scope country: also load the "
                                      "pre-2025 units and their lineage, so old incidents have their era"),
) -> None:
    """Dữ liệu mẫu / demo data: villages, models, fire groups, institutions, incidents, accounts."""
    from antt.db import database_url, make_engine
    from antt.settings import get_settings
    from data.demo.boundaries import DemoBoundaryError
    from data.demo.generate import EXISTING, generate, has_data

    try:
        until_date = dt.date.fromisoformat(until) if until else None
    except ValueError:
        console.print(f"[red]--until: ngày không hợp lệ / invalid date {until!r} (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    if scope not in ("province", "country"):
        console.print(f"[red]--scope: {scope!r} không hợp lệ / invalid (province | country)[/red]")
        raise typer.Exit(2)
    if incidents_per_year is not None:
        incidents = incidents_per_year * years
    source = EXISTING if existing else (boundaries or get_settings().boundaries)
    engine = make_engine(database_url(start=True))
    if scope == "country":
        with engine.connect() as conn:
            if if_empty and has_data(conn):
                console.print("CSDL đã có dữ liệu, bỏ qua / the database already has data: nothing done")
                engine.dispose()
                return
        if boundaries is None:
            from data.demo.national import ensure_national_boundaries

            for line in ensure_national_boundaries(engine, with_pre2025=with_pre2025):
                console.print(line)
            source = EXISTING
        if_empty = False
    try:
        result = generate(engine, source, province_code=province, seed=seed, incidents=incidents,
                          villages_per_commune=villages_per_commune, years=years, until=until_date,
                          if_empty=if_empty, progress=True)
    except (DemoBoundaryError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    if result.skipped:
        console.print("CSDL đã có dữ liệu, bỏ qua / the database already has data: nothing done")
        return
    label = " (dữ liệu giả lập / synthetic)" if result.synthetic else ""
    console.print(f"Tỉnh / province {', '.join(result.province_codes)}{label}: "
                  + ", ".join(f"{k} {v:,}" for k, v in result.counts.items()))
    hotspots = [f"{h.village_name}, {h.commune_name}" for h in result.plan.hotspots]
    more = (f"; … (+{len(hotspots) - 6:,}, xem / see demo_manifest)" if len(hotspots) > 6 else "")
    console.print("Điểm nóng cài sẵn / planted hotspots: " + "; ".join(hotspots[:6]) + more)
    console.print(f"Thôn chưa có mô hình đạt / uncovered villages: {len(result.plan.uncovered)}")
    console.print(accounts_table(result))
    warm_coverage(None)
