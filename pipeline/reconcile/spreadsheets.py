"""Reading the file: what it is (CSV in which encoding, XLSX, or not a spreadsheet at all), and
its rows as lists of cells.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pipeline.reconcile.records import LedgerError, NotASpreadsheet

log = logging.getLogger(__name__)

# ---- reading the file -----------------------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
)
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _sniff(data: bytes, name: str) -> str:
    """``"xlsx"`` or ``"text"``; anything else raises ``NotASpreadsheet`` naming what the file is."""
    hint = "export the ledger as CSV or XLSX"
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise NotASpreadsheet(f"ledger {name} is {what}, not a spreadsheet: {hint}")
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        raise NotASpreadsheet(f"ledger {name} is a WebP image, not a spreadsheet: {hint}")
    if data.startswith(_OLE):
        raise NotASpreadsheet(
            f"ledger {name} is an old-style Excel .xls (or another Office) file: save it as .xlsx or CSV"
        )
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile as exc:
            raise NotASpreadsheet(f"ledger {name} is a damaged ZIP/XLSX file: {exc}") from exc
        if "xl/workbook.xml" in names:
            return "xlsx"
        kind = "an OpenDocument file" if "content.xml" in names else "a ZIP archive"
        raise NotASpreadsheet(f"ledger {name} is {kind}, not an Excel workbook: {hint}")
    if not any(data.startswith(bom) for bom, _ in _BOMS) and b"\x00" in data[:8192]:
        raise NotASpreadsheet(f"ledger {name} is a binary file, not a CSV or XLSX spreadsheet: {hint}")
    return "text"


def decode_text(data: bytes, name: str, encoding: str | None = None) -> tuple[str, str]:
    """Decode CSV bytes; returns (text, encoding). Tries BOMs, UTF-8, GBK, GB18030, then cp1252."""
    if encoding:
        try:
            return data.decode(encoding), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise LedgerError(f"ledger {name} cannot be decoded as {encoding}: {exc}") from exc
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as exc:
                raise NotASpreadsheet(f"ledger {name} starts with a {codec} mark but is not {codec}") from exc
    for codec in ("utf-8", "gbk", "gb18030", "cp1252"):
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        sample = text[:65536]
        if len(_CONTROL.findall(sample)) > max(2, len(sample) // 200):
            break
        return text, codec
    raise NotASpreadsheet(
        f"ledger {name} is not text in UTF-8 or GBK/GB18030 and not an XLSX workbook: export it as CSV or XLSX"
    )


def _delimiter(text: str) -> str:
    lines = [line for line in text[:65536].splitlines()[:60] if line.strip()]
    best, best_score = ",", 0
    for delimiter in (",", "\t", ";", "|"):
        counts = Counter(len(row) for row in csv.reader(lines, delimiter=delimiter))
        width, times = max(counts.items(), key=lambda item: (item[1], item[0]), default=(1, 0))
        score = times * (width > 1) * 1000 + width
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _csv_rows(text: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        return list(reader)
    except csv.Error as exc:
        raise NotASpreadsheet(f"not a readable CSV file (line {reader.line_num}): {exc}") from exc


def _xlsx_sheets(data: bytes, name: str, only: str | None) -> Iterator[tuple[str, list[list[Any]]]]:
    """Each sheet's title and rows: read from the sheets' XML (``xlsx``, several times faster), or by
    openpyxl where that reader does not understand the workbook (and for the errors it names)."""
    from pipeline.reconcile.xlsx import xlsx_sheets

    try:
        sheets = list(xlsx_sheets(data, only))
    except Exception as exc:  # any surprise in the XML: openpyxl reads it, or says what is wrong
        log.debug("%s: read by openpyxl (%s: %s)", name, type(exc).__name__, exc)
    else:
        if sheets:
            yield from sheets
            return
    yield from _openpyxl_sheets(data, name, only)


def _openpyxl_sheets(data: bytes, name: str, only: str | None) -> Iterator[tuple[str, list[list[Any]]]]:
    """Each sheet's title and rows through openpyxl (read-only, values only), one sheet at a time."""
    import openpyxl  # heavy: imported only for XLSX files

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook
        raise NotASpreadsheet(f"ledger {name} looks like XLSX but cannot be opened: {exc}") from exc
    try:
        if only is not None and only not in workbook.sheetnames:
            raise LedgerError(
                f"ledger {name} has no sheet named {only!r} (sheets: {', '.join(workbook.sheetnames)})"
            )
        for sheet in workbook.worksheets:
            if only is None or sheet.title == only:
                yield sheet.title, [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
