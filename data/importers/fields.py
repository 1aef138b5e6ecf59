"""Field specifications and the parsers that turn users' cells into typed values.

Why: each importer only declares its fields (name, type, aliases, choices); parsing, default
Vietnamese column names and bilingual error messages are written once here. Parsers never
guess silently: a cell that is present but unparseable is an error naming row and field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

from antt.text import fold as _fold
from data.importers.report import ImportReport

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
# Enumerations repeat the same few words on 100,000 rows: fold each distinct word once.
fold = lru_cache(maxsize=65536)(_fold)

# Coordinates: column names users write, most specific first.
LON_ALIASES = ("lon", "lng", "long", "longitude", "kinh_do", "kinhdo", "kd")
LAT_ALIASES = ("lat", "latitude", "vi_do", "vido", "vd")
X_ALIASES = ("x", "toa_do_x", "easting")
Y_ALIASES = ("y", "toa_do_y", "northing")

TRUE_WORDS = {"1", "true", "t", "yes", "y", "co", "x", "dung", "dat"}
FALSE_WORDS = {"0", "false", "f", "no", "n", "khong", "sai", "khong dat"}


@dataclass(frozen=True)
class Field:
    """One column an importer understands.

    ``kind``: text | int | bool | date | datetime | enum. ``choices`` maps folded user words
    (Vietnamese without diacritics, or the stored code) to the stored value.
    """

    name: str
    kind: str = "text"
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: Mapping[str, str] | None = None
    minimum: int | None = None
    maximum: int | None = None            # ints are also bounded by PostgreSQL's integer
    label_vi: str = ""

    def candidates(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass
class Parsed:
    """Typed columns (one list per field, None for blank) for the rows of a file."""

    values: dict[str, list] = field(default_factory=dict)
    bad_rows: set[int] = field(default_factory=set)  # positional indices with an error


def resolve_columns(fields: tuple[Field, ...], columns: list[str], mapping: Mapping[str, str],
                    report: ImportReport) -> dict[str, str | None]:
    """field name -> source column (user's --map first, then name and aliases)."""
    chosen: dict[str, str | None] = {}
    for f in fields:
        col = None
        if f.name in mapping:
            col = mapping[f.name]
            if col not in columns:
                report.add(None, f.name, f"Cột '{col}' (--map) không có trong tệp",
                           f"Column '{col}' given with --map is not in the file")
                col = None
        else:
            col = next((c for c in f.candidates() if c in columns), None)
        if col is None and f.required and f.name not in {e.field for e in report.errors}:
            report.add(None, f.name,
                       f"Thiếu cột bắt buộc '{f.name}' (tên khác: {', '.join(f.aliases) or '-'})",
                       f"Missing required column '{f.name}' (also accepted: "
                       f"{', '.join(f.aliases) or '-'})")
        chosen[f.name] = col
    return chosen


INT_MAX = 2_147_483_647  # PostgreSQL integer
DATE_MIN = dt.date(1900, 1, 1)  # older dates in these registers are typing errors (e.g. 0205)


class CellProblem(ValueError):
    """A cell that was read but cannot be stored, with the reason in both languages."""

    def __init__(self, vi: str, en: str):
        super().__init__(en)
        self.vi, self.en = vi, en


def text_problem(text: str) -> tuple[str, str] | None:
    """Why TEXT cannot be stored, if it cannot: PostgreSQL text holds no NUL character, and a
    lone surrogate (from a broken JSON escape) is not UTF-8."""
    if "\x00" in text:
        return ("Văn bản chứa ký tự NUL (\\x00); cần văn bản thường",
                "The text holds a NUL character (\\x00); expected plain text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return ("Văn bản chứa ký tự không phải UTF-8 (surrogate lẻ); cần văn bản UTF-8",
                "The text holds a character that is not UTF-8 (a lone surrogate); expected "
                "UTF-8 text")
    return None


def _text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def parse_int(v: object) -> int:
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError
        return int(v)
    s = _text(v).replace(" ", "")
    if re.fullmatch(r"[+-]?\d+(\.0+)?", s):
        return int(float(s))
    raise ValueError


def parse_bool(v: object) -> bool:
    if isinstance(v, bool):
        return v
    word = fold(_text(v))
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d")
_DATETIME_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d-%m-%Y %H:%M",
                     "%d-%m-%Y %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S")


def parse_date(v: object) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    s = _text(v)
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    raise ValueError


