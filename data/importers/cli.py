"""`antt import <kind> FILE`: boundaries, lineage, villages, models, fire-groups, incidents,
institutions, launch-points.

Exit codes: 0 written (or a clean dry run), 1 the file has errors (nothing written; every bad
row is listed), 2 wrong usage.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from data.importers.report import ImportReport

app = typer.Typer(help="Nhập dữ liệu / import data (one transaction per file)",
                  no_args_is_help=True)
console = Console(stderr=True)

# readable=False: an unreadable file is the importers' named, bilingual error, not click's.
FileArg = typer.Argument(..., exists=False, readable=False,
                         help="GeoJSON(.gz), GPKG, Shapefile .zip, CSV, XLSX")
CrsOpt = typer.Option(None, "--crs", help="CRS of the coordinates, e.g. EPSG:9209 (VN-2000 TM-3)")
MapOpt = typer.Option(None, "--map", help="field=column, e.g. --map external_id=so_vu (repeat)")
DryOpt = typer.Option(False, "--dry-run", help="Validate and report; write nothing")
ReportOpt = typer.Option(None, "--report", help="Also write the report as JSON here")
SheetOpt = typer.Option(None, "--sheet", help="XLSX sheet name (default: the first)")
EncOpt = typer.Option(None, "--encoding", help="Text encoding if not UTF-8 (e.g. cp1258)")
DbOpt = typer.Option(None, "--database-url", help="Default: DATABASE_URL or the embedded cluster")


def engine_for(url: str | None):
    """The engine; a cluster that cannot start is a named error, not a traceback."""
    from antt.cluster import ClusterError
    from antt.db import database_url, make_engine

    try:
        return make_engine(url or database_url(start=True))
    except (ClusterError, ValueError) as exc:  # ValueError: a URL SQLAlchemy cannot parse
        console.print(f"[red]Không mở được cơ sở dữ liệu / cannot open the database: {exc}[/red]")
        raise typer.Exit(1) from exc


@contextmanager
def progress_bar():
    """A rich progress bar; yields the callback the importers call (step, advance, total)."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def tick(step: str, advance: int, total: int | None) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], advance=advance, total=total)

        yield tick


def _m2(v: float | None) -> str:
    return "" if v is None else f"{v:,.0f}"


def show(report: ImportReport, report_path: Path | None) -> None:
    """Print the report (every error, every repair, unused columns) and exit 1 on errors."""
    if report_path:
        report.write_json(report_path)
    if report.repairs:
        t = Table(title=f"Đã sửa hình học / geometry repaired ({len(report.repairs)})")
        with_file = any(r.file for r in report.repairs)
        if with_file:
            t.add_column("Tệp / file")
        t.add_column("Dòng / row", justify="right")
        t.add_column("Mã / code")
        t.add_column("Đã làm / what was done", overflow="fold")
        for col in ("m² trước / before", "m² sau / after", "thay đổi / change"):
            t.add_column(col, justify="right")
        for r in report.repairs:
            t.add_row(*([r.file or ""] if with_file else []), str(r.row), r.code or "", r.what,
                      _m2(r.area_before_m2), _m2(r.area_after_m2), _m2(r.area_change_m2))
        console.print(t)
    for note in report.notes:
        console.print(f"[dim]{note}[/dim]")
    if report.unused_columns:
        console.print("Cột không dùng (không nhập) / columns not used (not imported): "
                      + ", ".join(report.unused_columns))
    if report.errors:
        with_file = any(e.file for e in report.errors)
        named = "" if with_file or not report.source else f" — {Path(report.source).name}"
        t = Table(title=f"Lỗi / errors ({len(report.errors)}){named} — không ghi gì / nothing "
                        "written")
        with_code = any(e.code for e in report.errors)
        cols = (["Tệp / file"] if with_file else []) + ["Dòng / row"] + (
            ["Mã / code"] if with_code else []) + ["Trường / field", "Lý do", "Reason",
                                                   "Giá trị / value"]
        for col in cols:
            t.add_column(col, overflow="fold")
        for e in report.sorted_errors():
            cells = ([e.file or ""] if with_file else []) + [
                "tệp / file" if e.row is None else str(e.row)] + (
                [e.code or ""] if with_code else []) + [e.field, e.reason_vi, e.reason_en,
                                                        e.value or ""]
            t.add_row(*cells)
        console.print(t)
        raise typer.Exit(1)
    verb = "kiểm tra xong, không ghi / dry run, nothing written" if report.dry_run else "đã ghi / written"
    repaired = ""
    if report.repairs:
        repaired = (f"; sửa hình học / geometry repaired: {len(report.repairs)} (diện tích thay "
                    f"đổi / area changed {report.area_changed_m2():,.0f} m²)")
    console.print(f"[green]{report.kind}: {report.rows} dòng / rows; thêm / inserted "
                  f"{report.inserted}, cập nhật / updated {report.updated}, không đổi / unchanged "
                  f"{report.unchanged}{repaired} — {verb}[/green]")


