"""Cell values: text, amounts, dates and identifiers read from one ledger row's cells, with a
row problem for each cell that cannot be read.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pipeline.fapiao import CENT, parse_amount
from pipeline.reconcile.headers import _CJK, _norm_header
from pipeline.reconcile.records import AMOUNT_FIELDS, FIELD_LABELS, LedgerRow, RowProblem
from pipeline.reconcile.spreadsheets import _CONTROL

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
