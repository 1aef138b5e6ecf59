"""Read a user's file into a plain table: GeoJSON (.gz), GeoPackage, zipped Shapefile, CSV, XLSX.

Why a separate step: every importer validates the same shape (text cells + optional geometry +
the row numbers the user sees), whatever the format. Text is always NFC-normalised, and a file
that is not UTF-8 is decoded only when the result is provably Vietnamese (Windows-1258, with its
combining tone marks composed); legacy TCVN3/VNI bytes are refused rather than stored as mojibake.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import unicodedata
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
import shapely.errors
from pyproj import CRS

from antt.text import fold
from data.boundaries.sources import vsi_path

VECTOR_SUFFIXES = (".geojson", ".json", ".geojson.gz", ".json.gz", ".gpkg", ".zip", ".shp", ".fgb")
TABLE_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")


class FileRejected(ValueError):
    """The whole file cannot be read; the message is bilingual."""

    def __init__(self, vi: str, en: str):
        super().__init__(f"{vi} / {en}")
        self.vi, self.en = vi, en


@dataclass
class SourceTable:
    """Cells as Python objects (str, numbers, datetimes from XLSX, None for blanks)."""

    frame: pd.DataFrame                 # columns normalised (see normalise_column)
    rows: list[int]                     # the row number the user sees, per record
    geometry: gpd.GeoSeries | None = None
    crs: CRS | None = None
    encoding: str | None = None
    original_columns: dict[str, str] = field(default_factory=dict)
    broken: dict[int, str] = field(default_factory=dict)  # position -> why GEOS refused it
    # position -> why the record itself could not be read (a cut feature, a short CSV line)
    unreadable: dict[int, str] = field(default_factory=dict)

    def without(self, positions: set[int]) -> SourceTable:
        """The table without the records at POSITIONS (reported already, never parsed again)."""
        keep = [i for i in range(len(self.rows)) if i not in positions]
        new_pos = {old: new for new, old in enumerate(keep)}
        geometry = None
        if self.geometry is not None:
            geometry = gpd.GeoSeries(list(self.geometry.values[keep]), crs=self.geometry.crs)
        return SourceTable(self.frame.iloc[keep].reset_index(drop=True),
                           [self.rows[i] for i in keep], geometry=geometry, crs=self.crs,
                           encoding=self.encoding, original_columns=self.original_columns,
                           broken={new_pos[i]: why for i, why in self.broken.items()
                                   if i in new_pos})


def normalise_column(name: str) -> str:
    """'Kinh độ' -> 'kinh_do', 'Mã xã' -> 'ma_xa': how users' headers are matched."""
    return re.sub(r"[^a-z0-9]+", "_", fold(str(name))).strip("_")


