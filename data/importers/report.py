"""What an import found: every bad row, every geometry repair, and what was written.

Why one object: the CLI prints it as a rich table and writes it as JSON (``--report``), and the
API can return the same structure later. Row numbers are those a user sees in the file: for CSV
and XLSX the header is row 1 (as in a spreadsheet); for vector files the first feature is row 1.
A row of ``None`` means the whole file (e.g. a missing column). Imports that read several
files (boundaries: communes and provinces) name the file of each issue, and the unit code of
the feature when it has one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class Issue:
    """One problem with one field of one row, said in Vietnamese and in English."""

    row: int | None
    field: str
    reason_vi: str
    reason_en: str
    value: str | None = None
    file: str | None = None
    code: str | None = None

    def sort_key(self) -> tuple[str, int, str]:
        return (self.file or "", -1 if self.row is None else self.row, self.field)


@dataclass(frozen=True)
class Repair:
    """A geometry that was invalid and was repaired (shapely.make_valid, as ST_MakeValid), or
    whose polygon parts were taken on request; with its area (m², EPSG:3405) before and after."""

    row: int
    what: str
    file: str | None = None
    code: str | None = None
    area_before_m2: float | None = None
    area_after_m2: float | None = None

    @property
    def area_change_m2(self) -> float | None:
        if self.area_before_m2 is None or self.area_after_m2 is None:
            return None
        return self.area_after_m2 - self.area_before_m2


@dataclass
class ImportReport:
    kind: str
    source: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    outside_era: int = 0  # placed in today's units only: outside every unit of their date's era
    dry_run: bool = False
    errors: list[Issue] = field(default_factory=list)
    repairs: list[Repair] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Columns of the file that no field of the importer reads (named, never silently dropped).
    unused_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, row: int | None, field_name: str, vi: str, en: str, value: object = None, *,
            file: str | None = None, code: object = None) -> None:
        shown = None if value is None else str(value)[:200]
        self.errors.append(Issue(row, field_name, vi, en, shown, file,
                                 None if code is None else str(code)[:50]))

    def name_codes(self, codes: dict[int, str]) -> None:
        """Give each row's error the code of its row (e.g. the external id), so a clerk can find
        the record by its own number as well as by the row."""
        self.errors = [replace(e, code=str(codes[e.row])[:50]) if e.code is None and e.row in codes
                       and codes[e.row] is not None else e for e in self.errors]

    def area_changed_m2(self) -> float:
        """Sum of |area after - area before| over the repairs: how much the repairs moved."""
        return sum(abs(r.area_change_m2) for r in self.repairs if r.area_change_m2 is not None)

    def sorted_errors(self) -> list[Issue]:
        return sorted(self.errors, key=Issue.sort_key)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "source": self.source, "rows": self.rows, "ok": self.ok,
            "dry_run": self.dry_run, "inserted": self.inserted, "updated": self.updated,
            "unchanged": self.unchanged, "outside_era": self.outside_era,
            "errors": [asdict(e) for e in self.sorted_errors()],
            "repairs": [asdict(r) | {"area_change_m2": r.area_change_m2} for r in self.repairs],
            "area_changed_m2": self.area_changed_m2(),
            "unused_columns": self.unused_columns, "notes": self.notes,
        }

    def write_json(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), ensure_ascii=False, indent=2),
                              encoding="utf-8")


class ImportFailed(Exception):
    """Raised inside the import transaction so that nothing is written; carries the report."""

    def __init__(self, report: ImportReport):
        super().__init__(f"{len(report.errors)} errors")
        self.report = report
