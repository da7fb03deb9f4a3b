"""Ledger import: the company's invoice ledger (台账, an ERP or tax-platform export) as typed rows.

``read_ledger(path)`` reads CSV (UTF-8, UTF-8 with BOM, UTF-16, GBK/GB18030, detected) or XLSX,
finds the header row and maps its columns to ledger fields by the usual Chinese and English
headers (or by an explicit ``LedgerMapping``), and returns every usable row as a ``LedgerRow``.
A cell that cannot be read is reported as a ``RowProblem`` with its row number; it never stops
the import. Row numbers are the ones a spreadsheet shows (the header row included, 1-based).

A file that is empty, has no recognisable columns or is not a spreadsheet raises one
``LedgerError`` subclass whose message names the problem.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import tomllib
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pipeline.errors import ExitCode, InputError
from pipeline.fapiao import CENT, parse_amount

log = logging.getLogger(__name__)

# ---- errors ---------------------------------------------------------------------------------------


class LedgerError(InputError):
    """The ledger file cannot be used at all (a bad argument, not a bad invoice)."""

    exit_code = ExitCode.BAD_ARGS


class EmptyLedger(LedgerError):
    pass


class NoLedgerColumns(LedgerError):
    pass


class NotASpreadsheet(LedgerError):
    pass


# ---- records --------------------------------------------------------------------------------------

FIELDS = (
    "invoice_code",
    "invoice_number",
    "issue_date",
    "amount_excl_tax",
    "tax_amount",
    "total_amount",
    "seller_name",
    "seller_tax_id",
    "buyer_name",
    "buyer_tax_id",
)
AMOUNT_FIELDS = ("amount_excl_tax", "tax_amount", "total_amount")

FIELD_LABELS: dict[str, tuple[str, str]] = {
    "invoice_code": ("invoice code", "发票代码"),
    "invoice_number": ("invoice number", "发票号码"),
    "issue_date": ("issue date", "开票日期"),
    "amount_excl_tax": ("amount excl. tax", "金额"),
    "tax_amount": ("tax", "税额"),
    "total_amount": ("total incl. tax", "价税合计"),
    "seller_name": ("seller", "销售方名称"),
    "seller_tax_id": ("seller tax ID", "销售方纳税人识别号"),
    "buyer_name": ("buyer", "购买方名称"),
    "buyer_tax_id": ("buyer tax ID", "购买方纳税人识别号"),
}


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One ledger row; ``raw`` holds every non-empty cell of the row under its header."""

    row_number: int
    invoice_code: str | None = None
    invoice_number: str | None = None
    issue_date: date | None = None
    amount_excl_tax: Decimal | None = None
    tax_amount: Decimal | None = None
    total_amount: Decimal | None = None
    seller_name: str | None = None
    seller_tax_id: str | None = None
    buyer_name: str | None = None
    buyer_tax_id: str | None = None
    raw: dict[str, str] = field(default_factory=dict, compare=False)

    def value(self, name: str) -> Any:
        return getattr(self, name)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A cell or row the import could not use; ``skipped`` rows are left out of ``rows``."""

    row_number: int
    field: str | None
    value: str
    message: str
    message_zh: str
    skipped: bool = False

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.message}"


@dataclass(frozen=True)
class LedgerMapping:
    """How to read a ledger whose headers are not recognised: header → field, and a few options.

    As a file (JSON or TOML)::

        sheet = "2024"              # optional: the XLSX sheet
        header_row = 3              # optional: 1-based row of the headers
        date_format = "%d/%m/%Y"    # optional: strptime format of the date column
        encoding = "gb18030"        # optional: the CSV encoding
        [columns]
        "单据号" = "invoice_number"
        "供应商" = "seller_name"

    A flat table of ``"header" = "field"`` pairs works too.
    """

    columns: dict[str, str] = field(default_factory=dict)
    sheet: str | None = None
    header_row: int | None = None
    date_format: str | None = None
    encoding: str | None = None

    def __post_init__(self) -> None:
        bad = {column: name for column, name in self.columns.items() if name not in FIELDS}
        if bad:
            wrong = ", ".join(f"{column}={name}" for column, name in bad.items())
            raise LedgerError(
                f"unknown ledger field in the column mapping ({wrong}): use {', '.join(FIELDS)}"
            )
        if self.header_row is not None and self.header_row < 1:
            raise LedgerError(f"header_row must be 1 or more, not {self.header_row}")

    @classmethod
    def from_pairs(cls, pairs: Iterable[str]) -> LedgerMapping:
        """From ``COLUMN=FIELD`` strings (the ``--map`` flag)."""
        columns: dict[str, str] = {}
        for pair in pairs:
            column, sep, name = pair.rpartition("=")
            if not sep or not column.strip() or not name.strip():
                raise LedgerError(f"--map wants COLUMN=FIELD (e.g. 单据号=invoice_number), not {pair!r}")
            columns[column.strip()] = name.strip()
        return cls(columns=columns)

    @classmethod
    def from_file(cls, path: Path) -> LedgerMapping:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise LedgerError(f"cannot read the mapping file {path}: {exc.strerror}") from exc
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise LedgerError(f"mapping file {path} is not valid {path.suffix[1:] or 'TOML'}: {exc}") from exc
        if not isinstance(data, dict):
            raise LedgerError(f"mapping file {path} must hold a table of column = field pairs")
        options = {
            key: data.pop(key) for key in ("sheet", "header_row", "date_format", "encoding") if key in data
        }
        columns = data.pop("columns", {})
        if not isinstance(columns, dict):
            raise LedgerError(f"mapping file {path}: 'columns' must be a table of column = field pairs")
        columns = {**data, **columns}
        if any(not isinstance(value, str) for value in columns.values()):
            raise LedgerError(f"mapping file {path}: every column must map to a field name (a string)")
        try:
            header_row = int(options["header_row"]) if "header_row" in options else None
        except (TypeError, ValueError) as exc:
            raise LedgerError(f"mapping file {path}: header_row must be a number") from exc
        return cls(
            columns={str(key): value for key, value in columns.items()},
            sheet=options.get("sheet"),
            header_row=header_row,
            date_format=options.get("date_format"),
            encoding=options.get("encoding"),
        )

    def merged(self, override: LedgerMapping) -> LedgerMapping:
        """This mapping with ``override``'s columns and options on top (flags beat the file)."""
        return LedgerMapping(
            columns={**self.columns, **override.columns},
            sheet=override.sheet or self.sheet,
            header_row=override.header_row or self.header_row,
            date_format=override.date_format or self.date_format,
            encoding=override.encoding or self.encoding,
        )


