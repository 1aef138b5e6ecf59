"""The CLI end to end: one bad row among a thousand exits non-zero, names it, writes nothing."""

from __future__ import annotations

import json

from sqlalchemy import text
from typer.testing import CliRunner

from antt.cli import app

HEADER = ["ma", "loai", "ngay", "kinh_do", "vi_do"]


def _thousand(haiphong_points, bad_index: int | None):
    pts = list(haiphong_points.values())
    rows = []
    for i in range(1000):
        lon, lat = pts[i % len(pts)]
        rows.append([f"V{i:04d}", "crime/theft", "2025-09-01 08:00", lon, lat])
    if bad_index is not None:
        rows[bad_index][1] = "crime/does-not-exist"
    return rows


def test_one_bad_row_among_a_thousand(haiphong_url, haiphong_engine, haiphong_points, tmp_path,
                                      write_csv):
    f = write_csv(tmp_path / "vu.csv", HEADER, _thousand(haiphong_points, bad_index=500))
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["import", "incidents", str(f), "--database-url",
                                      haiphong_url, "--report", str(out)])
    assert result.exit_code == 1, result.output
    assert "502" in result.output  # data row 501 is line 502 (header is row 1)
    report = json.loads(out.read_text(encoding="utf-8"))
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(502, "category")]
    assert report["inserted"] == 0
    with haiphong_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 0


def test_clean_thousand_is_written_and_reimport_adds_none(haiphong_url, haiphong_engine,
                                                          haiphong_points, tmp_path, write_csv):
    f = write_csv(tmp_path / "vu.csv", HEADER, _thousand(haiphong_points, bad_index=None))
    runner = CliRunner()
    first = runner.invoke(app, ["import", "incidents", str(f), "--database-url", haiphong_url])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["import", "incidents", str(f), "--database-url", haiphong_url])
    assert second.exit_code == 0, second.output
    with haiphong_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 1000


def test_dry_run_flag_writes_nothing(haiphong_url, haiphong_engine, haiphong_points, tmp_path,
                                     write_csv):
    f = write_csv(tmp_path / "vu.csv", HEADER, _thousand(haiphong_points, None)[:10])
    result = CliRunner().invoke(app, ["import", "incidents", str(f), "--dry-run",
                                      "--database-url", haiphong_url])
    assert result.exit_code == 0, result.output
    with haiphong_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident")).scalar_one() == 0


def test_bad_map_option_is_a_usage_error(haiphong_url, tmp_path, write_csv):
    f = write_csv(tmp_path / "vu.csv", HEADER, [])
    result = CliRunner().invoke(app, ["import", "incidents", str(f), "--map", "nonsense",
                                      "--database-url", haiphong_url])
    assert result.exit_code == 2


def test_boundaries_and_lineage_commands(db_url, tmp_path):
    from data.boundaries import sources

    runner = CliRunner()
    hp = str(sources.path_of(sources.COMMUNES_2025_HAIPHONG))
    out = tmp_path / "b.json"
    result = runner.invoke(app, ["import", "boundaries", hp, "--province", "31",
                                 "--database-url", db_url, "--report", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["inserted"] == 115
    result = runner.invoke(app, ["import", "lineage", "--dry-run", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["import", "boundaries", hp, "--era", "1990", "--database-url",
                              db_url])
    assert bad.exit_code == 1


def test_importing_models_precomputes_coverage_within_r(haiphong_url, haiphong_engine,
                                                        haiphong_points, tmp_path, write_csv):
    """The first coverage request after an import should not pay for the overlays (geo.reach)."""
    (code, (lon, lat)), *_ = sorted(haiphong_points.items())
    f = write_csv(tmp_path / "m.csv", ["ma", "loai", "ten", "kinh_do", "vi_do", "ngay_thanh_lap"],
                  [["M1", "to_tu_quan", "Tổ tự quản 1", lon, lat, "2024-03-15"]])
    result = CliRunner().invoke(app, ["import", "models", str(f), "--database-url", haiphong_url],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "coverage within R" in result.output and "coverage within R: 0 đơn vị" not in result.output
    with haiphong_engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT u.code, r.radius_m, r.area_within_m2 > 0 FROM reach_cache r "
            "JOIN admin_unit u ON u.id = r.unit_id")).all()
    assert (code, 500.0, True) in rows  # the host commune (and any neighbour its circle reaches)
    # the same file again: the row is rewritten, but its id and position are the same, so every
    # key is unchanged and nothing is overlaid
    again = CliRunner().invoke(app, ["import", "models", str(f), "--database-url", haiphong_url],
                               env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert "coverage within R: 0 đơn vị" in again.output
