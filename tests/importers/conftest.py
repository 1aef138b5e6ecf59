"""Helpers for importer tests: real Hải Phòng points and small files written on the fly."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import shapely

from data.boundaries import sources


@pytest.fixture(scope="session")
def haiphong_points() -> dict[str, tuple[float, float]]:
    """An interior point (lon, lat) of every real Hải Phòng 2025 commune, by commune code."""
    frame = sources.read_vector(sources.path_of(sources.COMMUNES_2025_HAIPHONG))
    pts = shapely.point_on_surface(frame.geometry.values)
    return {str(c): (p.x, p.y) for c, p in zip(frame["ma_xa"], pts, strict=True)}


def _write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def write_csv():
    """write_csv(path, header, rows, encoding='utf-8') -> path."""
    return _write_csv