def warm_coverage(db: str | None) -> None:
    """After models or outlines changed: overlay the communes whose coverage within the default
    R is now unknown (geo.reach), so the first coverage request need not. Nothing to do is quick."""
    import datetime as dt
    import time

    from geo.reach import DEFAULT_RADIUS_M, warm

    eng = engine_for(db)
    started = time.perf_counter()
    try:
        with console.status(f"Tính sẵn độ phủ trong {DEFAULT_RADIUS_M:.0f} m / "
                            f"precomputing coverage within {DEFAULT_RADIUS_M:.0f} m"):
            n = warm(eng, dt.date.today())
    finally:
        eng.dispose()
    console.print(f"Độ phủ trong bán kính / coverage within R: {n:,} đơn vị tính lại / units "
                  f"overlaid in {time.perf_counter() - started:.1f} s")


def _mapping_or_exit(pairs: list[str] | None) -> dict[str, str]:
    from data.importers.core import parse_mapping

    try:
        return parse_mapping(pairs)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


def _points(kind: str, file: Path, crs, mapping, dry_run, report_path, sheet, encoding, db) -> None:
    from data.importers.core import ImportOptions, import_points

    maps = _mapping_or_exit(mapping)
    eng = engine_for(db)
    try:
        with progress_bar() as tick:
            opts = ImportOptions(crs=crs, mapping=maps, dry_run=dry_run, sheet=sheet,
                                 encoding=encoding, progress=tick)
            report = import_points(eng, kind, file, opts)
    finally:
        eng.dispose()
    show(report, report_path)
    if kind == "models" and not dry_run and (report.inserted or report.updated):
        warm_coverage(db)


def _point_command(kind: str, help_text: str):
    def command(file: Path = FileArg, crs: str = CrsOpt, mapping: list[str] = MapOpt,
                dry_run: bool = DryOpt, report: Path = ReportOpt, sheet: str = SheetOpt,
                encoding: str = EncOpt, database_url: str = DbOpt) -> None:
        _points(kind, file, crs, mapping, dry_run, report, sheet, encoding, database_url)

    command.__doc__ = help_text
    app.command(kind)(command)


def print_categories() -> None:
    """The category vocabulary as a table on stdout: code, names, the other words accepted."""
    from data.importers import vocabulary

    t = Table(title="Loại vụ việc / incident categories — mã, tên tiếng Việt hoặc tiếng Anh, có "
                    "hoặc không dấu, và các từ sau / the code, either name, with or without "
                    "diacritics, and these words")
    for col in ("Mã / code", "Tên / name (vi)", "Name (en)", "Từ đồng nghĩa / synonyms",
                "Điều BLHS / Penal Code art."):
        t.add_column(col, overflow="fold")
    for c in vocabulary.CATEGORIES:
        t.add_row(c.code, c.name_vi, c.name_en, "; ".join(c.synonyms),
                  ", ".join(str(a) for a in c.articles))
    Console().print(t)


@app.command("incidents")
def incidents(file: Path = typer.Argument(None, readable=False,
                                          help="GeoJSON(.gz), GPKG, Shapefile .zip, CSV, XLSX"),
              categories: bool = typer.Option(False, "--categories",
                                              help="Print the accepted category words and exit"),
              crs: str = CrsOpt, mapping: list[str] = MapOpt, dry_run: bool = DryOpt,
              report: Path = ReportOpt, sheet: str = SheetOpt, encoding: str = EncOpt,
              database_url: str = DbOpt) -> None:
    """Vụ việc / incidents (external_id, category, occurred_at, lon/lat, ...)."""
    if categories:
        print_categories()
        return
    if file is None:
        console.print("[red]Thiếu tệp / missing FILE (or --categories)[/red]")
        raise typer.Exit(2)
    _points("incidents", file, crs, mapping, dry_run, report, sheet, encoding, database_url)