@dataclass
class LedgerImport:
    path: Path
    format: str  # "csv" or "xlsx"
    encoding: str | None  # CSV only: "utf-8", "utf-8-sig", "utf-16", "gbk", "gb18030", "cp1252"
    sheet: str | None  # XLSX only
    header_row: int
    headers: list[str]
    columns: dict[str, str]  # field -> header it was read from
    rows: list[LedgerRow]
    problems: list[RowProblem]

    @property
    def skipped(self) -> list[RowProblem]:
        return [problem for problem in self.problems if problem.skipped]

    def describe(self) -> str:
        where = f"sheet {self.sheet!r}" if self.sheet else f"{self.encoding} {self.format.upper()}"
        return (
            f"{self.path.name} ({where}, headers on row {self.header_row}): {len(self.rows)} rows, "
            f"{len(self.skipped)} skipped, {len(self.problems)} problems"
        )


# ---- header recognition ---------------------------------------------------------------------------

# Normalised header spellings (see _norm_header) for each field.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "invoice_code": ("发票代码", "代码", "invoicecode", "fapiaocode"),
    "invoice_number": (
        "发票号码", "发票号", "号码", "数电票号码", "全电发票号码", "数电发票号码", "发票编号",
        "invoiceno", "invoicenumber", "invoicenum", "invoice", "invno", "fapiaono", "fapiaonumber",
        "number", "no",
    ),
    "issue_date": (
        "开票日期", "发票日期", "开具日期", "日期", "date", "invoicedate", "issuedate", "dateofissue",
    ),
    "amount_excl_tax": (
        "金额", "不含税金额", "合计金额", "金额不含税", "发票金额", "净额", "net", "netamount",
        "amountexcltax", "amountexclvat", "amountexcludingtax", "amountbeforetax", "subtotal",
        "exclvat", "exvat", "nettotal",
    ),
    "tax_amount": (
        "税额", "合计税额", "增值税额", "进项税额", "销项税额", "发票税额", "tax", "taxamount", "vat",
        "vatamount",
    ),
    "total_amount": (
        "价税合计", "含税金额", "价税合计金额", "总金额", "总额", "价税合计小写", "total", "totalamount",
        "gross", "grossamount", "amountincltax", "amountinclvat", "totalincltax", "totalinclvat",
        "invoicetotal", "amountincludingtax",
    ),
    "seller_name": (
        "销售方名称", "销方名称", "销售方", "销货单位", "销货方名称", "销售单位", "销售方单位名称",
        "供应商", "供应商名称", "开票方", "开票方名称", "开票单位", "vendor", "vendorname", "seller",
        "sellername", "supplier", "suppliername", "issuer",
    ),
    "seller_tax_id": (
        "销售方纳税人识别号", "销售方税号", "销方税号", "销方识别号", "销售方识别号", "销方纳税人识别号",
        "供应商税号", "销售方统一社会信用代码", "开票方税号", "开票方纳税人识别号", "vendortaxid",
        "sellertaxid", "suppliertaxid", "vendorvatno", "vendorvatid", "taxid", "vatno",
    ),
    "buyer_name": (
        "购买方名称", "购方名称", "购买方", "购货单位", "购货方名称", "购买方单位名称", "受票方名称",
        "客户名称", "buyer", "buyername", "customer", "customername", "billto",
    ),
    "buyer_tax_id": (
        "购买方纳税人识别号", "购买方税号", "购方税号", "购方识别号", "购方纳税人识别号", "受票方税号",
        "buyertaxid", "customertaxid", "buyervatno",
    ),
}  # fmt: skip
# "Amount" in an English ledger is the total unless a separate total column exists.
AMBIGUOUS_AMOUNT = ("amount", "invoiceamount")
# Spellings too generic to count when merely contained in a longer header (凭证号码, Vendor Number).
EXACT_ONLY = frozenset(
    {"代码", "号码", "日期", "金额", "税额", "发票号", "code", "number", "invoice", "vendor", "seller", "buyer",
     "customer", "supplier", "issuer", "billto", "date", "invoicenum"}
)  # fmt: skip

