"""The Excel template of a commune's year: its layout, the template it writes, the rows it reads.

Why one spec (``SHEETS``) for both directions: the columns a template offers, the validation
lists Excel enforces and the columns an upload is read by are the same list, so a template
downloaded today always reads back.

Sheets: "Hướng dẫn" (instructions and the file's commune and year), "Thôn", "Cơ quan",
"Mô hình", "Sự kiện", "Chỉ tiêu", and a hidden "Danh mục" holding the validation lists.
Coded columns (yes/no, classes, ratings, event kinds, village codes, institution codes, dates,
numbers) carry Excel data validation; values are also accepted as codes (``kha``) and without
diacritics (``Kha``), because people type them.

``read_workbook`` returns plain rows (sheet, Excel row number, values by column key) and the
structural errors (missing sheet or column, unreadable file); checking values against the
database and writing them is ``api/templates.py``'s.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from antt.text import fold

YES, NO = "Có", "Không"
CLASS_LABELS = {"xuat_sac": "Xuất sắc", "kha": "Khá", "trung_binh": "Trung bình", "yeu": "Yếu"}
RATING_LABELS = {"tot": "Tốt", "kha": "Khá", "trung_binh": "Trung bình", "yeu": "Yếu"}
KIND_LABELS = {"festival": "Ngày hội 19/8", "forum": "Diễn đàn", "launch": "Phát động",
               "review": "Sơ kết, tổng kết", "other": "Khác"}
INST_KIND_LABELS = {"agency": "Cơ quan", "enterprise": "Doanh nghiệp", "school": "Trường học"}
DIRECTION_LABELS = {"ge": "Ít nhất", "gt": "Trên", "le": "Không quá", "lt": "Dưới"}
ATTACHMENT_SEP = ";"
INFO_SHEET = "Hướng dẫn"
LISTS_SHEET = "Danh mục"
MAX_ROWS = 5000
HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
EDIT_FILL = PatternFill("solid", fgColor="FFF2CC")


@dataclass(frozen=True)
class Col:
    key: str
    header: str
    kind: str = "text"       # text, code, bool, class, rating, event_kind, village, institution, date,
    #                          int, number, list (attachment names)
    editable: bool = False
    width: int = 16
    note: str = ""


@dataclass(frozen=True)
class Sheet:
    key: str
    name: str
    columns: tuple[Col, ...]
    id_key: str  # the column that identifies a row
    description: str = ""

    def col(self, key: str) -> Col:
        return next(c for c in self.columns if c.key == key)


SHEETS: tuple[Sheet, ...] = (
    Sheet("villages", "Thôn", (
        Col("code", "Mã thôn", "code", width=14),
        Col("name", "Tên thôn, tổ dân phố", width=28),
        Col("launched", "Phát động phong trào", "bool", True, 14),
        Col("movement_class", "Phân loại phong trào", "class", True, 16),
        Col("festival_held", "Tổ chức Ngày hội 19/8", "bool", True, 14),
    ), "code", "Kết quả năm của từng thôn, tổ dân phố"),
    Sheet("institutions", "Cơ quan", (
        Col("code", "Mã cơ quan", "code", width=12),
        Col("name", "Tên cơ quan, doanh nghiệp, nhà trường", width=36),
        Col("kind", "Loại", width=14),
        Col("antt_safe", "Đạt chuẩn \"An toàn về ANTT\"", "bool", True, 16),
        Col("launched", "Phát động phong trào", "bool", True, 14),
        Col("movement_class", "Phân loại phong trào", "class", True, 16),
        Col("festival_held", "Tổ chức Ngày hội 19/8", "bool", True, 14),
    ), "code", "Kết quả năm của từng cơ quan, doanh nghiệp, nhà trường"),
    Sheet("models", "Mô hình", (
        Col("code", "Mã mô hình", "code", width=12),
        Col("name", "Tên mô hình", width=40),
        Col("type", "Loại mô hình", width=28),
        Col("village", "Thôn", width=18),
        Col("last_rating", "Xếp loại gần nhất", width=14),
        Col("last_rated_on", "Ngày xếp loại gần nhất", width=14),
        Col("rating", "Xếp loại mới", "rating", True, 14),
        Col("rated_on", "Ngày xếp loại mới", "date", True, 14),
        Col("note", "Ghi chú", editable=True, width=30),
    ), "code", "Xếp loại mô hình trong năm (để trống nếu không có kết quả mới)"),
    Sheet("events", "Sự kiện", (
        Col("code", "Mã sự kiện", "code", True, 16, "Để trống khi thêm mới"),
        Col("kind", "Loại sự kiện", "event_kind", True, 16),
        Col("title", "Tên sự kiện", editable=True, width=40),
        Col("held_on", "Ngày tổ chức", "date", True, 14),
        Col("village_code", "Mã thôn", "village", True, 14),
        Col("institution_code", "Mã cơ quan", "institution", True, 12),
        Col("place", "Địa điểm", editable=True, width=24),
        Col("participants", "Số người tham dự", "int", True, 12),
        Col("notes", "Ghi chú", editable=True, width=30),
        Col("attachments", "Tệp đính kèm (cách nhau bởi ;)", "list", True, 30),
    ), "code", "Ngày hội 19/8, diễn đàn, lễ phát động, hội nghị sơ kết/tổng kết đã tổ chức trong năm"),
    Sheet("targets", "Chỉ tiêu", (
        Col("code", "Mã chỉ tiêu", "code", width=18),
        Col("name", "Chỉ tiêu", width=50),
        Col("unit", "Đơn vị tính", width=10),
        Col("direction", "Yêu cầu", width=10),
        Col("province_threshold", "Mức của tỉnh", "number", width=12),
        Col("threshold", "Mức của xã (chỉ được nâng)", "number", True, 14),
        Col("value", "Kết quả (chỉ tiêu tự thêm)", "number", True, 14),
        Col("recorded_on", "Ngày ghi nhận kết quả", "date", True, 14),
    ), "code", "Chỉ tiêu năm; chỉ tiêu tính tự động không nhập kết quả"),
)
SHEET_BY_KEY = {s.key: s for s in SHEETS}


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else (YES if value else NO)


def _style_header(ws, sheet: Sheet) -> None:
    for i, col in enumerate(sheet.columns, start=1):
        cell = ws.cell(row=1, column=i, value=col.header)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        ws.column_dimensions[get_column_letter(i)].width = col.width
    ws.row_dimensions[1].height = 36
    ws.freeze_panes = "A2"


def _lists(wb: Workbook, villages: list[str], institutions: list[str]) -> dict[str, str]:
    """The hidden sheet of validation lists; kind -> formula range."""
    ws = wb.create_sheet(LISTS_SHEET)
    columns = {
        "bool": [YES, NO], "class": list(CLASS_LABELS.values()), "rating": list(RATING_LABELS.values()),
        "event_kind": list(KIND_LABELS.values()), "village": villages or ["-"],
        "institution": institutions or ["-"],
    }
    ranges = {}
    for i, (kind, values) in enumerate(columns.items(), start=1):
        ws.cell(row=1, column=i, value=kind)
        for j, v in enumerate(values, start=2):
            ws.cell(row=j, column=i, value=v)
        letter = get_column_letter(i)
        ranges[kind] = f"'{LISTS_SHEET}'!${letter}$2:${letter}${len(values) + 1}"
    ws.sheet_state = "hidden"
    return ranges


def _validate(ws, sheet: Sheet, ranges: dict[str, str], last_row: int) -> None:
    for i, col in enumerate(sheet.columns, start=1):
        if not col.editable:
            continue
        letter = get_column_letter(i)
        area = f"{letter}2:{letter}{last_row}"
        if col.kind in ranges:
            dv = DataValidation(type="list", formula1=ranges[col.kind], allow_blank=True,
                                showErrorMessage=True, errorTitle="Giá trị không hợp lệ",
                                error=f"Chọn một giá trị trong danh sách cho cột \"{col.header}\".")
        elif col.kind == "date":
            dv = DataValidation(type="date", operator="between", formula1="DATE(1990,1,1)",
                                formula2="DATE(2100,12,31)", allow_blank=True, showErrorMessage=True,
                                errorTitle="Ngày không hợp lệ", error="Nhập ngày dạng dd/mm/yyyy.")
        elif col.kind == "int":
            dv = DataValidation(type="whole", operator="between", formula1="0", formula2="1000000",
                                allow_blank=True, showErrorMessage=True, errorTitle="Số không hợp lệ",
                                error="Nhập số nguyên không âm.")
        elif col.kind == "number":
            dv = DataValidation(type="decimal", operator="between", formula1="0", formula2="1000000000",
                                allow_blank=True, showErrorMessage=True, errorTitle="Số không hợp lệ",
                                error="Nhập số không âm.")
        else:
            continue
        dv.add(area)
        ws.add_data_validation(dv)
        for r in range(2, last_row + 1):
            ws.cell(row=r, column=i).fill = EDIT_FILL
            if col.kind == "date":
                ws.cell(row=r, column=i).number_format = "DD/MM/YYYY"


INSTRUCTIONS = [
    "MẪU SỐ LIỆU PHONG TRÀO TOÀN DÂN BẢO VỆ AN NINH TỔ QUỐC",
    "",
    "Cách dùng:",
    "1. Chỉ sửa các ô nền vàng. Các cột khác (mã, tên, loại) là dữ liệu hiện có, để đối chiếu.",
    "2. Trang \"Thôn\" và \"Cơ quan\": chọn Có/Không, phân loại Xuất sắc/Khá/Trung bình/Yếu cho năm.",
    "   Để trống nghĩa là chưa có kết quả.",
    "3. Trang \"Mô hình\": nhập xếp loại mới (Tốt/Khá/Trung bình/Yếu) và ngày xếp loại; để trống "
    "nếu không có kết quả mới.",
    "4. Trang \"Sự kiện\": mỗi dòng một sự kiện đã tổ chức (Ngày hội 19/8, diễn đàn \"Công an xã lắng nghe "
    "ý kiến của nhân dân\", lễ phát động, sơ kết/tổng kết). Dòng mới: để trống \"Mã sự kiện\". "
    "Tệp đính kèm: ghi tên tệp, cách nhau bởi dấu chấm phẩy.",
    "5. Trang \"Chỉ tiêu\": xã có thể nâng mức chỉ tiêu (không thấp hơn mức của tỉnh); kết quả chỉ nhập "
    "cho chỉ tiêu tự thêm (chỉ tiêu khác được tính tự động từ dữ liệu).",
    "6. Ngày ghi theo dạng dd/mm/yyyy. Không đổi tên trang, không xóa hay đổi thứ tự cột.",
    "7. Tải tệp lên: mọi dòng được kiểm tra trước; nếu có lỗi, không dữ liệu nào được ghi và danh sách lỗi "
    "chỉ rõ trang, dòng, cột. Tải lại cùng một tệp không làm thay đổi gì.",
    "",
]
META_ROW = len(INSTRUCTIONS) + 1  # "Mã xã" / "Năm" rows after the text


@dataclass
class TemplateData:
    commune_code: str
    commune_name: str
    province_code: str
    year: int
    villages: list[dict[str, Any]] = field(default_factory=list)
    institutions: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)


def build_template(data: TemplateData) -> bytes:
    """The .xlsx of a commune's year, filled with what the registry holds."""
    wb = Workbook()
    info = wb.active
    info.title = INFO_SHEET
    info.column_dimensions["A"].width = 24
    info.column_dimensions["B"].width = 110
    for r, line in enumerate(INSTRUCTIONS, start=1):
        info.cell(row=r, column=1 if r == 1 else 2, value=line)
    info.cell(row=1, column=1).font = Font(bold=True, size=13)
    meta = [("Mã xã", data.commune_code), ("Tên xã", data.commune_name), ("Mã tỉnh", data.province_code),
            ("Năm", data.year), ("Ngày tạo mẫu", dt.date.today().strftime("%d/%m/%Y"))]
    for i, (k, v) in enumerate(meta):
        info.cell(row=META_ROW + i, column=1, value=k).font = Font(bold=True)
        info.cell(row=META_ROW + i, column=2, value=v)
    villages = [v["code"] for v in data.villages]
    institutions = [str(i["code"]) for i in data.institutions]
    ranges = _lists(wb, villages, institutions)
    rows_by_sheet = {"villages": data.villages, "institutions": data.institutions, "models": data.models,
                     "events": data.events, "targets": data.targets}
    for sheet in SHEETS:
        ws = wb.create_sheet(sheet.name)
        _style_header(ws, sheet)
        rows = rows_by_sheet[sheet.key]
        for r, row in enumerate(rows, start=2):
            for i, col in enumerate(sheet.columns, start=1):
                ws.cell(row=r, column=i, value=_cell_value(col, row.get(col.key)))
        # room for new rows where rows can be added (events), else exactly the rows
        extra = 200 if sheet.key == "events" else 0
        _validate(ws, sheet, ranges, max(2, len(rows) + 1 + extra))
    wb.move_sheet(LISTS_SHEET, offset=len(wb.sheetnames))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _cell_value(col: Col, value: Any) -> Any:
    if value is None:
        return None
    if col.kind == "bool":
        return _yes_no(value)
    if col.kind == "class":
        return CLASS_LABELS.get(value, value)
    if col.kind == "rating":
        return RATING_LABELS.get(value, value)
    if col.kind == "event_kind":
        return KIND_LABELS.get(value, value)
    if col.kind == "list":
        return f"{ATTACHMENT_SEP} ".join(value) if value else None
    return value


