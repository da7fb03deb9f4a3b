"""Index rows out to accounting: CSV (UTF-8 with BOM, so Excel reads Chinese) and XLSX.

In the XLSX, amounts are numbers and the issue date a date, while codes, numbers and taxpayer
IDs stay text (leading zeros and 18-character IDs survive).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.errors import StorageError
from pipeline.fapiao import as_date, parse_amount

EXPORT_COLUMNS = (
    "document_id",
    "source_name",
    "doc_type",
    "status",
    "invoice_code",
    "invoice_number",
    "issue_date",
    "seller_name",
    "seller_tax_id",
    "buyer_name",
    "buyer_tax_id",
    "amount_excl_tax",
    "tax_amount",
    "total_amount",
    "currency",
    "tax_rates",
    "confidence",
    "review_state",
    "review_fields",
    "original_key",
)

AMOUNT_COLUMNS = frozenset({"amount_excl_tax", "tax_amount", "total_amount"})
# What an export reads from the index (tax_rates comes from fields_json).
INDEX_COLUMNS = (*(column for column in EXPORT_COLUMNS if column != "tax_rates"), "fields_json")


def export_record(row: dict[str, Any]) -> dict[str, Any]:
    """One index row as the flat record both formats write."""
    fields = json.loads(row.get("fields_json") or "{}")
    rates = fields.get("tax_rates")
    record = {column: row.get(column) for column in EXPORT_COLUMNS}
    record["tax_rates"] = ",".join(str(rate) for rate in rates) if isinstance(rates, list) else rates
    return record


def write_csv(rows: Iterable[dict[str, Any]], path: Path) -> int:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(export_record(row))
        count += 1
    _write_atomic(path, buffer.getvalue().encode("utf-8-sig"))
    return count


def write_xlsx(rows: Iterable[dict[str, Any]], path: Path, sheet: str = "invoices") -> int:
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    table = book.active
    table.title = sheet
    table.append(list(EXPORT_COLUMNS))
    for cell in table[1]:
        cell.font = Font(bold=True)
    table.freeze_panes = "A2"
    widths = [len(column) for column in EXPORT_COLUMNS]
    count = 0
    for row in rows:
        record = export_record(row)
        values = [_xlsx_value(column, record[column]) for column in EXPORT_COLUMNS]
        table.append(values)
        for n, (column, value) in enumerate(zip(EXPORT_COLUMNS, values, strict=True)):
            cell = table.cell(row=table.max_row, column=n + 1)
            if column in AMOUNT_COLUMNS and isinstance(value, float):
                cell.number_format = "#,##0.00"
            elif isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(value, str):
                cell.number_format = "@"  # text: Excel must not turn IDs into numbers
            widths[n] = max(widths[n], min(60, _display_width(value)))
        count += 1
    for n, width in enumerate(widths):
        table.column_dimensions[get_column_letter(n + 1)].width = width + 2
    table.auto_filter.ref = table.dimensions
    buffer = io.BytesIO()
    book.save(buffer)
    _write_atomic(path, buffer.getvalue())
    return count


def write_export(rows: Sequence[dict[str, Any]], path: Path, kind: str | None = None) -> int:
    """Write ``rows`` to ``path`` as ``kind`` (csv or xlsx; default: from the file suffix)."""
    kind = (kind or path.suffix.lstrip(".")).lower()
    if kind == "csv":
        return write_csv(rows, path)
    if kind == "xlsx":
        return write_xlsx(rows, path)
    raise StorageError(f"cannot tell the export format of {path}: name it .csv or .xlsx, or give --format")


def _xlsx_value(column: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    if column in AMOUNT_COLUMNS:
        try:
            amount = parse_amount(str(value))
        except (ValueError, ArithmeticError):
            amount = None
        return float(amount) if amount is not None else str(value)
    if column == "issue_date":
        return as_date(str(value)) or str(value)
    if column == "confidence":
        return float(value)
    return str(value)


def _display_width(value: Any) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target then rename: a reader never opens half a spreadsheet."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as temp:
                temp.write(data)
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}") from exc
