"""A report (``reports.data.Report``) as DOCX, XLSX and printable HTML.

DOCX follows the layout of an administrative document of Nghị định 30/2020/NĐ-CP (Phụ lục I):
A4, margins 20/20/30/15 mm, Times New Roman 13; top left the governing body and the issuing body
(bold) with the number and symbol "Số:    /BC-BCĐ138"; top right the national title "CỘNG HÒA XÃ
HỘI CHỦ NGHĨA VIỆT NAM" and motto "Độc lập - Tự do - Hạnh phúc", then place and date; the title
"BÁO CÁO" with its summary; the body; "Nơi nhận:" bottom left and the signature block bottom right.
The number, the day and the signature are left blank for the office that issues it; the parts
a writer completes are marked, never invented. The XLSX holds the same tables, one sheet each.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK, WD_COLOR_INDEX
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import nsdecls, qn
from docx.shared import Cm, Mm, Pt
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from reports.data import KINDS, Report, Table

FONT = "Times New Roman"
NATIONAL = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"


def _cell_text(value: Any, fmt: str | None = None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "Có" if value else "Không"
    if isinstance(value, dt.datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float):  # Vietnamese: comma for decimals, dot for thousands
        return f"{value:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}".replace(",", ".")
    return str(value)


def sections(r: Report) -> list[tuple[str, list[str], list[str], list[int]]]:
    """(heading, paragraphs, table keys, map indexes) in the order of the document."""
    out = [
        ("I. TÌNH HÌNH AN NINH, TRẬT TỰ", r.paragraphs.get("incidents", []),
         ["incidents", "incidents_by_unit"], [0]),
        ("II. KẾT QUẢ XÂY DỰNG PHONG TRÀO TOÀN DÂN BẢO VỆ AN NINH TỔ QUỐC", [], [], []),
        ("1. Mô hình tự quản, tự phòng ngừa, tự bảo vệ về an ninh, trật tự", r.paragraphs.get("models", []),
         ["models", "model_ratings", "model_types"], [1]),
        ("2. Tổ liên gia an toàn PCCC; cơ quan, doanh nghiệp, nhà trường đạt tiêu chuẩn \"An toàn về ANTT\"",
         r.paragraphs.get("fire_institutions", []), ["fire_groups", "institutions"], []),
        ("3. Phân loại phong trào", [], ["classification"], []),
        ("4. Ngày hội toàn dân bảo vệ ANTQ, diễn đàn, phát động phong trào", r.paragraphs.get("events", []),
         ["events", "launch_points"], []),
        ("5. Kết quả thực hiện chỉ tiêu", r.paragraphs.get("kpis", []), ["kpis"]
         + (["ranking"] if "ranking" in r.tables else []), []),
        ("III. ĐÁNH GIÁ CHUNG (ưu điểm, tồn tại, hạn chế, nguyên nhân)", r.paragraphs.get("writer", []),
         [], []),
        ("IV. PHƯƠNG HƯỚNG, NHIỆM VỤ TRỌNG TÂM THỜI GIAN TỚI", r.paragraphs.get("writer", []), [], []),
    ]
    return out


# --- DOCX --------------------------------------------------------------------------------------

def _run(paragraph, text: str, bold: bool = False, italic: bool = False, size: float = 13,
         underline: bool = False):
    run = paragraph.add_run(text)
    run.bold, run.italic, run.underline = bold, italic, underline
    run.font.size = Pt(size)
    run.font.name = FONT
    run._element.rPr.rFonts.set(qn("w:eastAsia"), FONT)
    return run


def _para(container, text: str = "", align=WD_ALIGN_PARAGRAPH.JUSTIFY, bold: bool = False,
          italic: bool = False, size: float = 13, indent: bool = False, space_after: float = 4):
    p = container.add_paragraph()
    p.alignment = align
    p.paragraph_format.space_after = Pt(space_after)
    p.paragraph_format.space_before = Pt(0)
    if indent:
        p.paragraph_format.first_line_indent = Cm(1)
    if text:
        _run(p, text, bold, italic, size)
    return p


def _no_borders(table) -> None:
    tbl = table._tbl
    pr = tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), "nil")
        borders.append(el)
    pr.append(borders)


def _rule(paragraph) -> None:
    """A short line under a header line (the underline ND 30 draws below the motto/issuer)."""
    p = paragraph._p
    ppr = p.get_or_add_pPr()
    bdr = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for k, v in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "000000")):
        bottom.set(qn(k), v)
    bdr.append(bottom)
    ppr.append(bdr)


def _header(doc, r: Report) -> None:
    table = doc.add_table(rows=1, cols=2)
    _no_borders(table)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    left, right = table.rows[0].cells
    left.width, right.width = Cm(6.5), Cm(9.5)
    above, issuer = r.issuer
    _para(left, above, WD_ALIGN_PARAGRAPH.CENTER, size=12, space_after=0)
    p = _para(left, issuer, WD_ALIGN_PARAGRAPH.CENTER, bold=True, size=12, space_after=2)
    p.paragraph_format.left_indent = Cm(1.2)
    p.paragraph_format.right_indent = Cm(1.2)
    _rule(p)
    _para(left, f"Số:        {r.symbol}", WD_ALIGN_PARAGRAPH.CENTER, size=13, space_after=0)
    _para(right, NATIONAL, WD_ALIGN_PARAGRAPH.CENTER, bold=True, size=12, space_after=0)
    p = _para(right, MOTTO, WD_ALIGN_PARAGRAPH.CENTER, bold=True, size=13, space_after=2)
    p.paragraph_format.left_indent = Cm(1.6)
    p.paragraph_format.right_indent = Cm(1.6)
    _rule(p)
    _para(right, f"{r.place}, ngày      tháng      năm {r.year}", WD_ALIGN_PARAGRAPH.CENTER, italic=True,
          size=13, space_after=0)


_CELL_RPR = (f'<w:rPr><w:rFonts w:ascii="{FONT}" w:hAnsi="{FONT}" w:eastAsia="{FONT}"/>'
             '<w:sz w:val="22"/></w:rPr>')  # Times New Roman 11, as _run(..., size=11) writes it


def _rows_xml(t: Table, widths: list[str | None]) -> str:
    """The body rows of a table as WordprocessingML, written at once.

    Why not ``table.add_row()`` and ``_run`` per cell: python-docx rebuilds the table's cell grid
    on every added row and inserts each run property one by one, which made a province roll-up's
    DOCX (two tables of ~170 rows) take 3-4 s; this string is parsed once per table. The cells
    are what ``add_row`` + ``_run(size=11)`` made: the grid's width, the font, numbers right."""
    out = []
    for row in t.rows:
        cells = []
        for (key, _h), width in zip(t.columns, widths, strict=True):
            value = row.get(key)
            text_ = xml_escape(_cell_text(value, t.number_formats.get(key)))
            tcpr = f'<w:tcPr><w:tcW w:w="{width}" w:type="dxa"/></w:tcPr>' if width else "<w:tcPr/>"
            right = isinstance(value, int | float) and not isinstance(value, bool)
            ppr = '<w:pPr><w:jc w:val="right"/></w:pPr>' if right else ""
            cells.append(f'<w:tc>{tcpr}<w:p>{ppr}<w:r>{_CELL_RPR}'
                         f'<w:t xml:space="preserve">{text_}</w:t></w:r></w:p></w:tc>')
        out.append("<w:tr>" + "".join(cells) + "</w:tr>")
    return "".join(out)