# --- reading ---------------------------------------------------------------------------------

@dataclass
class CellError:
    sheet: str
    row: int | None
    column: str | None
    header: str | None
    vi: str
    en: str

    def as_dict(self) -> dict[str, Any]:
        where_vi = f"Trang \"{self.sheet}\"" + (f", dòng {self.row}" if self.row else "") + \
                   (f", cột {self.column} ({self.header})" if self.column else "")
        where_en = f"Sheet \"{self.sheet}\"" + (f", row {self.row}" if self.row else "") + \
                   (f", column {self.column} ({self.header})" if self.column else "")
        return {"sheet": self.sheet, "row": self.row, "column": self.column, "header": self.header,
                "field": f"{self.sheet}!{self.column or ''}{self.row or ''}",
                "message_vi": f"{where_vi}: {self.vi}", "message_en": f"{where_en}: {self.en}",
                "message": f"{where_vi}: {self.vi} / {where_en}: {self.en}"}


@dataclass
class Row:
    sheet: Sheet
    number: int  # the Excel row number (header is row 1)
    values: dict[str, Any]

    def letter(self, key: str) -> str:
        return get_column_letter([c.key for c in self.sheet.columns].index(key) + 1)

    def error(self, key: str | None, vi: str, en: str) -> CellError:
        if key is None:
            return CellError(self.sheet.name, self.number, None, None, vi, en)
        return CellError(self.sheet.name, self.number, self.letter(key), self.sheet.col(key).header, vi, en)