_HEADER_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
_HEADER_UNIT = re.compile(r"[(（\[【][^)）\]】]{0,12}[)）\]】]$")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _norm_header(text: str) -> str:
    s = unicodedata.normalize("NFKC", str(text)).strip().lower()
    s = _HEADER_UNIT.sub("", s)  # 金额(元), Total (CNY)
    return _HEADER_NOISE.sub("", s)


def _alias_table() -> list[tuple[str, str]]:
    table = [(alias, name) for name, aliases in HEADER_ALIASES.items() for alias in aliases]
    return sorted(table, key=lambda item: -len(item[0]))


_ALIASES = _alias_table()
_EXACT_ALIASES = {alias: name for alias, name in _ALIASES}


def _header_candidates(header: str) -> list[tuple[int, str]]:
    """(score, field) for one header: exact spellings score high, a contained spelling by its length."""
    norm = _norm_header(header)
    if not norm:
        return []
    found: list[tuple[int, str]] = []
    if norm in _EXACT_ALIASES:
        found.append((100 + len(norm), _EXACT_ALIASES[norm]))
    elif norm in AMBIGUOUS_AMOUNT:
        found.append((90, "amount?"))
    for alias, name in _ALIASES:
        long_enough = len(alias) >= 2 if _CJK.search(alias) else len(alias) >= 3
        if long_enough and alias not in EXACT_ONLY and alias != norm and alias in norm:
            found.append((len(alias), name))
    return found


def detect_columns(headers: Sequence[str]) -> dict[str, int]:
    """Map ledger fields to column indexes by their headers; each field and column used once."""
    scored = sorted(
        (
            (score, -index, name)
            for index, header in enumerate(headers)
            for score, name in _header_candidates(header)
        ),
        reverse=True,
    )
    columns: dict[str, int] = {}
    used: set[int] = set()
    ambiguous: list[int] = []
    for _score, negative_index, name in scored:
        index = -negative_index
        if index in used:
            continue
        if name == "amount?":
            ambiguous.append(index)
            used.add(index)
            continue
        if name not in columns:
            columns[name] = index
            used.add(index)
    for index in sorted(ambiguous):
        target = "amount_excl_tax" if "total_amount" in columns else "total_amount"
        if target not in columns:
            columns[target] = index
    return columns