def _docx_table(doc, t: Table) -> None:
    _para(doc, t.title, WD_ALIGN_PARAGRAPH.CENTER, bold=True, size=12, space_after=2)
    table = doc.add_table(rows=1, cols=len(t.columns))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for cell, (_key, header) in zip(table.rows[0].cells, t.columns, strict=True):
        cell.text = ""
        _run(cell.paragraphs[0], header, bold=True, size=11)
        cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    if not t.rows:
        cells = table.add_row().cells
        merged = cells[0].merge(cells[-1])
        _run(merged.paragraphs[0], "Không có số liệu trong kỳ", italic=True, size=11)
    if t.rows:
        widths = [g.get(qn("w:w")) for g in table._tbl.tblGrid.findall(qn("w:gridCol"))]
        body = parse_xml(f"<w:tbl {nsdecls('w')}>{_rows_xml(t, widths)}</w:tbl>")
        for tr in list(body):
            table._tbl.append(tr)
    if t.note:
        _para(doc, f"Ghi chú: {t.note}", italic=True, size=11)
    _para(doc, "", space_after=2)


def to_docx(r: Report) -> bytes:
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin, section.bottom_margin = Mm(20), Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    style = doc.styles["Normal"]
    style.font.name = FONT
    style.font.size = Pt(13)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), FONT)
    doc.core_properties.title = f"Báo cáo {r.title}"
    doc.core_properties.author = "antt-map"
    _header(doc, r)
    _para(doc, "", space_after=6)
    _para(doc, "BÁO CÁO", WD_ALIGN_PARAGRAPH.CENTER, bold=True, size=14, space_after=0)
    _para(doc, r.title, WD_ALIGN_PARAGRAPH.CENTER, bold=True, size=14, space_after=2)
    _para(doc, f"(Kỳ báo cáo từ ngày {r.start:%d/%m/%Y} đến ngày {r.end:%d/%m/%Y}; "
               f"hạn gửi trước ngày {r.deadline:%d/%m/%Y})", WD_ALIGN_PARAGRAPH.CENTER, italic=True, size=12,
          space_after=8)
    body = r.full_name if r.level == "commune" else r.province_name
    _para(doc, f"Thực hiện Kế hoạch công tác trọng tâm xây dựng phong trào toàn dân bảo vệ an ninh Tổ quốc "
               f"năm {r.year}, Ban Chỉ đạo 138 {body} báo cáo "
               f"kết quả {KINDS[r.kind][0] if r.kind == 'h1' else 'năm'} {r.year} như sau:", indent=True)
    for heading, paragraphs, tables, maps in sections(r):
        _para(doc, heading, WD_ALIGN_PARAGRAPH.LEFT, bold=True, size=13, space_after=4)
        for text in paragraphs:
            p = _para(doc, "", indent=True)
            run = _run(p, text, italic=text.startswith("["))
            if text.startswith("["):
                run.font.highlight_color = WD_COLOR_INDEX.YELLOW
        for key in tables:
            if key in r.tables:
                _docx_table(doc, r.tables[key])
        for i in maps:
            if i < len(r.maps):
                caption, png = r.maps[i]
                doc.add_picture(io.BytesIO(png), width=Cm(15))
                doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
                _para(doc, caption, WD_ALIGN_PARAGRAPH.CENTER, italic=True, size=11)
    _para(doc, "", space_after=6)
    end = doc.add_table(rows=1, cols=2)
    _no_borders(end)
    left, right = end.rows[0].cells
    p = _para(left, "", WD_ALIGN_PARAGRAPH.LEFT, space_after=0)
    _run(p, "Nơi nhận:", bold=True, italic=True, size=12)
    for i, rec in enumerate(r.recipients):
        _para(left, f"- {rec}{'.' if i == len(r.recipients) - 1 else ';'}", WD_ALIGN_PARAGRAPH.LEFT, size=11,
              space_after=0)
    tm, title = r.signer
    _para(right, tm, WD_ALIGN_PARAGRAPH.CENTER, bold=True, size=13, space_after=0)
    _para(right, title, WD_ALIGN_PARAGRAPH.CENTER, bold=True, size=13, space_after=48)
    _para(right, "(Ký, ghi rõ họ tên, đóng dấu)", WD_ALIGN_PARAGRAPH.CENTER, italic=True, size=12)
    if r.annex is not None:
        doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        _docx_table(doc, r.annex)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


