"""Bad input, one test each: the import writes nothing and names every bad row and field."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import text

from data.importers.core import import_points

HEADER = ["ma", "loai", "ngay", "kinh_do", "vi_do"]


def _count(engine, table: str = "incident") -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def _errors(report) -> list[tuple[int | None, str]]:
    return [(e.row, e.field) for e in report.sorted_errors()]


@pytest.fixture
def good_rows(haiphong_points):
    (lon, lat), (lon2, lat2) = haiphong_points["10507"], haiphong_points["11113"]
    return [["A1", "crime/theft", "2025-08-01", lon, lat], ["A2", "fire", "2025-08-02", lon2, lat2]]


def _geojson(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


def _feature(geometry, **props):
    return {"type": "Feature", "properties": props, "geometry": geometry}


def test_empty_geometry_is_reported(haiphong_engine, haiphong_points, tmp_path):
    lon, lat = haiphong_points["10507"]
    f = _geojson(tmp_path / "vu.geojson", [
        _feature({"type": "Point", "coordinates": [lon, lat]}, ma="A1", loai="fire",
                 ngay="2025-08-01"),
        _feature(None, ma="A2", loai="fire", ngay="2025-08-01"),
    ])
    report = import_points(haiphong_engine, "incidents", f)
    assert _errors(report) == [(2, "geometry")]
    assert "Empty geometry" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_wrong_geometry_type_is_reported(haiphong_engine, haiphong_points, tmp_path):
    lon, lat = haiphong_points["10507"]
    f = _geojson(tmp_path / "vu.geojson", [
        _feature({"type": "LineString", "coordinates": [[lon, lat], [lon + 0.001, lat]]},
                 ma="A1", loai="fire", ngay="2025-08-01"),
    ])
    report = import_points(haiphong_engine, "incidents", f)
    assert _errors(report) == [(1, "geometry")]
    assert "LineString" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_swapped_latitude_longitude_is_detected(haiphong_engine, good_rows, tmp_path, write_csv):
    lon, lat = good_rows[1][3], good_rows[1][4]
    rows = [good_rows[0], ["A2", "fire", "2025-08-02", lat, lon]]
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [(3, "geometry")]
    assert "swapped" in report.errors[0].reason_en and "đảo" in report.errors[0].reason_vi
    assert _count(haiphong_engine) == 0


def test_point_outside_vietnam(haiphong_engine, good_rows, tmp_path, write_csv):
    rows = [good_rows[0], ["A2", "fire", "2025-08-02", 100.5, 13.75]]  # Bangkok
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [(3, "geometry")]
    assert "outside Vietnam" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_point_outside_every_commune(haiphong_engine, good_rows, tmp_path, write_csv):
    rows = [good_rows[0], ["A2", "fire", "2025-08-02", 105.8542, 21.0285]]  # Hà Nội: not loaded
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [(3, "geometry")]
    assert "outside every commune" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_unknown_category(haiphong_engine, good_rows, tmp_path, write_csv):
    rows = [good_rows[0], ["A2", "crime/piracy", *good_rows[1][2:]]]
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [(3, "category")]
    assert report.errors[0].value == "crime/piracy"
    assert _count(haiphong_engine) == 0


def test_duplicate_external_id_in_file(haiphong_engine, good_rows, tmp_path, write_csv):
    rows = [good_rows[0], ["A1", *good_rows[1][1:]]]
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [(3, "external_id")]
    assert "row 2" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_missing_required_column(haiphong_engine, good_rows, tmp_path, write_csv):
    rows = [[r[0], r[2], r[3], r[4]] for r in good_rows]
    f = write_csv(tmp_path / "v.csv", ["ma", "ngay", "kinh_do", "vi_do"], rows)
    report = import_points(haiphong_engine, "incidents", f)
    assert _errors(report) == [(None, "category")]
    assert "Missing required column" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_unparseable_date(haiphong_engine, good_rows, tmp_path, write_csv):
    rows = [good_rows[0], ["A2", "fire", "31/02/2025", *good_rows[1][3:]]]
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [(3, "occurred_at")]
    assert _count(haiphong_engine) == 0


def test_future_incident_date(haiphong_engine, good_rows, tmp_path, write_csv):
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    rows = [good_rows[0], ["A2", "fire", future, *good_rows[1][3:]]]
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [(3, "occurred_at")]
    assert "future" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_every_bad_row_is_listed_not_just_the_first(haiphong_engine, good_rows, tmp_path,
                                                    write_csv):
    rows = [good_rows[0], ["A2", "nope", "2025-08-02", 100.5, 13.75], ["A3", "fire", "hôm qua",
                                                                        *good_rows[1][3:]]]
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [(3, "category"), (3, "geometry"), (4, "occurred_at")]


def _cp1258_bytes(s: str) -> bytes:
    """Windows-1258 as legacy Vietnamese software writes it: base letter + combining tone."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    import unicodedata

    out = b""
    for ch in s:
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(p for p in parts if p not in tones))
        tone = "".join(p for p in parts if p in tones)
        out += (base + tone).encode("cp1258")
    return out