def _usable(columns: dict[str, int]) -> bool:
    """Enough to find invoices: the number, or two of date / an amount / the seller."""
    if "invoice_number" in columns:
        return True
    clues = [
        "issue_date" in columns,
        any(name in columns for name in AMOUNT_FIELDS),
        "seller_name" in columns or "seller_tax_id" in columns,
    ]
    return sum(clues) >= 2


def _expected_headers() -> str:
    return (
        "发票代码/Invoice Code, 发票号码/Invoice No, 开票日期/Date, 金额/Net, 税额/Tax, 价税合计/Total, "
        "销售方名称/Vendor, 销售方纳税人识别号/Vendor Tax ID, 购买方名称/Buyer"
    )


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
    """Each sheet's title and rows, read one sheet at a time (the first usable one is enough)."""
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


# ---- cell values ----------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    if type(value) is str:  # the common case (every CSV cell): no other checks
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


_SCIENTIFIC = re.compile(r"^\d(?:\.\d+)?E\+?\d+$", re.IGNORECASE)
_EXCEL_TEXT = re.compile(r'^="(.*)"$')
_SUMMARY_WORDS = {
    "合计",
    "总计",
    "小计",
    "本页合计",
    "累计",
    "total",
    "totals",
    "sum",
    "grandtotal",
    "subtotal",
}
_ZERO_TAX = {"***", "**", "免税", "不征税", "-", "—", "--"}
_MOJIBAKE = re.compile(
    r"[\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]"
)


def repair_mojibake(text: str) -> str | None:
    """Undo a wrong-encoding round trip; None if the text does not look garbled.

    Two kinds are met in ledgers: UTF-8 bytes read as GBK (北京 → 鍖椾含, valid CJK, but its GBK
    bytes form valid UTF-8, which real Chinese text practically never does) and GBK or UTF-8 bytes
    read as Latin-1/cp1252 (北京 → ±±¾©).
    """
    if _CJK.search(text):
        try:
            fixed = text.encode("gb18030").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return None
        return fixed if fixed != text and _CJK.search(fixed) and not _CONTROL.search(fixed) else None
    high = len(_MOJIBAKE.findall(text))
    if high < 2 or high * 2 < len(text.replace(" ", "")):
        return None
    for wrong in ("cp1252", "latin-1"):
        try:
            raw = text.encode(wrong)
        except UnicodeEncodeError:
            continue
        for right in ("utf-8", "gb18030"):
            try:
                fixed = raw.decode(right)
            except UnicodeDecodeError:
                continue
            if len(_CJK.findall(fixed)) >= 2 and not _CONTROL.search(fixed):
                return fixed
    return None