# --- XLSX --------------------------------------------------------------------------------------

def _sheet_name(i: int, t: Table) -> str:
    title = t.title.split(". ", 1)[-1] if t.title.startswith("Bảng") else t.title.replace(".", "")
    return f"{i:02d} {title}"[:31].replace("/", "-").replace(":", "").replace("?", "").replace("*", "") \
        .replace("[", "(").replace("]", ")").replace("\\", "-")


def to_xlsx(r: Report) -> bytes:
    wb = Workbook()
    info = wb.active
    info.title = "Thông tin"
    rows = [("Báo cáo", r.title), ("Đơn vị", r.full_name), ("Mã đơn vị", r.code), ("Tỉnh", r.province_name),
            ("Kỳ báo cáo", f"{r.start:%d/%m/%Y} – {r.end:%d/%m/%Y}"), ("Hạn gửi", f"{r.deadline:%d/%m/%Y}"),
            ("Lập lúc (UTC)", r.generated_at.strftime("%d/%m/%Y %H:%M")),
            ("Số liệu vụ việc", "đầy đủ" if r.sees_points else f"ẩn số dưới {r.suppress_below} vụ (\"< 3\")")]
    for i, (k, v) in enumerate(rows, start=1):
        info.cell(row=i, column=1, value=k).font = Font(bold=True)
        info.cell(row=i, column=2, value=v)
    info.column_dimensions["A"].width, info.column_dimensions["B"].width = 22, 90
    tables = list(r.tables.values()) + ([r.annex] if r.annex is not None else [])
    for i, t in enumerate(tables, start=1):
        ws = wb.create_sheet(_sheet_name(i, t))
        ws.cell(row=1, column=1, value=t.title).font = Font(bold=True, size=12)
        for j, (_k, header) in enumerate(t.columns, start=1):
            c = ws.cell(row=3, column=j, value=header)
            c.font = Font(bold=True, color="FFFFFF")
            c.fill = PatternFill("solid", fgColor="1F4E79")
            c.alignment = Alignment(wrap_text=True, vertical="center")
            ws.column_dimensions[get_column_letter(j)].width = max(12, min(50, len(header) + 4))
        for n, row in enumerate(t.rows, start=4):
            for j, (key, _h) in enumerate(t.columns, start=1):
                value = row.get(key)
                if isinstance(value, dt.datetime) and value.tzinfo is not None:
                    value = value.replace(tzinfo=None)
                if hasattr(value, "item"):
                    value = value.item()
                if isinstance(value, str):
                    value = value.strip()
                cell = ws.cell(row=n, column=j, value=value)
                if isinstance(value, dt.date):
                    cell.number_format = "DD/MM/YYYY"
        if t.note:
            ws.cell(row=len(t.rows) + 5, column=1, value=f"Ghi chú: {t.note}").font = Font(italic=True)
        ws.freeze_panes = "A4"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- HTML --------------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 20mm 15mm 20mm 30mm; }
