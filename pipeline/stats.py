"""Statistics of a selection of invoices, and tables out to CSV/XLSX.

The numbers come from the index (``Index.statistics``): counts and amounts per month of issue, per
seller, per tax rate and per kind, and per month of ingestion the share of documents that needed
review, that failed and that the ledger does not have. ``table_bytes`` writes any of those tables
(or the search results) as CSV (UTF-8 with BOM, so Excel reads Chinese) or XLSX.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import InputError
from pipeline.store.export import INDEX_COLUMNS, write_export
from pipeline.store.index import Search

if TYPE_CHECKING:
    from pipeline.store import Store

AMOUNT_COLUMNS = ("count", "amount", "tax", "total")

# Each table: its key column, then the columns every table has.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "months": ("month", *AMOUNT_COLUMNS),
    "sellers": ("seller", *AMOUNT_COLUMNS),
    "rates": ("rate", *AMOUNT_COLUMNS),
    "kinds": ("kind", *AMOUNT_COLUMNS),
    "quality": (
        "month",
        "documents",
        "reviewed",
        "review_rate",
        "failed",
        "failure_rate",
        "not_in_ledger",
        "not_in_ledger_rate",
    ),
}
EXPORT_FORMATS = ("csv", "xlsx")


@dataclass(frozen=True)
class Totals:
    count: int
    amount: float
    tax: float
    total: float


def statistics(store: Store, search: Search, top_sellers: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Every table of the statistics view for the documents ``search`` selects."""
    return store.index.statistics(search, top_sellers=top_sellers)


def totals(tables: dict[str, list[dict[str, Any]]]) -> Totals:
    """The whole selection (the sum over the months table, which holds every document)."""
    months = tables.get("months", [])
    return Totals(
        count=sum(int(row["count"]) for row in months),
        amount=round(sum(float(row["amount"]) for row in months), 2),
        tax=round(sum(float(row["tax"]) for row in months), 2),
        total=round(sum(float(row["total"]) for row in months), 2),
    )


def table_bytes(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, sheet: str) -> bytes:
    """One table as CSV or XLSX bytes."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        return buffer.getvalue().encode("utf-8-sig")
    if fmt == "xlsx":
        from openpyxl import Workbook
        from openpyxl.styles import Font

        book = Workbook()
        table = book.active
        table.title = sheet[:31]
        table.append(list(columns))
        for cell in table[1]:
            cell.font = Font(bold=True)
        for row in rows:
            table.append([row.get(c) for c in columns])
        table.freeze_panes = "A2"
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
    raise InputError(f"unknown export format {fmt!r}: csv or xlsx")


def search_export(store: Store, search: Search, fmt: str, limit: int = 1_000_000) -> bytes:
    """Every invoice the search selects, in the columns of ``invoices export``."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}: csv or xlsx")
    rows, _ = store.index.search(search, INDEX_COLUMNS, sort="date", descending=False, limit=limit)
    with tempfile.TemporaryDirectory(prefix="invoices-export-") as folder:
        path = Path(folder) / f"invoices.{fmt}"
        write_export(rows, path, fmt)
        return path.read_bytes()