@dataclass
class _RowReader:
    """Turns one row of cells into a LedgerRow, collecting problems on the way."""

    columns: dict[str, int]
    headers: list[str]
    date_format: str | None
    day_first: bool
    problems: list[RowProblem] = field(default_factory=list)
    # ledgers repeat dates and names a lot: parse each distinct text once
    _dates: dict[str, date | None] = field(default_factory=dict)
    _names: dict[str, str | None] = field(default_factory=dict)

    def _problem(
        self, row: int, name: str | None, value: str, en: str, zh: str, skipped: bool = False
    ) -> None:
        self.problems.append(RowProblem(row, name, value, en, zh, skipped))

    def read(self, row_number: int, cells: Sequence[Any]) -> LedgerRow | None:
        texts = [_cell_text(cell) for cell in cells]
        if not any(texts):
            return None
        raw = {
            self.headers[i] or f"column {i + 1}": t
            for i, t in enumerate(texts)
            if t and i < len(self.headers)
        }
        values: dict[str, Any] = {}
        for name, index in self.columns.items():
            cell = cells[index] if index < len(cells) else None
            text = texts[index] if index < len(texts) else ""
            if text:
                values[name] = self._value(row_number, name, cell, text)
        number = values.get("invoice_number")
        if number is None and any(_norm_header(t) in _SUMMARY_WORDS for t in texts[:6] if t):
            self._problem(
                row_number, None, " ".join(texts[:6]), "a totals row: skipped", "合计行：已跳过", True
            )
            return None
        if number is None and not any(values.get(name) is not None for name in AMOUNT_FIELDS):
            self._problem(
                row_number,
                None,
                " | ".join(t for t in texts if t)[:120],
                "no invoice number and no amount: skipped",
                "既无发票号码也无金额：已跳过",
                True,
            )
            return None
        excl, tax, total = (values.get(name) for name in AMOUNT_FIELDS)
        if excl is not None and tax is not None and total is not None and abs(excl + tax - total) > CENT:
            self._problem(
                row_number,
                "total_amount",
                str(total),
                f"amount {excl} + tax {tax} is not the total {total}",
                f"金额 {excl} + 税额 {tax} 不等于价税合计 {total}",
            )
        return LedgerRow(row_number=row_number, raw=raw, **values)

    def _value(self, row: int, name: str, cell: Any, text: str) -> Any:
        if name in ("invoice_code", "invoice_number"):
            return self._identifier(row, name, cell, text)
        if name == "issue_date":
            if isinstance(cell, str):
                if text not in self._dates:
                    self._dates[text] = parse_ledger_date(text, self.date_format, self.day_first)
                found = self._dates[text]
            else:
                found = parse_ledger_date(cell, self.date_format, self.day_first)
            if found is None:
                self._problem(row, name, text, f"cannot read date {text!r}", f"无法识别日期 {text!r}")
            return found
        if name in AMOUNT_FIELDS:
            found = _amount(cell, text)
            if found is None and name == "tax_amount" and text in _ZERO_TAX:
                return Decimal("0.00")
            if found is None:
                label = FIELD_LABELS[name]
                self._problem(
                    row, name, text, f"cannot read {label[0]} {text!r}", f"无法识别{label[1]} {text!r}"
                )
            return found
        if name in ("seller_tax_id", "buyer_tax_id"):
            return "".join(unicodedata.normalize("NFKC", text).split()).upper() or None
        name_text = " ".join(text.split())
        if name_text not in self._names:
            self._names[name_text] = repair_mojibake(name_text)
        fixed = self._names[name_text]
        if fixed is not None:
            self._problem(
                row,
                name,
                name_text,
                f"{FIELD_LABELS[name][0]} was garbled by a wrong encoding; read as {fixed}",
                f"{FIELD_LABELS[name][1]}编码错误（乱码），已还原为 {fixed}",
            )
            return fixed
        return name_text

    def _identifier(self, row: int, name: str, cell: Any, text: str) -> str | None:
        label = FIELD_LABELS[name]
        if isinstance(cell, float) and (not cell.is_integer() or abs(cell) >= 1e15):
            self._problem(
                row,
                name,
                text,
                f"{label[0]} {text} was stored as a spreadsheet number and lost digits: format the column as text",
                f"{label[1]} {text} 被存为数值，位数已丢失：请将该列设为文本格式",
            )
            return None
        s = "".join(unicodedata.normalize("NFKC", text).split())
        match = _EXCEL_TEXT.match(s)
        if match:
            s = match.group(1)
        s = s.lstrip("'").upper()
        if _SCIENTIFIC.match(s):
            self._problem(
                row,
                name,
                text,
                f"{label[0]} {text} was shortened to scientific notation by a spreadsheet: export it as text",
                f"{label[1]} {text} 被表格软件改成科学计数法：请按文本导出",
            )
            return None
        if isinstance(cell, int) and not isinstance(cell, bool):
            # A number cell dropped the leading zeros: 12-digit codes start with 0, numbers have 8 digits.
            if name == "invoice_code" and len(s) == 11:
                s = "0" + s
            elif name == "invoice_number" and len(s) < 8:
                s = s.zfill(8)
        return s or None


def _amount(cell: Any, text: str) -> Decimal | None:
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        try:
            return Decimal(repr(cell)).quantize(CENT, rounding=ROUND_HALF_UP)
        except InvalidOperation:
            return None
    s = text.strip()
    if _PLAIN_AMOUNT.match(s):  # 1234.56: most cells, without parse_amount's normalisation
        return Decimal(s).quantize(CENT, rounding=ROUND_HALF_UP)
    if s.startswith(("(", "（")) and s.endswith((")", "）")):
        inner = parse_amount(s[1:-1])
        return -inner if inner is not None else None
    return parse_amount(s)