body { font-family: "Times New Roman", serif; font-size: 13pt; color: #000; max-width: 165mm;
       margin: 0 auto; }
.head { display: flex; justify-content: space-between; text-align: center; }
.head > div:first-child { width: 42%; } .head > div:last-child { width: 56%; }
.head .rule { width: 40%; margin: 2px auto; border-top: 1px solid #000; }
h1 { font-size: 14pt; text-align: center; margin: 18px 0 0; } .sub { text-align: center; font-weight: bold; }
.period { text-align: center; font-style: italic; font-size: 12pt; }
h2 { font-size: 13pt; margin: 14px 0 6px; } p { text-align: justify; text-indent: 1cm; margin: 4px 0; }
p.writer { background: #fff59d; font-style: italic; }
table { border-collapse: collapse; width: 100%; font-size: 11pt; margin: 4px 0 8px; page-break-inside: auto; }
th, td { border: 1px solid #000; padding: 2px 5px; } th { background: #eee; } td.n { text-align: right; }
caption { font-weight: bold; font-size: 12pt; padding: 4px; } .note { font-style: italic; font-size: 11pt; }
figure { text-align: center; margin: 8px 0; } figure img { max-width: 100%; }
figcaption { font-style: italic; font-size: 11pt; }
.foot { display: flex; justify-content: space-between; margin-top: 20px; }
.foot .to { width: 50%; font-size: 11pt; } .foot .sign { width: 45%; text-align: center; font-weight: bold; }
.annex { page-break-before: always; }
@media print { .noprint { display: none; } }
"""


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _k, h in t.columns)
    body = []
    for row in t.rows:
        cells = []
        for key, _h in t.columns:
            v = row.get(key)
            cls = ' class="n"' if isinstance(v, int | float) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{html.escape(_cell_text(v, t.number_formats.get(key)))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not t.rows:
        body.append(f'<tr><td colspan="{len(t.columns)}"><i>Không có số liệu trong kỳ</i></td></tr>')
    note = f'<div class="note">Ghi chú: {html.escape(t.note)}</div>' if t.note else ""
    return (f'<table id="t-{t.key}"><caption>{html.escape(t.title)}</caption><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{note}")


def to_html(r: Report) -> str:
    above, issuer = r.issuer
    parts = [f"""<!doctype html><html lang="vi"><head><meta charset="utf-8">
<title>Báo cáo {html.escape(r.title)}</title><style>{CSS}</style></head><body>
<div class="noprint" style="text-align:right"><button onclick="window.print()">In / Print</button></div>
<div class="head"><div>{html.escape(above)}<br><b>{html.escape(issuer)}</b><div class="rule"></div>
Số:&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;{html.escape(r.symbol)}</div>
<div><b>{NATIONAL}</b><br><b>{MOTTO}</b><div class="rule"></div>
<i>{html.escape(r.place)}, ngày &nbsp;&nbsp;&nbsp; tháng &nbsp;&nbsp;&nbsp; năm {r.year}</i></div></div>
<h1>BÁO CÁO</h1><div class="sub">{html.escape(r.title)}</div>
<div class="period">(Kỳ báo cáo từ ngày {r.start:%d/%m/%Y} đến ngày {r.end:%d/%m/%Y}; hạn gửi trước ngày
{r.deadline:%d/%m/%Y})</div>"""]
    for heading, paragraphs, tables, maps in sections(r):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for text in paragraphs:
            cls = ' class="writer"' if text.startswith("[") else ""
            parts.append(f"<p{cls}>{html.escape(text)}</p>")
        for key in tables:
            if key in r.tables:
                parts.append(_html_table(r.tables[key]))
        for i in maps:
            if i < len(r.maps):
                caption, png = r.maps[i]
                data = base64.b64encode(png).decode()
                parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    recipients = "".join(f"<br>- {html.escape(x)};" for x in r.recipients)
    tm, title = r.signer
    parts.append(f"""<div class="foot"><div class="to"><b><i>Nơi nhận:</i></b>{recipients}</div>
<div class="sign">{html.escape(tm)}<br>{html.escape(title)}<br><br><br><br>
<i style="font-weight:normal">(Ký, ghi rõ họ tên, đóng dấu)</i></div></div>""")
    if r.annex is not None:
        parts.append(f'<div class="annex">{_html_table(r.annex)}</div>')
    parts.append("</body></html>")
    return "\n".join(parts)


# --- the one path from data to documents (direct call and job) ---------------------------------

MEDIA = {"docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "html": "text/html; charset=utf-8"}
FORMATS = tuple(MEDIA)
BUILD_SHARE = 0.85  # of a job's progress: the figures and maps; the rest is writing the files


def render(bind: Any, level: str, code: str, kind: str, year: int, start: dt.date | None,
           end: dt.date | None, sees_points: bool, annex: bool, maps: bool,
           formats: tuple[str, ...] | list[str], progress: Any = None) -> tuple[Report, dict[str, bytes]]:
    """The report and its documents in FORMATS: what ``GET /reports/...`` and the report job both
    run, so a job's files say what the direct call's say. PROGRESS(fraction, message) as in
    ``build_report``."""
    from reports.data import build_report

    bad = [f for f in formats if f not in MEDIA]
    if bad or not formats:
        raise ValueError(f"formats must be among {', '.join(FORMATS)}")
    scaled = None if progress is None else (lambda f, m: progress(f * BUILD_SHARE, m))
    r = build_report(bind, level, code, kind, year, start, end, sees_points, annex, maps, progress=scaled)
    writers = {"docx": to_docx, "xlsx": to_xlsx, "html": lambda rep: to_html(rep).encode("utf-8")}
    out: dict[str, bytes] = {}
    for i, fmt in enumerate(formats):
        if progress is not None:
            progress(BUILD_SHARE + (1 - BUILD_SHARE) * i / len(formats),
                     f"Viết tệp {fmt.upper()} / writing the {fmt.upper()}")
        out[fmt] = writers[fmt](r)
    return r, out
