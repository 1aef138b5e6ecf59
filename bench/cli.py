"""`antt bench NAME`: run bench/bench_NAME.py's main(); `antt bench all` runs every one."""

from __future__ import annotations

import importlib
import pkgutil

import typer

import bench

app = typer.Typer(help="Đo hiệu năng / benchmarks (figures printed)", no_args_is_help=True)


def _names() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__)
                  if m.name.startswith("bench_"))


@app.command("list")
def list_benches() -> None:
    """List the benchmarks."""
    for name in _names():
        typer.echo(name)


@app.command("run")
def run(name: str) -> None:
    """Run one benchmark by name (see `antt bench list`)."""
    if name == "all":
        for n in _names():
            typer.echo(f"== {n}")
            importlib.import_module(f"bench.bench_{n}").main()
        return
    if name not in _names():
        typer.echo(f"Không có benchmark / no benchmark {name!r}; one of {_names()}", err=True)
        raise typer.Exit(2)
    importlib.import_module(f"bench.bench_{name}").main()