_PLAIN_AMOUNT = re.compile(r"^-?\d{1,15}(?:\.\d{1,2})?$")
_YMD = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T].*)?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DMY = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?:\s.*)?$")
_NAMED_FORMATS = ("%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%d %B %Y", "%B %d, %Y", "%d-%b-%y", "%b %d %Y")
_EXCEL_EPOCH = date(1899, 12, 30)


def parse_ledger_date(cell: Any, date_format: str | None = None, day_first: bool = True) -> date | None:
    """A ledger date: a date cell, an Excel serial, 2024-01-05, 2024/1/5, 2024年1月5日, 20240105,
    05/01/2024 (``day_first`` decides), 5 Jan 2024; or ``date_format`` (strptime) when given."""
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        if 20000 <= cell <= 80000:
            return _EXCEL_EPOCH + timedelta(days=int(cell))
        cell = _cell_text(cell)
    text = unicodedata.normalize("NFKC", str(cell)).strip()
    if not text:
        return None
    try:
        if date_format:
            return datetime.strptime(text, date_format).date()
        match = _YMD.match(text) or _COMPACT.match(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            return date(year, month, day)
        match = _DMY.match(text)
        if match:
            first, second, year = (int(part) for part in match.groups())
            day, month = (first, second) if day_first else (second, first)
            return date(year, month, day)
        if text.isdigit() and 20000 <= int(text) <= 80000:
            return _EXCEL_EPOCH + timedelta(days=int(text))
    except ValueError:
        return None
    for fmt in _NAMED_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _day_first(cells: Iterable[Any]) -> tuple[bool, bool]:
    """(day_first, ambiguous) for a column of D/M/Y or M/D/Y dates, judged from the unambiguous ones."""
    first_big = second_big = seen = False
    for cell in cells:
        if not isinstance(cell, str):
            continue
        match = _DMY.match(cell.strip())
        if not match:
            continue
        seen = True
        first, second = int(match.group(1)), int(match.group(2))
        first_big |= first > 12
        second_big |= second > 12
    if first_big or not second_big:
        return True, seen and not first_big and not second_big
    return False, False


# ---- the import -----------------------------------------------------------------------------------

HEADER_SEARCH_ROWS = 30


def _find_header(
    table: list[list[Any]], mapping: LedgerMapping, name: str
) -> tuple[int, list[str], dict[str, int]] | None:
    """(index of the header row, headers, field -> column) or None when nothing is recognisable."""
    wanted = {_norm_header(column): target for column, target in mapping.columns.items()}
    candidates = (
        [mapping.header_row - 1] if mapping.header_row else range(min(HEADER_SEARCH_ROWS, len(table)))
    )
    best: tuple[int, int, list[str], dict[str, int]] | None = None
    for index in candidates:
        if index >= len(table):
            raise LedgerError(f"ledger {name} has no row {index + 1} (header_row in the mapping)")
        headers = [_cell_text(cell) for cell in table[index]]
        if not any(headers):
            continue
        columns = detect_columns(headers)
        explicit = {wanted[_norm_header(h)]: i for i, h in enumerate(headers) if _norm_header(h) in wanted}
        if wanted and len(explicit) < len(wanted) and not mapping.header_row:
            continue
        for target, column in explicit.items():
            columns = {k: v for k, v in columns.items() if v != column}
            columns[target] = column
        if not _usable(columns):
            continue
        score = len(columns) + 10 * len(explicit)
        if best is None or score > best[0]:
            best = (score, index, headers, columns)
    if best is None:
        return None
    return best[1], best[2], best[3]


def _first_headers(table: list[list[Any]]) -> list[str]:
    for row in table[:HEADER_SEARCH_ROWS]:
        headers = [_cell_text(cell) for cell in row]
        if any(headers):
            return [h for h in headers if h]
    return []


def _read_table(
    path: Path,
    fmt: str,
    encoding: str | None,
    sheet: str | None,
    table: list[list[Any]],
    mapping: LedgerMapping,
) -> LedgerImport:
    name = path.name
    if not any(any(_cell_text(cell) for cell in row) for row in table):
        raise EmptyLedger(f"ledger {name} is empty{f' (sheet {sheet!r})' if sheet else ''}: no rows to read")
    found = _find_header(table, mapping, name)
    if found is None:
        headers = _first_headers(table)
        missing = [c for c in mapping.columns if _norm_header(c) not in {_norm_header(h) for h in headers}]
        if missing:
            raise NoLedgerColumns(
                f"ledger {name}: mapped column(s) {', '.join(missing)} not found; "
                f"the columns are: {', '.join(headers[:20]) or '(none)'}"
            )
        raise NoLedgerColumns(
            f"no recognisable columns in ledger {name}: found {', '.join(headers[:20]) or '(no headers)'}; "
            f"expected some of {_expected_headers()} (or map them with --map COLUMN=FIELD)"
        )
    header_index, headers, columns = found
    present = {_norm_header(h) for h in headers}
    missing = [column for column in mapping.columns if _norm_header(column) not in present]
    if missing:
        raise NoLedgerColumns(
            f"ledger {name}: mapped column(s) {', '.join(missing)} not found on row {header_index + 1}; "
            f"the columns are: {', '.join(h for h in headers if h)}"
        )
    data_rows = table[header_index + 1 :]
    if not any(any(_cell_text(cell) for cell in row) for row in data_rows):
        raise EmptyLedger(
            f"ledger {name} has column headers ({', '.join(h for h in headers if h)}) but no data rows"
        )
    day_first, ambiguous = True, False
    if "issue_date" in columns and not mapping.date_format:
        date_index = columns["issue_date"]
        day_first, ambiguous = _day_first(row[date_index] for row in data_rows if date_index < len(row))
    reader = _RowReader(columns, headers, mapping.date_format, day_first)
    if ambiguous:
        reader.problems.append(
            RowProblem(
                header_index + 1,
                "issue_date",
                headers[columns["issue_date"]],
                "dates like 03/04/2024 are ambiguous and were read day/month/year: set date_format "
                "in a mapping file if that is wrong",
                "日期（如 03/04/2024）存在歧义，已按 日/月/年 读取；如有误请在映射文件中设置 date_format",
            )
        )
    rows: list[LedgerRow] = []
    for offset, cells in enumerate(data_rows):
        row = reader.read(header_index + 2 + offset, cells)
        if row is not None:
            rows.append(row)
    result = LedgerImport(
        path=path,
        format=fmt,
        encoding=encoding,
        sheet=sheet,
        header_row=header_index + 1,
        headers=headers,
        columns={name_: headers[index] for name_, index in columns.items()},
        rows=rows,
        problems=reader.problems,
    )
    log.info("ledger %s", result.describe())
    return result


def read_ledger(path: Path | str, mapping: LedgerMapping | None = None) -> LedgerImport:
    """Read a ledger export (CSV in any usual encoding, or XLSX) into typed rows and problems."""
    path = Path(path)
    mapping = mapping or LedgerMapping()
    try:
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise LedgerError(f"ledger {path} is a folder, not a file") from exc
    except OSError as exc:
        raise LedgerError(f"cannot read ledger {path}: {exc.strerror}") from exc
    if not data.strip():
        raise EmptyLedger(f"ledger {path.name} is empty (0 bytes of data)")
    if _sniff(data, path.name) == "xlsx":
        errors: list[LedgerError] = []
        for title, rows in _xlsx_sheets(data, path.name, mapping.sheet):
            try:
                return _read_table(path, "xlsx", None, title, rows, mapping)
            except (EmptyLedger, NoLedgerColumns) as exc:
                errors.append(exc)
        if not errors:
            raise EmptyLedger(f"ledger {path.name} has no sheets")
        raise max(errors, key=lambda exc: isinstance(exc, NoLedgerColumns))
    text, encoding = decode_text(data, path.name, mapping.encoding)
    if not text.strip():
        raise EmptyLedger(f"ledger {path.name} is empty (only whitespace)")
    try:
        table = _csv_rows(text)
    except NotASpreadsheet as exc:
        raise NotASpreadsheet(f"ledger {path.name} is {exc}") from exc
    return _read_table(path, "csv", encoding, None, table, mapping)
