"""Tax-platform exports: the tax authority's own list of invoices, with a status for each.

Three exports are recognised by their headers (each as CSV in UTF-8/GBK, with or without BOM,
or XLSX; the header row is found below any title rows, a totals row at the bottom is skipped):

- 全量发票查询 (电子发票服务平台 → 发票查询统计): 序号, 发票代码, 发票号码, 数电发票号码,
  销方识别号, 销方名称, 购方识别号, 购买方名称, 开票日期, 金额, 税额, 价税合计, 发票来源,
  发票票种, 发票状态, 是否正数发票, 发票风险等级, 开票人, 备注. An XLSX may carry a second
  sheet of item lines (货物或应税劳务名称 …), attached to their invoices when present.
- 数电 抵扣勾选: 是否勾选, 数电发票号码, 发票代码, 发票号码, 开票日期, 金额, 票面税额,
  有效抵扣税额, 销售方纳税人名称, 销售方纳税人识别号, 票种, 发票状态, 红字锁定标志, 勾选时间,
  发票风险等级.
- 增值税发票综合服务平台 勾选 (older): 发票代码, 发票号码, 开票日期, 销方名称, 金额, 税额,
  有效税额, 勾选日期, 发票类型, 发票状态 (0 正常, 1 失控, 2 作废, 3 红冲, 4 异常), 管理状态.

Rows become ``PlatformInvoice`` records. A row that cannot be used is a ``RowProblem`` with its
row number (the run goes on); an empty file or one that is not a spreadsheet raises a
``PlatformError`` (exit 2). The same invoice in several exports (the full list and the deduction
list) is merged into one record by ``merge_platform``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from pipeline.reconcile.match import canonical_id
from pipeline.reconcile.sources import (
    FIELDS,
    HEADER_SEARCH_ROWS,
    EmptyLedger,
    LedgerError,
    LedgerMapping,
    LedgerRow,
    NoLedgerColumns,
    NotASpreadsheet,
    RowProblem,
    _amount,
    _cell_text,
    _csv_rows,
    _norm_header,
    _RowReader,
    _sniff,
    _xlsx_sheets,
    decode_text,
)

log = logging.getLogger(__name__)


class PlatformError(LedgerError):
    """A tax-platform export that cannot be used at all (exit 2)."""


class PlatformStatus(StrEnum):
    NORMAL = "normal"  # 正常
    VOIDED = "voided"  # 作废
    RED_REVERSED = "red_reversed"  # 红冲 / 已红冲 / 全额红冲
    PARTLY_RED_REVERSED = "partly_red_reversed"  # 部分红冲
    OUT_OF_CONTROL = "out_of_control"  # 失控
    ABNORMAL = "abnormal"  # 异常
    UNKNOWN = "unknown"


STATUS_LABELS: dict[str, tuple[str, str]] = {
    PlatformStatus.NORMAL: ("normal", "正常"),
    PlatformStatus.VOIDED: ("voided", "作废"),
    PlatformStatus.RED_REVERSED: ("red-reversed", "已红冲"),
    PlatformStatus.PARTLY_RED_REVERSED: ("partly red-reversed", "部分红冲"),
    PlatformStatus.OUT_OF_CONTROL: ("out of control (失控)", "失控"),
    PlatformStatus.ABNORMAL: ("abnormal (异常)", "异常"),
    PlatformStatus.UNKNOWN: ("unknown", "未知"),
}

# The older 综合服务平台 codes its 发票状态 as digits.
_STATUS_CODES = {
    "0": PlatformStatus.NORMAL,
    "1": PlatformStatus.OUT_OF_CONTROL,
    "2": PlatformStatus.VOIDED,
    "3": PlatformStatus.RED_REVERSED,
    "4": PlatformStatus.ABNORMAL,
}


@lru_cache(maxsize=4096)
def parse_status(text: str) -> PlatformStatus | None:
    """发票状态 as the platform writes it (正常, 已作废, 部分红冲, 3, 3-红冲 ...); None if unreadable."""
    t = _norm_header(text)
    if not t:
        return PlatformStatus.NORMAL
    code = re.match(r"^([0-4])(?![0-9])", t)
    if code:
        return _STATUS_CODES[code.group(1)]
    if "部分红冲" in t or "部分冲红" in t:
        return PlatformStatus.PARTLY_RED_REVERSED
    if "红冲" in t or "冲红" in t:
        return PlatformStatus.RED_REVERSED
    if "作废" in t:
        return PlatformStatus.VOIDED
    if "失控" in t:
        return PlatformStatus.OUT_OF_CONTROL
    if "异常" in t or "非正常" in t:
        return PlatformStatus.ABNORMAL
    if t in ("正常", "normal", "有效", "已开具", "正常发票"):
        return PlatformStatus.NORMAL
    return None


_YES = {"是", "y", "yes", "1", "true", "已勾选", "勾选", "已抵扣", "已确认"}
_NO = {"否", "n", "no", "0", "false", "未勾选", "不勾选", "未抵扣", ""}


@lru_cache(maxsize=1024)
def _yes_no(text: str) -> bool | None:
    t = _norm_header(text)
    if t in _YES:
        return True
    if t in _NO:
        return False
    return None


_NO_RISK = {"", "正常", "无", "无风险", "低", "低风险", "norisk", "none", "low", "0"}


@lru_cache(maxsize=4096)
def is_high_risk(level: str | None) -> bool:
    """发票风险等级: 高 / 高风险 / 疑点 / 重大 count as high; 中 / 低 / 正常 do not."""
    if not level:
        return False
    t = _norm_header(level)
    if t in _NO_RISK:
        return False
    return any(word in t for word in ("高", "疑点", "重大", "high", "3"))


@dataclass(slots=True, eq=False)  # not frozen: 100,000 of them are made per export, and frozen init is slow
class PlatformInvoice:
    """One invoice as the tax platform lists it."""

    source: str  # file name
    row_number: int  # row in that file (as a spreadsheet shows it)
    format: str  # "full_list", "deduction" or "deduction_legacy"
    invoice_code: str | None = None
    invoice_number: str | None = None  # the 20-digit 数电 number, or the 8-digit number with a code
    digital_number: str | None = None  # 数电发票号码 when the row also has a code + number
    issue_date: Any = None
    amount_excl_tax: Decimal | None = None
    tax_amount: Decimal | None = None
    total_amount: Decimal | None = None
    seller_name: str | None = None
    seller_tax_id: str | None = None
    buyer_name: str | None = None
    buyer_tax_id: str | None = None
    status: PlatformStatus = PlatformStatus.NORMAL
    status_text: str = ""
    positive: bool | None = None  # 是否正数发票
    kind: str | None = None  # 发票票种 / 票种 / 发票类型
    risk: str | None = None  # 发票风险等级
    deducted: bool = False  # 勾选 (selected for deduction)
    deducted_on: str | None = None
    red_locked: bool = False  # 红字锁定标志
    effective_tax: Decimal | None = None
    remarks: str | None = None
    items: tuple[dict[str, str], ...] = ()
    sources: tuple[str, ...] = ()  # every "file:row" this record was merged from

    def value(self, name: str) -> Any:
        return getattr(self, name)

    @property
    def is_red(self) -> bool:
        """A red-letter invoice: 是否正数发票 = 否, a negative amount, or 红字/负数 in its kind."""
        if self.positive is False:
            return True
        if any(v is not None and v < 0 for v in (self.total_amount, self.amount_excl_tax)):
            return True
        return bool(self.kind and re.search("红字|负数", self.kind))

    @property
    def high_risk(self) -> bool:
        return is_high_risk(self.risk)

    @property
    def where(self) -> str:
        return ", ".join(self.sources) or f"{self.source}:{self.row_number}"

    def key(self) -> tuple[str, str]:
        return canonical_id(self.invoice_code), canonical_id(self.invoice_number)

    def as_ledger_row(self, row_number: int) -> LedgerRow:
        """The record in the shape the matcher takes (``row_number`` is its position, 1-based)."""
        return LedgerRow(
            row_number=row_number,
            invoice_code=self.invoice_code,
            invoice_number=self.invoice_number,
            issue_date=self.issue_date,
            amount_excl_tax=self.amount_excl_tax,
            tax_amount=self.tax_amount,
            total_amount=self.total_amount,
            seller_name=self.seller_name,
            seller_tax_id=self.seller_tax_id,
            buyer_name=self.buyer_name,
            buyer_tax_id=self.buyer_tax_id,
        )


@dataclass
class PlatformImport:
    path: Path
    format: str
    sheet: str | None
    encoding: str | None
    header_row: int
    invoices: list[PlatformInvoice]
    problems: list[RowProblem]
    item_lines: int = 0

    def describe(self) -> str:
        where = f"sheet {self.sheet!r}" if self.sheet else f"{self.encoding} CSV"
        items = f", {self.item_lines} item lines" if self.item_lines else ""
        skipped = sum(1 for p in self.problems if p.skipped)
        return (
            f"{self.path.name} ({FORMAT_LABELS[self.format]}, {where}, headers on row {self.header_row}): "
            f"{len(self.invoices)} invoices{items}, {skipped} rows skipped, {len(self.problems)} problems"
        )


FORMAT_LABELS = {
    "full_list": "全量发票查询",
    "deduction": "数电 抵扣勾选",
    "deduction_legacy": "综合服务平台 勾选",
}

# Normalised header -> platform column. The ledger fields use the ledger reader; the rest are read here.
PLATFORM_HEADERS: dict[str, str] = {
    "发票代码": "invoice_code",
    "发票号码": "invoice_number",
    "数电发票号码": "digital_number",
    "数电票号码": "digital_number",
    "全电发票号码": "digital_number",
    "开票日期": "issue_date",
    "金额": "amount_excl_tax",
    "合计金额": "amount_excl_tax",
    "税额": "tax_amount",
    "票面税额": "tax_amount",
    "合计税额": "tax_amount",
    "价税合计": "total_amount",
    "销方名称": "seller_name",
    "销售方名称": "seller_name",
    "销售方纳税人名称": "seller_name",
    "销方识别号": "seller_tax_id",
    "销售方识别号": "seller_tax_id",
    "销售方纳税人识别号": "seller_tax_id",
    "销方纳税人识别号": "seller_tax_id",
    "购买方名称": "buyer_name",
    "购方名称": "buyer_name",
    "购方识别号": "buyer_tax_id",
    "购买方识别号": "buyer_tax_id",
    "购买方纳税人识别号": "buyer_tax_id",
    "发票状态": "status",
    "是否正数发票": "positive",
    "发票风险等级": "risk",
    "风险等级": "risk",
    "是否勾选": "deducted",
    "勾选状态": "deducted",
    "勾选时间": "deducted_on",
    "勾选日期": "deducted_on",
    "红字锁定标志": "red_locked",
    "有效抵扣税额": "effective_tax",
    "有效税额": "effective_tax",
    "发票票种": "kind",
    "票种": "kind",
    "发票类型": "kind",
    "备注": "remarks",
    "管理状态": "management",
    "发票来源": "origin",
    "开票人": "issuer",
    "序号": "serial",
}
# Item-line sheets: a goods column names them.
_ITEM_HEADERS = {
    "货物或应税劳务名称": "name",
    "货物或应税劳务服务名称": "name",
    "项目名称": "name",
    "商品名称": "name",
    "规格型号": "spec",
    "单位": "unit",
    "数量": "quantity",
    "单价": "unit_price",
    "金额": "amount",
    "税率": "tax_rate",
    "征收率": "tax_rate",
    "税额": "tax",
    "发票代码": "invoice_code",
    "发票号码": "invoice_number",
    "数电发票号码": "digital_number",
    "数电票号码": "digital_number",
}


PLATFORM_FIELDS = tuple(dict.fromkeys(PLATFORM_HEADERS.values()))


def platform_mapping(pairs: Iterable[str]) -> LedgerMapping:
    """``COLUMN=FIELD`` pairs (``--platform-map``) for an export whose headers are not recognised;
    the fields are ``PLATFORM_FIELDS`` (the ledger's, and status, risk, deducted, remarks ...)."""
    columns: dict[str, str] = {}
    for pair in pairs:
        column, sep, name = pair.rpartition("=")
        name = name.strip()
        if not sep or not column.strip() or name not in PLATFORM_FIELDS:
            raise PlatformError(
                f"--platform-map wants COLUMN=FIELD with FIELD one of {', '.join(PLATFORM_FIELDS)}, not {pair!r}"
            )
        columns[column.strip()] = name
    mapping = LedgerMapping()
    object.__setattr__(mapping, "columns", columns)  # the ledger's check would refuse platform fields
    return mapping


def _columns(headers: Sequence[str], table: dict[str, str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, header in enumerate(headers):
        name = table.get(_norm_header(header))
        if name and name not in found:
            found[name] = index
    return found


def _find_platform_header(
    rows: list[list[Any]], table: dict[str, str], mapping: LedgerMapping, need: set[str]
) -> tuple[int, list[str], dict[str, int]] | None:
    """The best header row in the first rows: the most platform headers, with a number column."""
    wanted = {_norm_header(column): target for column, target in mapping.columns.items()}
    best: tuple[int, int, list[str], dict[str, int]] | None = None
    candidates = [mapping.header_row - 1] if mapping.header_row else range(min(HEADER_SEARCH_ROWS, len(rows)))
    for index in candidates:
        if index >= len(rows):
            continue
        headers = [_cell_text(cell) for cell in rows[index]]
        columns = _columns(headers, table)
        for k, header in enumerate(headers):
            target = wanted.get(_norm_header(header))
            if target:
                columns = {name: col for name, col in columns.items() if col != k}
                columns[target] = k
        if not need & set(columns) or len(columns) < 3:
            continue
        if best is None or len(columns) > best[0]:
            best = (len(columns), index, headers, columns)
    return None if best is None else (best[1], best[2], best[3])


def _format_of(columns: dict[str, int], status_cells: Iterable[str]) -> str:
    if "deducted" not in columns and "deducted_on" not in columns:
        return "full_list"
    if "management" in columns or "digital_number" not in columns:
        return "deduction_legacy"
    if any(re.fullmatch(r"[0-4]", _norm_header(cell)) for cell in status_cells):
        return "deduction_legacy"
    return "deduction"


def _text(cells: Sequence[Any], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    if index is None or index >= len(cells):
        return ""
    return _cell_text(cells[index])


def _identifier(text: str) -> str | None:
    s = "".join(unicodedata.normalize("NFKC", text).split()).lstrip("'").upper()
    found = re.fullmatch(r'="(.*)"', s)
    return (found.group(1) if found else s) or None


class _PlatformRows:
    def __init__(
        self, path: Path, fmt: str, headers: list[str], columns: dict[str, int], problems: list[RowProblem]
    ) -> None:
        self.path, self.format, self.columns = path, fmt, columns
        ledger_columns = {name: columns[name] for name in FIELDS if name in columns}
        if "invoice_number" not in ledger_columns and "digital_number" in columns:
            ledger_columns["invoice_number"] = columns["digital_number"]
        # no headers: the reader then keeps no ``raw`` copy of each row (the record holds what matters)
        self.reader = _RowReader(ledger_columns, [], None, True, problems)
        self.problems = problems

    def read(self, row_number: int, cells: Sequence[Any]) -> PlatformInvoice | None:
        row = self.reader.read(row_number, cells)
        if row is None:
            return None
        text = lambda name: _text(cells, self.columns, name)  # noqa: E731
        digital = _identifier(text("digital_number"))
        digital_cell = (
            cells[self.columns["digital_number"]]
            if "digital_number" in self.columns and self.columns["digital_number"] < len(cells)
            else None
        )
        if digital and isinstance(digital_cell, float):
            self.problems.append(
                RowProblem(
                    row_number,
                    "invoice_number",
                    digital,
                    f"数电发票号码 {digital} was stored as a spreadsheet number and lost digits: format the column as text",
                    f"数电发票号码 {digital} 被存为数值，位数已丢失：请将该列设为文本格式",
                )
            )
            digital = None
        code, number = row.invoice_code, row.invoice_number
        if digital and (not number or number == digital or not code):
            number, digital_alt = digital, None
            code = code if code and len(digital) != 20 else None
        else:
            digital_alt = digital
        if not number:
            self.problems.append(
                RowProblem(
                    row_number,
                    "invoice_number",
                    " | ".join(t for t in (_cell_text(c) for c in cells) if t)[:120],
                    "no invoice number: skipped",
                    "没有发票号码：已跳过",
                    True,
                )
            )
            return None
        status_text = text("status")
        status = parse_status(status_text)
        if status is None:
            self.problems.append(
                RowProblem(
                    row_number,
                    "status",
                    status_text,
                    f"unknown invoice status {status_text!r}: read as unknown",
                    f"无法识别的发票状态 {status_text!r}：按未知处理",
                )
            )
            status = PlatformStatus.UNKNOWN
        deducted_text, deducted_on = text("deducted"), text("deducted_on")
        deducted = _yes_no(deducted_text) if deducted_text else None
        if deducted is None:
            deducted = bool(deducted_on) if "deducted" not in self.columns or not deducted_text else False
            if deducted_text:
                self.problems.append(
                    RowProblem(
                        row_number,
                        "deducted",
                        deducted_text,
                        f"cannot read 是否勾选 {deducted_text!r}: read from 勾选时间",
                        f"无法识别是否勾选 {deducted_text!r}：按勾选时间判断",
                    )
                )
                deducted = bool(deducted_on)
        effective_text = text("effective_tax")
        return PlatformInvoice(
            source=self.path.name,
            row_number=row_number,
            format=self.format,
            invoice_code=code,
            invoice_number=number,
            digital_number=digital_alt,
            issue_date=row.issue_date,
            amount_excl_tax=row.amount_excl_tax,
            tax_amount=row.tax_amount,
            total_amount=row.total_amount,
            seller_name=row.seller_name,
            seller_tax_id=row.seller_tax_id,
            buyer_name=row.buyer_name,
            buyer_tax_id=row.buyer_tax_id,
            status=status,
            status_text=status_text,
            positive=_yes_no(text("positive")) if text("positive") else None,
            kind=text("kind") or None,
            risk=text("risk") or None,
            deducted=bool(deducted),
            deducted_on=deducted_on or None,
            red_locked=bool(_yes_no(text("red_locked"))),
            effective_tax=_amount(effective_text, effective_text) if effective_text else None,
            remarks=text("remarks") or None,
            sources=(f"{self.path.name}:{row_number}",),
        )


def _read_items(rows: list[list[Any]]) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Item lines by invoice key (code, number) from an item sheet; {} if the sheet is not one."""
    found = _find_platform_header(rows, _ITEM_HEADERS, LedgerMapping(), {"name"})
    if found is None:
        return {}
    index, _headers, columns = found
    if "invoice_number" not in columns and "digital_number" not in columns:
        return {}
    out: dict[tuple[str, str], list[dict[str, str]]] = {}
    for cells in rows[index + 1 :]:
        text = partial(_text, cells, columns)
        digital = canonical_id(text("digital_number"))
        number = digital or canonical_id(text("invoice_number"))
        if not number or not text("name"):
            continue
        code = "" if digital and len(digital) == 20 else canonical_id(text("invoice_code"))
        item = {
            name: text(name)
            for name in ("name", "spec", "unit", "quantity", "unit_price", "amount", "tax_rate", "tax")
        }
        out.setdefault((code, number), []).append({k: v for k, v in item.items() if v})
    return out


def _table(
    path: Path,
    fmt_data: str,
    rows: list[list[Any]],
    mapping: LedgerMapping,
    sheet: str | None,
    encoding: str | None,
) -> PlatformImport:
    name = path.name
    if not any(any(_cell_text(cell) for cell in row) for row in rows):
        raise EmptyLedger(f"tax-platform export {name} is empty: no rows to read")
    found = _find_platform_header(rows, PLATFORM_HEADERS, mapping, {"invoice_number", "digital_number"})
    if found is None:
        first = next(([_cell_text(c) for c in row if _cell_text(c)] for row in rows if any(row)), [])
        raise NoLedgerColumns(
            f"tax-platform export {name} has no recognisable columns: found {', '.join(first[:15]) or '(no headers)'}; "
            "expected 发票代码, 发票号码 or 数电发票号码, 开票日期, 金额, 税额, 发票状态 … (or map them with --platform-map)"
        )
    header_index, headers, columns = found
    data = rows[header_index + 1 :]
    if not any(any(_cell_text(cell) for cell in row) for row in data):
        raise EmptyLedger(
            f"tax-platform export {name} has column headers but no invoice rows: export a period that has invoices"
        )
    status_cells = [
        _cell_text(r[columns["status"]])
        for r in data[:200]
        if "status" in columns and columns["status"] < len(r)
    ]
    fmt = _format_of(columns, status_cells)
    problems: list[RowProblem] = []
    reader = _PlatformRows(path, fmt, headers, columns, problems)
    invoices = []
    for offset, cells in enumerate(data):
        invoice = reader.read(header_index + 2 + offset, cells)
        if invoice is not None:
            invoices.append(invoice)
    return PlatformImport(path, fmt, sheet, encoding, header_index + 1, invoices, problems)


def read_platform(path: Path | str, mapping: LedgerMapping | None = None) -> PlatformImport:
    """Read one tax-platform export (CSV or XLSX); an XLSX's item-line sheet is attached."""
    path = Path(path)
    mapping = mapping or LedgerMapping()
    try:
        data = path.read_bytes()
    except IsADirectoryError as exc:
        raise PlatformError(f"tax-platform export {path} is a folder, not a file") from exc
    except OSError as exc:
        raise PlatformError(f"cannot read tax-platform export {path}: {exc.strerror}") from exc
    if not data.strip():
        raise PlatformError(f"tax-platform export {path.name} is empty (0 bytes of data)")
    try:
        kind = _sniff(data, path.name)
    except NotASpreadsheet as exc:
        raise PlatformError(
            str(exc).replace("ledger ", "tax-platform export ", 1).replace("the ledger", "it")
        ) from exc
    try:
        if kind == "xlsx":
            return _read_workbook(path, data, mapping)
        text, encoding = decode_text(data, path.name, mapping.encoding)
        if not text.strip():
            raise EmptyLedger(f"tax-platform export {path.name} is empty (only whitespace)")
        return _table(path, "csv", _csv_rows(text), mapping, None, encoding)
    except PlatformError:
        raise
    except LedgerError as exc:
        raise PlatformError(str(exc).replace("ledger ", "tax-platform export ", 1)) from exc


def _read_workbook(path: Path, data: bytes, mapping: LedgerMapping) -> PlatformImport:
    sheets = list(_xlsx_sheets(data, path.name, mapping.sheet))
    result: PlatformImport | None = None
    errors: list[LedgerError] = []
    items: dict[tuple[str, str], list[dict[str, str]]] = {}
    for title, rows in sheets:
        if result is None:
            try:
                result = _table(path, "xlsx", rows, mapping, title, None)
                continue
            except (EmptyLedger, NoLedgerColumns) as exc:
                errors.append(exc)
        found = _read_items(rows)
        for key, lines in found.items():
            items.setdefault(key, []).extend(lines)
    if result is None:
        if not errors:
            raise EmptyLedger(f"tax-platform export {path.name} has no sheets")
        raise max(errors, key=lambda exc: isinstance(exc, NoLedgerColumns))
    if items:
        attached = []
        for invoice in result.invoices:
            lines = items.get(invoice.key()) or items.get(("", canonical_id(invoice.digital_number)), [])
            attached.append(replace(invoice, items=tuple(lines)) if lines else invoice)
        result.invoices = attached
        result.item_lines = sum(len(lines) for lines in items.values())
    return result


_SEVERITY = {
    PlatformStatus.NORMAL: 0,
    PlatformStatus.UNKNOWN: 1,
    PlatformStatus.PARTLY_RED_REVERSED: 2,
    PlatformStatus.ABNORMAL: 3,
    PlatformStatus.OUT_OF_CONTROL: 4,
    PlatformStatus.RED_REVERSED: 5,
    PlatformStatus.VOIDED: 6,
}


def _merge_two(a: PlatformInvoice, b: PlatformInvoice) -> PlatformInvoice:
    """One invoice from two exports: the full list's values first, the worst status, any deduction."""
    first, second = (a, b) if a.format == "full_list" or b.format != "full_list" else (b, a)
    values = {
        name: getattr(first, name) if getattr(first, name) is not None else getattr(second, name)
        for name in (
            *FIELDS,
            "digital_number",
            "positive",
            "kind",
            "effective_tax",
            "remarks",
            "deducted_on",
        )
    }
    status = max((first.status, second.status), key=lambda s: _SEVERITY[s])
    risk = first.risk if is_high_risk(first.risk) or not second.risk else second.risk
    return replace(
        first,
        **values,
        status=status,
        status_text=first.status_text if status == first.status else second.status_text,
        risk=risk,
        deducted=first.deducted or second.deducted,
        red_locked=first.red_locked or second.red_locked,
        items=first.items or second.items,
        sources=first.sources + second.sources,
    )


def merge_platform(imports: Sequence[PlatformImport]) -> list[PlatformInvoice]:
    """Every export's invoices, the same invoice (by code + number, or 数电 number) once."""
    merged: dict[tuple[str, str], PlatformInvoice] = {}
    by_digital: dict[str, tuple[str, str]] = {}
    for imported in imports:
        for invoice in imported.invoices:
            key = invoice.key()
            if key not in merged and len(key[1]) == 20 and key[1] in by_digital:
                key = by_digital[key[1]]
            if key in merged:
                merged[key] = _merge_two(merged[key], invoice)
            else:
                merged[key] = invoice
            digital = canonical_id(invoice.digital_number)
            if digital:
                by_digital.setdefault(digital, key)
    return list(merged.values())


__all__ = [
    "FORMAT_LABELS",
    "PLATFORM_FIELDS",
    "STATUS_LABELS",
    "PlatformError",
    "PlatformImport",
    "PlatformInvoice",
    "PlatformStatus",
    "is_high_risk",
    "merge_platform",
    "parse_status",
    "platform_mapping",
    "read_platform",
]