def test_windows_1258_file_is_converted_to_nfc(haiphong_engine, haiphong_points, tmp_path):
    lon, lat = haiphong_points["10507"]
    body = ("ma,loai,ngay,kinh_do,vi_do,mo_ta\n"
            f"A1,Trộm cắp tài sản,2025-08-01,{lon},{lat},Mất xe máy ở chợ Đông\n")
    f = tmp_path / "cp1258.csv"
    f.write_bytes(_cp1258_bytes(body))
    with pytest.raises(UnicodeDecodeError):
        f.read_bytes().decode("utf-8")
    report = import_points(haiphong_engine, "incidents", f)
    assert report.ok, report.errors
    assert any("cp1258" in n for n in report.notes)
    with haiphong_engine.connect() as conn:
        cat, desc = conn.execute(text("SELECT category_code, description FROM incident")).one()
    assert (cat, desc) == ("crime/theft", "Mất xe máy ở chợ Đông")


def test_tcvn3_file_is_refused_not_stored_as_mojibake(haiphong_engine, haiphong_points, tmp_path):
    lon, lat = haiphong_points["10507"]
    # "Trộm cắp tài sản" in TCVN3 (ABC) bytes: no Python codec exists for it.
    tcvn3 = b"Tr\xd9m c\xbep t\xb5i s\xb6n"
    f = tmp_path / "tcvn3.csv"
    f.write_bytes(b"ma,loai,ngay,kinh_do,vi_do\nA1," + tcvn3 + f",2025-08-01,{lon},{lat}\n".encode())
    report = import_points(haiphong_engine, "incidents", f)
    assert _errors(report) == [(None, "file")]
    assert "TCVN3" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_date_of_an_era_not_loaded_says_so(haiphong_engine, good_rows, tmp_path, write_csv):
    """Only 2025 units are loaded. A 2024 incident inside one of today's communes is written,
    placed in today's commune by location, and the summary counts it (issue 13); one outside
    every current commune too cannot be placed at all, and we say why."""
    rows = [good_rows[0], ["A2", "fire", "2024-05-01", *good_rows[1][3:]]]
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "v.csv", HEADER, rows))
    assert _errors(report) == [] and report.inserted == 2
    assert report.outside_era == 1 and report.as_dict()["outside_era"] == 1
    assert any("1 points lie outside every commune of their date" in n for n in report.notes)
    with haiphong_engine.connect() as conn:
        got = conn.execute(text(
            "SELECT i.commune_id, c.code FROM incident i JOIN admin_unit c ON c.id = i.commune_now_id "
            "WHERE i.external_id = 'A2'")).one()
    assert got == (None, "11113")  # no commune of its date; today's commune by location
    hanoi = [["B1", "fire", "2024-05-01", 105.8542, 21.0285]]
    report = import_points(haiphong_engine, "incidents", write_csv(tmp_path / "h.csv", HEADER, hanoi))
    assert _errors(report) == [(2, "geometry")]
    assert "no commune boundaries are loaded for 2024-05-01" in report.errors[0].reason_en
    assert "outside every current commune" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 2


def test_unsupported_format_and_missing_file(haiphong_engine, tmp_path):
    (tmp_path / "x.docx").write_bytes(b"PK")
    assert _errors(import_points(haiphong_engine, "incidents", tmp_path / "x.docx")) == [
        (None, "file")]
    assert _errors(import_points(haiphong_engine, "incidents", tmp_path / "nope.csv")) == [
        (None, "file")]


def test_broken_geometry_names_its_row(haiphong_engine, haiphong_points, tmp_path):
    lon, lat = haiphong_points["10507"]
    f = _geojson(tmp_path / "vu.geojson", [
        _feature({"type": "Point", "coordinates": [lon, lat]}, ma="A1", loai="fire",
                 ngay="2025-08-01"),
        _feature({"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.01, lat]]]},
                 ma="A2", loai="fire", ngay="2025-08-01"),
    ])
    report = import_points(haiphong_engine, "incidents", f)
    assert _errors(report) == [(2, "geometry")]
    assert "Broken geometry" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_vector_file_with_mojibake_is_refused(haiphong_engine, haiphong_points, tmp_path):
    """UTF-8 read with the wrong code page upstream ('Trá»™m' for 'Trộm') is not stored."""
    lon, lat = haiphong_points["10507"]
    garbled = "Trộm cắp tài sản".encode().decode("cp1252", errors="replace")
    f = _geojson(tmp_path / "vu.geojson", [
        _feature({"type": "Point", "coordinates": [lon, lat]}, ma="A1", loai="fire",
                 ngay="2025-08-01", mo_ta=garbled)])
    report = import_points(haiphong_engine, "incidents", f)
    assert _errors(report) == [(None, "file")]
    assert "garbled" in report.errors[0].reason_en
    assert _count(haiphong_engine) == 0


def test_vector_file_with_foreign_letters_is_fine(haiphong_engine, haiphong_points, tmp_path):
    lon, lat = haiphong_points["10507"]
    f = _geojson(tmp_path / "vu.geojson", [
        _feature({"type": "Point", "coordinates": [lon, lat]}, ma="A1", loai="fire",
                 ngay="2025-08-01", mo_ta="Công ty 海防 (Hải Phòng), café")])
    report = import_points(haiphong_engine, "incidents", f)
    assert report.ok, report.errors
    with haiphong_engine.connect() as conn:
        assert conn.execute(text("SELECT description FROM incident")).scalar_one() == (
            "Công ty 海防 (Hải Phòng), café")
