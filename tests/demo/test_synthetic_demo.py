"""The synthetic province, determinism, --if-empty, replacing runs, one transaction, the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from antt.db import make_engine
from data.demo import generate
from data.demo.generate import checksum

from .conftest import SYNTHETIC_SEED, UNTIL, build_synthetic

LABEL = "giả lập / synthetic"


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("admin_unit", "incident", "security_model", "model_rating", "fire_group",
                      "institution", "institution_year", "unit_year", "launch_point", "app_user")}


def test_synthetic_province_is_labelled_everywhere(synthetic_engine):
    with synthetic_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT level, count(*), count(*) FILTER (WHERE is_synthetic AND is_demo), "
            "count(*) FILTER (WHERE full_name LIKE :l) FROM admin_unit GROUP BY level ORDER BY level"),
            {"l": f"%{LABEL}%"}).all()
        manifest = conn.execute(text("SELECT value FROM demo_manifest WHERE key = 'demo'")).scalar_one()
        first = conn.execute(text(
            "SELECT full_name FROM admin_unit WHERE level = 'commune' ORDER BY code LIMIT 1")).scalar_one()
    by_level = {r[0]: r[1:] for r in rows}
    assert set(by_level) == {"province", "commune", "village"}
    for level, (n, synthetic, labelled) in by_level.items():
        assert n == synthetic == labelled, level
    assert 25 <= by_level["commune"][0] <= 30
    assert first == "Xã Mẫu 01 (dữ liệu giả lập / synthetic)"
    assert manifest["synthetic"] is True and manifest["province_codes"] == ["99"]


def test_same_seed_same_data_rerun_replaces_other_seed_differs(synthetic_engine):
    """A rerun with the template's seed reproduces it exactly (no duplicates, same content
    checksum); another seed gives other data of the same shape."""
    with synthetic_engine.connect() as conn:
        reference = (checksum(conn), _counts(conn))
    generate(synthetic_engine, None, seed=SYNTHETIC_SEED, incidents=3000, villages_per_commune=5,
             until=UNTIL)
    with synthetic_engine.connect() as conn:
        assert (checksum(conn), _counts(conn)) == reference
    generate(synthetic_engine, None, seed=SYNTHETIC_SEED + 1, incidents=3000, villages_per_commune=5,
             until=UNTIL)
    with synthetic_engine.connect() as conn:
        other = (checksum(conn), _counts(conn))
    assert other[0] != reference[0]
    assert other[1]["incident"] == reference[1]["incident"] == 3000


def test_determinism_across_databases(synthetic_engine, db_url):
    """A fresh database (other serial ids) gets the same content from the same seed."""
    build_synthetic(db_url)
    eng = make_engine(db_url)
    with eng.connect() as conn, synthetic_engine.connect() as ref:
        assert checksum(conn) == checksum(ref)
    eng.dispose()


def test_if_empty_does_nothing_the_second_time(synthetic_engine, engine):
    first = generate(engine, None, seed=3, incidents=200, villages_per_commune=2, until=UNTIL, if_empty=True)
    assert not first.skipped and first.counts["incidents"] == 200
    with engine.connect() as conn:
        after_first = (checksum(conn), _counts(conn))
    second = generate(engine, None, seed=4, incidents=500, villages_per_commune=3, until=UNTIL,
                      if_empty=True)
    assert second.skipped
    with engine.connect() as conn:
        assert (checksum(conn), _counts(conn)) == after_first


def test_a_crash_leaves_the_database_as_it_was(engine, monkeypatch):
    from data.demo import incidents

    def boom(*args, **kwargs):
        raise RuntimeError("simulated crash while writing incidents")

    monkeypatch.setattr(incidents, "insert_incidents", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(engine, None, seed=3, incidents=100, villages_per_commune=2, until=UNTIL)
    with engine.connect() as conn:
        assert all(n == 0 for n in _counts(conn).values())


@pytest.fixture
def cli_env(monkeypatch):
    from antt.settings import get_settings

    def use(url: str) -> None:
        monkeypatch.setenv("DATABASE_URL", url)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def test_cli_prints_accounts_then_skips_with_if_empty(db_url, cli_env):
    from antt.cli import app

    cli_env(db_url)
    runner = CliRunner()
    args = ["demo", "--if-empty", "--incidents", "300", "--villages-per-commune", "2",
            "--until", "2026-10-31"]
    first = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "Tên đăng nhập / username" in first.output and "Mật khẩu / password" in first.output
    for role in ("admin", "police", "planner", "committee", "viewer"):
        assert f"demo_{role}" in first.output
    assert "synthetic" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0 and "nothing done" in second.output
    bad = runner.invoke(app, ["demo", "--until", "31/10/2026"])
    assert bad.exit_code == 2 and "invalid date" in bad.output


def test_cli_loads_the_boundary_file_named_by_antt_boundaries(db_url, cli_env, monkeypatch):
    from antt.cli import app
    from data.boundaries import sources

    monkeypatch.setenv("ANTT_BOUNDARIES", str(sources.path_of(sources.COMMUNES_2025_HAIPHONG)))
    cli_env(db_url)
    result = CliRunner().invoke(app, ["demo", "--incidents", "200", "--villages-per-commune", "2",
                                      "--until", "2026-10-31"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    eng = make_engine(db_url)
    with eng.connect() as conn:
        levels = dict(conn.execute(text(
            "SELECT level, count(*) FILTER (WHERE NOT is_synthetic) FROM admin_unit GROUP BY level")).all())
        manifest = conn.execute(text("SELECT value FROM demo_manifest")).scalar_one()
    eng.dispose()
    assert levels["province"] == 1 and levels["commune"] == 114 and levels["village"] >= 114
    assert manifest["synthetic"] is False and manifest["province_codes"] == ["31"]


def test_cli_names_a_missing_boundary_file(db_url, cli_env):
    from antt.cli import app

    cli_env(db_url)
    result = CliRunner().invoke(app, ["demo", "--boundaries", "/nonexistent/communes.geojson"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "boundary file not found" in result.output and "/nonexistent/communes.geojson" in result.output