def _vietnamese_letters() -> frozenset[str]:
    marks = ["", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323"]
    letters = set()
    for base in "aăâeêioôơuưy":
        for m in marks:
            ch = unicodedata.normalize("NFC", base + m)
            letters.add(ch)
            letters.add(ch.upper())
    letters.update("đĐ")
    return frozenset(letters)


VIETNAMESE_LETTERS = _vietnamese_letters()


def looks_vietnamese(text: str) -> bool:
    """True when every non-ASCII letter is a Vietnamese one and no stray tone mark is left.

    TCVN3 or VNI bytes decoded as Windows-1258 give letters such as 'µ', 'ø', 'ª', 'ö' or
    spacing accents ('¸', '´'): those fail here, so we refuse instead of storing mojibake.
    """
    for ch in set(text):
        if ord(ch) < 128:
            continue
        cat = unicodedata.category(ch)
        if cat.startswith("L") and ch not in VIETNAMESE_LETTERS:
            return False
        if cat in ("Mn", "Sk", "Co", "Cn") or ch == "\ufffd":
            return False
    return True


# UTF-8 Vietnamese read as Windows-1252/Latin-1 ('á»‡' for 'ệ', 'Ä‘' for 'đ', 'Æ°' for 'ư'),
# and TCVN3 bytes read as Latin-1 (spacing accents and symbols where letters should be).
_MOJIBAKE = re.compile("á[»º]|Ä[\u2018\x91]|Æ[°¡]|Ã[\x80-\xbf]")
_TCVN3_SYMBOLS = set("µ¸¶·¹¾×®©¬")


def looks_garbled(text: str) -> bool:
    """Text from a vector file that was decoded with the wrong code page.

    Vector files are UTF-8 by spec (GeoJSON, GPKG) or say their code page (.cpg); a shapefile
    without one may still be garbled. Foreign letters (e.g. Chinese names) are allowed here.
    """
    if "\ufffd" in text or _MOJIBAKE.search(text):
        return True
    return bool(_TCVN3_SYMBOLS & set(text)) and not looks_vietnamese(text)


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(NFC text, encoding used). Tries UTF-8, then the given or detected legacy encoding."""
    if encoding:
        candidates = [encoding]
    else:
        if data.startswith(b"\xef\xbb\xbf"):
            return unicodedata.normalize("NFC", data[3:].decode("utf-8")), "utf-8-sig"
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return unicodedata.normalize("NFC", data.decode("utf-16")), "utf-16"
        try:
            return unicodedata.normalize("NFC", data.decode("utf-8")), "utf-8"
        except UnicodeDecodeError:
            pass
        candidates = ["cp1258"]
        try:
            from charset_normalizer import from_bytes

            candidates += [m.encoding for m in from_bytes(data[:200_000]) if m.encoding]
        except Exception:  # noqa: BLE001 - detection is best effort; cp1258 is tried first
            pass
    for enc in dict.fromkeys(candidates):
        try:
            text = unicodedata.normalize("NFC", data.decode(enc))
        except (UnicodeDecodeError, LookupError):
            continue
        if looks_vietnamese(text):
            return text, enc
    raise FileRejected(
        "Tệp không phải UTF-8 và không đọc được như Windows-1258; có thể là TCVN3/VNI. "
        "Hãy lưu lại dưới dạng UTF-8 hoặc dùng --encoding",
        "The file is not UTF-8 and does not decode as Windows-1258 Vietnamese; it may be "
        "TCVN3/VNI. Save it as UTF-8 or pass --encoding",
    )


def _sniff_separator(first_line: str) -> str:
    counts = {sep: first_line.count(sep) for sep in (",", ";", "\t", "|")}
    return max(counts, key=counts.get) if max(counts.values()) > 0 else ","


def tidy_frame(frame: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, list[int], dict[str, str]]:
    original = {}
    cols = []
    for c in frame.columns:
        n = normalise_column(c)
        if n in original:
            raise FileRejected(f"Cột bị trùng: {c}", f"Duplicate column: {c}")
        original[n] = str(c)
        cols.append(n)
    # Plain object columns of Python values (None for blanks): pandas 3 would otherwise infer
    # its string dtype and turn None back into NaN.
    data = {}
    for col, src in zip(cols, frame.columns, strict=True):
        data[col] = pd.Series([_clean_cell(v) for v in frame[src].tolist()], dtype=object)
    out = pd.DataFrame(data, index=range(len(frame)))
    rows = list(range(first_row, first_row + len(frame)))
    return out, rows, original


def _blank(cell: str) -> bool:
    return not cell.strip()


def read_csv_text(text: str) -> tuple[pd.DataFrame, list[int], dict[str, str], dict[int, str]]:
    """(frame, row numbers, original column names, unreadable rows) of CSV text.

    Why not pandas: pandas fills a short row (a file cut mid-line, a lost separator) with
    blanks and renumbers rows around blank lines. Here a row with fewer cells than the header,
    or with extra non-empty cells, is named as such; blank lines are skipped but still counted,
    so row numbers are those a spreadsheet shows (header = row 1)."""
    if not text.strip():
        raise FileRejected("Tệp rỗng (không có dòng tiêu đề)", "The file is empty (no header row)")
    sep = _sniff_separator(text.lstrip().split("\n", 1)[0])
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    except csv.Error as exc:
        raise FileRejected(f"Không đọc được CSV: {exc}", f"Cannot parse CSV: {exc}") from exc
    first = next(i for i, r in enumerate(records) if any(not _blank(c) for c in r))
    header = [c.strip() or f"cot_{j + 1}" for j, c in enumerate(records[first])]
    n = len(header)
    cells: list[list[str | None]] = []
    rows: list[int] = []
    unreadable: dict[int, str] = {}
    for r, rec in enumerate(records[first + 1:], start=first + 2):
        if all(_blank(c) for c in rec):
            continue
        pos = len(rows)
        if len(rec) < n:
            unreadable[pos] = (f"{len(rec)}/{n}")
            rec = rec + [""] * (n - len(rec))
        elif len(rec) > n:
            if any(not _blank(c) for c in rec[n:]):
                unreadable[pos] = f"{len(rec)}/{n}"
            rec = rec[:n]
        cells.append(rec)
        rows.append(r)
    frame = pd.DataFrame(cells, columns=header, dtype=object) if cells else pd.DataFrame(
        columns=header, dtype=object)
    frame, _, original = tidy_frame(frame, first_row=2)
    return frame, rows, original, unreadable


def _clean_cell(v: object) -> object:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, str):
        v = unicodedata.normalize("NFC", v).strip()
        return v or None
    return v


def _decode_geometries(wkb) -> tuple[list, dict[int, str]]:
    """WKB -> shapely per feature; a feature GEOS refuses is kept as None with the reason."""
    if wkb is None:
        return [], {}
    geoms: list = []
    broken: dict[int, str] = {}
    for i, b in enumerate(wkb):
        if b is None:
            geoms.append(None)
            continue
        try:
            geoms.append(shapely.from_wkb(b))
        except shapely.errors.GEOSException as exc:
            geoms.append(None)
            broken[i] = str(exc).split(": ", 1)[-1]
    return geoms, broken


def _refuse_json_nul(p: Path) -> None:
    """GDAL cuts a GeoJSON string at an escaped NUL ('a\\u0000b' is read as 'a') without a word:
    such a file is refused rather than stored shortened."""
    name = p.name.lower()
    if not name.endswith((".geojson", ".json", ".geojson.gz", ".json.gz")):
        return
    try:
        data = gzip.decompress(p.read_bytes()) if name.endswith(".gz") else p.read_bytes()
    except (OSError, EOFError, zlib.error):
        return  # unreadable: GDAL says why
    if b"\\u0000" in data:
        raise FileRejected("Tệp có ký tự NUL (\\u0000) trong văn bản; cần văn bản thường",
                           "The file has a NUL character (\\u0000) in a text value; expected plain "
                           "text")


def check_readable(p: Path) -> None:
    """A path that is missing, a directory, unreadable or 0 bytes is named as such (the readers
    would otherwise end in an OSError traceback or GDAL's 'not recognized as a supported format')."""
    if not p.exists():
        raise FileRejected(f"Không tìm thấy tệp {p}", f"File not found: {p}")
    if p.is_dir():
        raise FileRejected(f"{p} là thư mục, không phải tệp; cần một tệp (thư mục Shapefile: nén "
                           "thành .zip)",
                           f"{p} is a directory, not a file; expected a file (a Shapefile folder: "
                           "zip it)")
    try:
        with p.open("rb") as fh:
            empty = not fh.read(1)
    except OSError as exc:
        raise FileRejected(f"Không mở được tệp {p}: {exc.strerror}",
                           f"Cannot open {p}: {exc.strerror}") from exc
    if empty:
        raise FileRejected(f"Tệp rỗng (0 byte): {p}", f"The file is empty (0 bytes): {p}")


def sheet_table(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[int], dict[str, str]]:
    """(frame, row numbers, original column names) of a sheet read without a header.

    As for CSV: the first non-blank row is the header, blank rows are skipped but counted, so row
    numbers are those Excel shows; a header cell left empty is named cot_N, and a repeated header
    name is refused (tidy_frame)."""
    cells = [[_clean_cell(v) for v in rec] for rec in raw.itertuples(index=False)]
    filled = [i for i, rec in enumerate(cells) if any(v is not None for v in rec)]
    if not filled:
        return pd.DataFrame(), [], {}
    first = filled[0]
    header = [f"cot_{j + 1}" if v is None else str(v) for j, v in enumerate(cells[first])]
    body = [i for i in filled if i > first]
    # Columns with neither a header nor a value (formatting only) are not the user's columns.
    keep = [j for j, v in enumerate(cells[first]) if v is not None
            or any(cells[i][j] is not None for i in body)]
    frame = pd.DataFrame([[cells[i][j] for j in keep] for i in body],
                         columns=[header[j] for j in keep], dtype=object)
    frame, _, original = tidy_frame(frame, first_row=first + 2)
    # pandas' row 0 is the sheet's row 1 (header=None keeps leading blank rows).
    return frame, [i + 1 for i in body], original


_JSON_CRS = re.compile(r'"crs"\s*:\s*\{\s*"type"\s*:\s*"name"\s*,\s*"properties"\s*:\s*\{\s*'
                       r'"name"\s*:\s*"([^"]*)"')


def _refuse_unknown_json_crs(p: Path) -> None:
    """GDAL reads a GeoJSON whose (pre-RFC 7946) ``crs`` member it does not know as WGS 84,
    without a word: the points would be placed as if in degrees. Such a file is refused, naming
    the member, rather than guessed."""
    name = p.name.lower()
    if not name.endswith((".geojson", ".json", ".geojson.gz", ".json.gz")):
        return
    try:
        opener = gzip.open if name.endswith(".gz") else open
        with opener(p, "rb") as fh:
            head = fh.read(65536).decode("utf-8", "replace")
    except (OSError, EOFError, zlib.error):
        return  # unreadable: GDAL says why
    m = _JSON_CRS.search(head)
    if not m:
        return
    try:
        CRS.from_user_input(m.group(1))
    except Exception as exc:  # noqa: BLE001 - pyproj raises several types for bad input
        raise FileRejected(
            f"Thành phần \"crs\" của tệp ghi hệ tọa độ không xác định: '{m.group(1)}'; cần mã EPSG "
            "như EPSG:4326 hoặc EPSG:3405 (hoặc bỏ thành phần \"crs\" nếu tọa độ là WGS 84)",
            f"The file's \"crs\" member names an unknown CRS: '{m.group(1)}'; expected an EPSG "
            "code such as EPSG:4326 or EPSG:3405 (or remove the \"crs\" member if the coordinates "
            "are WGS 84)") from exc


def read_source(path: Path | str, *, sheet: str | None = None, encoding: str | None = None,
                layer: str | None = None) -> SourceTable:
    """Read any supported file; raise FileRejected with a bilingual reason otherwise."""
    p = Path(path)
    name = p.name.lower()
    check_readable(p)
    if name.endswith((".csv", ".txt", ".tsv")):
        text, used = decode_text(p.read_bytes(), encoding)
        frame, rows, original, unreadable = read_csv_text(text)
        return SourceTable(frame, rows, encoding=used, original_columns=original,
                           unreadable=unreadable)
    if name.endswith((".xlsx", ".xlsm")):
        try:
            # header=None: pandas would rename a repeated header ('loai.1') and take a blank
            # first row as the header; the sheet is read as cells and its header found as in CSV.
            raw = pd.read_excel(p, sheet_name=sheet or 0, header=None, dtype=object, engine="openpyxl")
        except Exception as exc:  # noqa: BLE001 - any openpyxl failure is a bad file
            raise FileRejected(f"Không đọc được XLSX: {exc}", f"Cannot read XLSX: {exc}") from exc
        frame, rows, original = sheet_table(raw)
        return SourceTable(frame, rows, encoding="xlsx", original_columns=original)
    if name.endswith(VECTOR_SUFFIXES):
        _refuse_json_nul(p)
        _refuse_unknown_json_crs(p)
        kw = {"layer": layer} if layer else {}
        if encoding:
            kw["encoding"] = encoding
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # GDAL's per-feature warnings
                meta, _, wkb, values = pyogrio.raw.read(vsi_path(p), **kw)
        except Exception as exc:  # noqa: BLE001 - GDAL's message names the problem
            raise FileRejected(f"Không đọc được tệp không gian: {exc}",
                               f"Cannot read the vector file: {exc}") from exc
        geoms, broken = _decode_geometries(wkb)
        attrs = pd.DataFrame(dict(zip(meta["fields"], values, strict=True)),
                             index=range(len(geoms)))
        frame, rows, original = tidy_frame(attrs, first_row=1)
        texts = " ".join(str(v) for c in frame.columns for v in frame[c] if isinstance(v, str))
        if looks_garbled(texts):
            raise FileRejected(
                "Văn bản trong tệp bị lỗi mã hóa (không phải UTF-8 tiếng Việt); dùng --encoding",
                "Text in the file is garbled (not UTF-8 Vietnamese); pass --encoding")
        crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
        return SourceTable(frame, rows, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs,
                           encoding=encoding or "utf-8", original_columns=original,
                           broken=broken)
    raise FileRejected(
        f"Định dạng không hỗ trợ: {p.name} (GeoJSON, GeoPackage, Shapefile .zip, CSV, XLSX)",
        f"Unsupported format: {p.name} (GeoJSON, GeoPackage, zipped Shapefile, CSV, XLSX)")
