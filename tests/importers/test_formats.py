"""Formats and coordinates: XLSX, GeoPackage, zipped Shapefile, --map, VN-2000 input."""

from __future__ import annotations

import zipfile

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import Transformer
from sqlalchemy import text

from antt.crs import pinned
from data.importers.core import ImportOptions, import_points


def _ids(engine):
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(
            "SELECT external_id FROM incident ORDER BY external_id"))]


def test_xlsx_with_excel_dates(haiphong_engine, haiphong_points, tmp_path):
    lon, lat = haiphong_points["10507"]
    f = tmp_path / "vu.xlsx"
    pd.DataFrame({"Mã": ["X1"], "Loại": ["Cháy"], "Ngày": [pd.Timestamp("2025-08-01 10:00")],
                  "Kinh độ": [lon], "Vĩ độ": [lat]}).to_excel(f, index=False)
    report = import_points(haiphong_engine, "incidents", f)
    assert report.ok, report.errors
    assert _ids(haiphong_engine) == ["X1"]


def test_geopackage_and_zipped_shapefile(haiphong_engine, haiphong_points, tmp_path):
    lon, lat = haiphong_points["10507"]
    frame = gpd.GeoDataFrame({"ma": ["G1"], "loai": ["fire"], "ngay": ["2025-08-01"]},
                             geometry=[shapely.Point(lon, lat)], crs=4326)
    frame.to_file(tmp_path / "vu.gpkg", driver="GPKG")
    assert import_points(haiphong_engine, "incidents", tmp_path / "vu.gpkg").ok
    frame["ma"] = ["S1"]
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    frame.to_file(shp_dir / "vu.shp", driver="ESRI Shapefile", encoding="utf-8")
    with zipfile.ZipFile(tmp_path / "vu.zip", "w") as z:
        for p in shp_dir.iterdir():
            z.write(p, p.name)
    report = import_points(haiphong_engine, "incidents", tmp_path / "vu.zip")
    assert report.ok, report.errors
    assert _ids(haiphong_engine) == ["G1", "S1"]


def test_column_mapping(haiphong_engine, haiphong_points, tmp_path, write_csv):
    lon, lat = haiphong_points["10507"]
    f = write_csv(tmp_path / "vu.csv", ["so_vu", "nhom", "luc", "X", "Y"],
                  [["M1", "traffic", "2025-08-01", lon, lat]])
    opts = ImportOptions(mapping={"external_id": "so_vu", "category": "nhom", "occurred_at": "luc"})
    report = import_points(haiphong_engine, "incidents", f, opts)
    assert report.ok, report.errors
    assert _ids(haiphong_engine) == ["M1"]


def test_vn2000_tm3_point_lands_within_1m_of_pyproj(haiphong_engine, haiphong_points, tmp_path,
                                                     write_csv):
    lon, lat = haiphong_points["10507"]
    to_tm3 = Transformer.from_crs(4326, pinned(9209), always_xy=True)
    x, y = to_tm3.transform(lon, lat)
    f = write_csv(tmp_path / "vn2000.csv", ["ma", "loai", "ngay", "x", "y"],
                  [["T1", "fire", "2025-08-01", f"{x:.3f}", f"{y:.3f}"]])
    report = import_points(haiphong_engine, "incidents", f, ImportOptions(crs="EPSG:9209"))
    assert report.ok, report.errors
    ex, ey = Transformer.from_crs(9209, 4326, always_xy=True).transform(round(x, 3), round(y, 3))
    with haiphong_engine.connect() as conn:
        d = conn.execute(text(
            "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography) "
            "FROM incident"), {"x": ex, "y": ey}).scalar_one()
    assert d < 1.0