@dataclass
class ReadResult:
    commune_code: str | None
    year: int | None
    rows: dict[str, list[Row]]
    errors: list[CellError]
    unknown_sheets: list[str]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    s = str(value).strip()
    return s or None


def read_workbook(data: bytes, wanted: tuple[str, ...] | None = None) -> ReadResult:
    """Rows of the template's sheets (only ``wanted`` ones, by key, when given); structural
    errors (unreadable file, missing sheet, missing or moved column) instead of rows."""
    errors: list[CellError] = []
    try:
        wb = load_workbook(io.BytesIO(data), data_only=True, read_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        name = type(exc).__name__
        unreadable = CellError("-", None, None, None, f"không đọc được tệp Excel (.xlsx): {name}",
                               f"not a readable Excel (.xlsx) file: {name}")
        return ReadResult(None, None, {}, [unreadable], [])
    commune_code = year = None
    if INFO_SHEET in wb.sheetnames:
        for row in wb[INFO_SHEET].iter_rows(min_row=1, max_row=META_ROW + 10, max_col=2, values_only=True):
            label, value = (row + (None, None))[:2]
            if label == "Mã xã":
                commune_code = _text(value)
            elif label == "Năm":
                try:
                    year = int(_text(value) or "")
                except ValueError:
                    year = None
    rows: dict[str, list[Row]] = {}
    known = {s.name for s in SHEETS} | {INFO_SHEET, LISTS_SHEET}
    unknown = [n for n in wb.sheetnames if n not in known]
    for sheet in SHEETS:
        if wanted is not None and sheet.key not in wanted:
            continue
        if sheet.name not in wb.sheetnames:
            errors.append(CellError(sheet.name, None, None, None, "thiếu trang này trong tệp",
                                    "this sheet is missing from the file"))
            continue
        ws = wb[sheet.name]
        it = ws.iter_rows(values_only=True)
        header = [(_text(h) or "") for h in next(it, ())]
        expected = [c.header for c in sheet.columns]
        if [fold(h) for h in header[:len(expected)]] != [fold(h) for h in expected]:
            for i, col in enumerate(sheet.columns):
                got = header[i] if i < len(header) else ""
                if fold(got) != fold(col.header):
                    errors.append(CellError(
                        sheet.name, 1, get_column_letter(i + 1), col.header,
                        f"tiêu đề cột phải là \"{col.header}\", tệp ghi \"{got}\"",
                        f"the column header must be \"{col.header}\", the file has \"{got}\""))
            continue
        out = []
        for n, values in enumerate(it, start=2):
            if n > MAX_ROWS + 1:
                errors.append(CellError(sheet.name, n, None, None, f"quá {MAX_ROWS} dòng",
                                        f"more than {MAX_ROWS} rows"))
                break
            cells = dict(zip([c.key for c in sheet.columns], (list(values) + [None] * len(sheet.columns)),
                             strict=False))
            if all(_text(v) is None for k, v in cells.items()):
                continue  # blank line
            out.append(Row(sheet, n, cells))
        rows[sheet.key] = out
    wb.close()
    return ReadResult(commune_code, year, rows, errors, unknown)


# --- value parsers (None = blank; ValueError with a bilingual message otherwise) -------------

class BadValue(ValueError):
    def __init__(self, vi: str, en: str) -> None:
        super().__init__(en)
        self.vi, self.en = vi, en


def _lookup(value: Any, labels: dict[str, str], what_vi: str, what_en: str) -> str | None:
    s = _text(value)
    if s is None:
        return None
    wanted = fold(s)
    for code, label in labels.items():
        if wanted in (fold(code), fold(label), fold(code.replace("_", " "))):
            return code
    choices = ", ".join(labels.values())
    raise BadValue(f"\"{s}\" không phải {what_vi} hợp lệ (chọn: {choices})",
                   f"\"{s}\" is not a valid {what_en} (one of: {choices})")


TRUE_WORDS = {"co", "x", "true", "yes", "1", "dat"}
FALSE_WORDS = {"khong", "false", "no", "0", "chua", "chua dat", "khong dat"}


def parse_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    s = _text(value)
    if s is None:
        return None
    f = fold(s)
    if f in TRUE_WORDS:
        return True
    if f in FALSE_WORDS:
        return False
    raise BadValue(f"\"{s}\" không phải Có/Không", f"\"{s}\" is not yes/no (Có/Không)")


def parse_class(value: Any) -> str | None:
    return _lookup(value, CLASS_LABELS, "loại phân loại phong trào", "movement class")


def parse_rating(value: Any) -> str | None:
    return _lookup(value, RATING_LABELS, "mức xếp loại", "rating")


def parse_kind(value: Any) -> str | None:
    return _lookup(value, KIND_LABELS, "loại sự kiện", "event kind")


def parse_date(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    s = str(value).strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(s, fmt).date()
        except ValueError:
            continue
    raise BadValue(f"\"{s}\" không phải ngày (dd/mm/yyyy)", f"\"{s}\" is not a date (dd/mm/yyyy)")


def parse_number(value: Any, integer: bool = False) -> float | int | None:
    s = _text(value)
    if s is None:
        return None
    try:
        n = float(str(value).replace(",", ".")) if not isinstance(value, int | float) else float(value)
    except ValueError as exc:
        raise BadValue(f"\"{s}\" không phải số", f"\"{s}\" is not a number") from exc
    if n != n or n in (float("inf"), float("-inf")) or n < 0:
        raise BadValue(f"\"{s}\" phải là số không âm", f"\"{s}\" must be a non-negative number")
    if integer:
        if not n.is_integer():
            raise BadValue(f"\"{s}\" phải là số nguyên", f"\"{s}\" must be a whole number")
        return int(n)
    return n


def parse_list(value: Any) -> list[str]:
    s = _text(value)
    if s is None:
        return []
    return [p.strip() for p in s.split(ATTACHMENT_SEP) if p.strip()]


def text_value(value: Any) -> str | None:
    return _text(value)
