"""What an import found: every bad row, every geometry repair, and what was written.

Why one object: the CLI prints it as a rich table and writes it as JSON (``--report``), and the
API can return the same structure later. Row numbers are those a user sees in the file: for CSV
and XLSX the header is row 1 (as in a spreadsheet); for vector files the first feature is row 1.
A row of ``None`` means the whole file (e.g. a missing column).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Issue:
    """One problem with one field of one row, said in Vietnamese and in English."""

    row: int | None
    field: str
    reason_vi: str
    reason_en: str
    value: str | None = None

    def sort_key(self) -> tuple[int, str]:
        return (-1 if self.row is None else self.row, self.field)


@dataclass(frozen=True)
class Repair:
    """A geometry that was invalid and was repaired (ST_MakeValid / shapely.make_valid)."""

    row: int
    what: str


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

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, row: int | None, field_name: str, vi: str, en: str, value: object = None) -> None:
        shown = None if value is None else str(value)[:200]
        self.errors.append(Issue(row, field_name, vi, en, shown))

    def sorted_errors(self) -> list[Issue]:
        return sorted(self.errors, key=Issue.sort_key)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "source": self.source, "rows": self.rows, "ok": self.ok,
            "dry_run": self.dry_run, "inserted": self.inserted, "updated": self.updated,
            "unchanged": self.unchanged, "outside_era": self.outside_era,
            "errors": [asdict(e) for e in self.sorted_errors()],
            "repairs": [asdict(r) for r in self.repairs], "notes": self.notes,
        }

    def write_json(self, path: Path | str) -> None:
        Path(path).write_text(json.dumps(self.as_dict(), ensure_ascii=False, indent=2),
                              encoding="utf-8")


class ImportFailed(Exception):
    """Raised inside the import transaction so that nothing is written; carries the report."""

    def __init__(self, report: ImportReport):
        super().__init__(f"{len(report.errors)} errors")
        self.report = report
