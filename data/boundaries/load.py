"""Loaders that put real boundary files into admin_unit (one transaction per call)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from data.boundaries import sources
from data.boundaries.units import UpsertResult, prepare_units, upsert_units


def load_2025(engine: Engine, communes_path: Path | str | None = None,
              provinces_path: Path | str | None = None,
              province_code: str | None = None) -> UpsertResult:
    """Load 2025 provinces and communes (optionally one province) in one transaction."""
    communes_path = communes_path or sources.path_of(sources.COMMUNES_2025_FULL)
    provinces_path = provinces_path or sources.path_of(sources.PROVINCES_2025)
    provinces = prepare_units(sources.provinces_2025(provinces_path, province_code))
    communes = prepare_units(sources.communes_2025(communes_path, province_code))
    with engine.begin() as conn:
        a = upsert_units(conn, provinces)
        b = upsert_units(conn, communes)
    return UpsertResult(a.inserted + b.inserted, a.updated + b.updated)
