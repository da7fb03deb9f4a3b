"""What the two reconciliation reports write alike (``report``: the invoices against the ledger;
``threeway_report``: against the tax platform too): the report folder and its file names, CSV files
Excel opens right, a value's text in a cell, and the table of the rows an import could not use.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import StorageError
from pipeline.reconcile.records import RowProblem

CSV_NAME = "reconciliation.csv"
XLSX_NAME = "reconciliation.xlsx"
HTML_NAME = "reconciliation.html"

PROBLEM_CSV_HEADER = ("row", "field", "value", "skipped", "problem", "问题")
PROBLEM_SHEET_HEADER = ("row 行", "field 字段", "value 值", "skipped 跳过", "problem", "问题")


@contextmanager
def report_folder(out_dir: Path) -> Iterator[Path]:
    """``out_dir``, created; a report that cannot be written there raises ``StorageError``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        yield out_dir
    except OSError as exc:
        raise StorageError(f"cannot write the reports to {out_dir}: {exc.strerror or exc}") from exc


def cell_text(value: Any) -> str:
    """A value as a report shows it: amounts with two decimals, nothing for None."""
    if value is None:
        return ""
    return f"{value:.2f}" if hasattr(value, "quantize") else str(value)


def yes_text(flag: bool) -> str:
    return "yes 是" if flag else ""


_FORMULA_START = ("=", "+", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell Excel would run as a formula (=HYPERLINK(...) in a scanned name) is quoted with '."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv_table(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """UTF-8 with a BOM, so Excel shows the Chinese text right when the file is double-clicked."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def problem_cells(problem: RowProblem, *, for_csv: bool = False) -> list[Any]:
    """A row problem's cells, in the order of ``PROBLEM_CSV_HEADER``.

    ``for_csv``: the value (the import's own cell text) is kept from running as a formula; an XLSX
    cell holds it as text anyway."""
    return [
        problem.row_number,
        problem.field or "",
        csv_safe(problem.value) if for_csv else problem.value,
        "yes" if problem.skipped else "",
        problem.message,
        problem.message_zh,
    ]