def parse_datetime(v: object) -> dt.datetime:
    """Aware datetime; a time without offset is local time in Vietnam (Asia/Ho_Chi_Minh)."""
    if isinstance(v, dt.datetime):
        out = v.to_pydatetime() if hasattr(v, "to_pydatetime") else v
    elif isinstance(v, dt.date):
        out = dt.datetime(v.year, v.month, v.day)
    else:
        s = _text(v)
        out = None
        try:
            out = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            for fmt in _DATETIME_FORMATS + _DATE_FORMATS:
                try:
                    out = dt.datetime.strptime(s, fmt)
                    break
                except ValueError:
                    continue
        if out is None:
            raise ValueError
    if out.tzinfo is None:
        out = out.replace(tzinfo=VN_TZ)
    return out


KIND_WORDS_VI = {"text": "văn bản", "int": "số nguyên", "bool": "có/không", "date": "ngày",
                 "datetime": "ngày giờ", "enum": "giá trị"}
KIND_WORDS_EN = {"text": "text", "int": "a whole number", "bool": "yes/no", "date": "a date",
                 "datetime": "a date and time", "enum": "one of the allowed values"}


def parse_fields(fields: tuple[Field, ...], source_cols: Mapping[str, str | None], frame,
                 rows: list[int], report: ImportReport) -> Parsed:
    """Parse every field of every row; each unparseable cell becomes one Issue."""
    out = Parsed()
    n = len(rows)
    for f in fields:
        col = source_cols.get(f.name)
        cells = list(frame[col]) if col is not None else [None] * n
        values: list = [None] * n
        for i, cell in enumerate(cells):
            if cell is None:
                if f.required and col is not None:
                    report.add(rows[i], f.name, f"Thiếu giá trị '{f.name}'",
                               f"'{f.name}' is empty")
                    out.bad_rows.add(i)
                continue
            try:
                values[i] = _parse_one(f, cell)
            except CellProblem as exc:
                report.add(rows[i], f.name, f"'{f.name}': {exc.vi}", f"'{f.name}': {exc.en}", cell)
                out.bad_rows.add(i)
            except ValueError:
                allowed = allowed_vi = ""
                if f.choices:
                    allowed = allowed_vi = ": " + ", ".join(sorted(set(f.choices.values())))
                elif f.kind in ("date", "datetime"):
                    allowed_vi, allowed = _date_expected(cell)
                report.add(rows[i], f.name,
                           f"Không đọc được '{f.name}' là {KIND_WORDS_VI[f.kind]}{allowed_vi}",
                           f"'{f.name}' is not {KIND_WORDS_EN[f.kind]}{allowed}", cell)
                out.bad_rows.add(i)
        out.values[f.name] = values
    return out


def _date_expected(cell: object) -> tuple[str, str]:
    """What a date cell should look like; a number that is an Excel date serial (a date column
    that lost its format) is said to be one, with the date it stands for, not guessed silently."""
    vi, en = "; cần ví dụ 2025-08-01, 01/08/2025 hoặc 01/08/2025 14:30", (
        "; expected e.g. 2025-08-01, 01/08/2025 or 01/08/2025 14:30")
    if isinstance(cell, (int, float)) and not isinstance(cell, bool) and 1 <= cell < 2958466:
        day = dt.datetime(1899, 12, 30) + dt.timedelta(days=float(cell))
        shown = day.strftime("%d/%m/%Y %H:%M")
        vi += f". Đây có vẻ là số ngày kiểu Excel (= {shown}): hãy định dạng cột là ngày trong Excel"
        en += f". It looks like an Excel date number (= {shown}): format the column as a date in Excel"
    return vi, en


def _parse_one(f: Field, cell: object) -> object:
    if f.kind == "text":
        text = _text(cell)
        problem = text_problem(text)
        if problem:
            raise CellProblem(*problem)
        return text
    if f.kind == "int":
        v = parse_int(cell)
        low = f.minimum if f.minimum is not None else -INT_MAX
        high = min(f.maximum if f.maximum is not None else INT_MAX, INT_MAX)
        if not low <= v <= high:
            raise CellProblem(f"{v} nằm ngoài khoảng cho phép {low}–{high}",
                              f"{v} is outside the allowed range {low}–{high}")
        return v
    if f.kind == "bool":
        return parse_bool(cell)
    if f.kind in ("date", "datetime"):
        v = parse_date(cell) if f.kind == "date" else parse_datetime(cell)
        if (v if f.kind == "date" else v.date()) < DATE_MIN:
            raise CellProblem(f"ngày {v.isoformat()} trước năm {DATE_MIN.year}: nhập sai?",
                              f"the date {v.isoformat()} is before {DATE_MIN.year}: a typing "
                              "error?")
        return v
    if f.kind == "enum":
        assert f.choices is not None
        key = fold(_text(cell)).replace("-", "_")
        if key in f.choices:
            return f.choices[key]
        key = key.replace("_", " ")
        if key in f.choices:
            return f.choices[key]
        raise ValueError
    raise AssertionError(f.kind)