_point_command("models", "Mô hình ANTT / security models (external_id, type_code, name, host, ...)")
_point_command("fire-groups", "Tổ liên gia PCCC / fire-safety groups (external_id, name, households)")
_point_command("institutions", "Cơ quan, doanh nghiệp, trường học / institutions (kind, name, year)")
_point_command("launch-points", "Điểm phát động / launch points (name, theme, launch_date, ...)")


@app.command("boundaries")
def boundaries(
    file: Path = typer.Argument(None, readable=False,
                                help="2025: sapnhap commune file (default: full resolution); "
                                     "pre2025: the GSO code list CSV"),
    era: str = typer.Option("2025", "--era", help="2025 | pre2025"),
    province: str = typer.Option(None, "--province", help="Only this province code (e.g. 31)"),
    provinces_file: Path = typer.Option(None, "--provinces", readable=False,
                                        help="Province polygons"),
    districts_file: Path = typer.Option(None, "--districts", readable=False,
                                        help="pre2025: district polygons"),
    communes_2009: Path = typer.Option(None, "--communes-2009", readable=False,
                                       help="pre2025: 2009 commune polygons (censusVN2009)"),
    mapping: list[str] = typer.Option(None, "--map", help="expected=column, e.g. --map "
                                      "ten_day_du=full_name (repeat)"),
    polygon_parts: bool = typer.Option(False, "--polygon-parts",
                                       help="Keep only the polygon parts of GeometryCollections"),
    allow_unlisted: bool = typer.Option(False, "--allow-unlisted-codes",
                                        help="Accept codes missing from the official 2025 list "
                                             "(they are listed in the report)"),
    crs: str = CrsOpt,
    dry_run: bool = DryOpt, report: Path = ReportOpt, database_url: str = DbOpt,
) -> None:
    """Ranh giới hành chính / administrative units of one era (2025 or pre2025)."""
    from data.boundaries.load import import_boundaries

    maps = _mapping_or_exit(mapping)
    eng = engine_for(database_url)
    try:
        with progress_bar() as tick:
            result = import_boundaries(eng, era, file, province_code=province, dry_run=dry_run,
                                       provinces_path=provinces_file,
                                       districts_path=districts_file,
                                       communes_2009_path=communes_2009, mapping=maps,
                                       polygon_parts=polygon_parts,
                                       allow_unlisted_codes=allow_unlisted, crs=crs,
                                       progress=tick)
    finally:
        eng.dispose()
    show(result, report)
    if not dry_run and (result.inserted or result.updated):
        warm_coverage(database_url)


@app.command("lineage")
def lineage(
    file: Path = typer.Argument(None, readable=False,
                                help="old_to_new_communes_2025.csv (default: shared data)"),
    dry_run: bool = DryOpt, report: Path = ReportOpt, database_url: str = DbOpt,
) -> None:
    """Ánh xạ đơn vị cũ -> mới 1/7/2025 / old -> new units, with area shares."""
    from data.boundaries.lineage import import_lineage

    eng = engine_for(database_url)
    try:
        with console.status("Đang nạp ánh xạ / loading lineage"):
            result = import_lineage(eng, file, dry_run=dry_run)
    finally:
        eng.dispose()
    show(result, report)


@app.command("villages")
def villages(file: Path = FileArg, crs: str = CrsOpt, mapping: list[str] = MapOpt,
             dry_run: bool = DryOpt, report: Path = ReportOpt, sheet: str = SheetOpt,
             encoding: str = EncOpt, database_url: str = DbOpt,
             polygon_parts: bool = typer.Option(
                 False, "--polygon-parts", help="Keep only the polygon parts of "
                                                "GeometryCollections")) -> None:
    """Thôn, tổ dân phố / villages: polygons, or centre points -> Voronoi cells in the commune."""
    from data.importers.core import ImportOptions
    from data.importers.villages import import_villages

    maps = _mapping_or_exit(mapping)
    eng = engine_for(database_url)
    try:
        with console.status("Đang nạp thôn / loading villages"):
            result = import_villages(eng, file, ImportOptions(crs=crs, mapping=maps,
                                                              dry_run=dry_run, sheet=sheet,
                                                              encoding=encoding,
                                                              polygon_parts=polygon_parts))
    finally:
        eng.dispose()
    show(result, report)
    if not dry_run and (result.inserted or result.updated):
        warm_coverage(database_url)
