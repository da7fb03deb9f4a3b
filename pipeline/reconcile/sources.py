"""Ledger import: the company's invoice ledger (台账, an ERP or tax-platform export) as typed rows.

``read_ledger(path)`` reads CSV (UTF-8, UTF-8 with BOM, UTF-16, GBK/GB18030, detected) or XLSX,
finds the header row and maps its columns to ledger fields by the usual Chinese and English
headers (or by an explicit ``LedgerMapping``), and returns every usable row as a ``LedgerRow``.
A cell that cannot be read is reported as a ``RowProblem`` with its row number; it never stops
the import. Row numbers are the ones a spreadsheet shows (the header row included, 1-based).

A file that is empty, has no recognisable columns or is not a spreadsheet raises one
``LedgerError`` subclass whose message names the problem.

The parts, a module each: ``records`` (rows, problems, mapping, errors), ``spreadsheets`` (CSV in
which encoding, XLSX), ``headers`` (column mapping), ``cells`` (values of a row). Everything is
importable from here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.reconcile.cells import (
    _amount,
    _cell_text,
    _day_first,
    _RowReader,
    parse_ledger_date,
    repair_mojibake,
)
from pipeline.reconcile.headers import _expected_headers, _norm_header, _usable, detect_columns
from pipeline.reconcile.records import (
    AMOUNT_FIELDS,
    FIELD_LABELS,
    FIELDS,
    EmptyLedger,
    LedgerError,
    LedgerImport,
    LedgerMapping,
    LedgerRow,
    NoLedgerColumns,
    NotASpreadsheet,
    RowProblem,
)
from pipeline.reconcile.spreadsheets import _csv_rows, _sniff, _xlsx_sheets, decode_text

log = logging.getLogger(__name__)


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


__all__ = [
    "AMOUNT_FIELDS",
    "FIELDS",
    "FIELD_LABELS",
    "HEADER_SEARCH_ROWS",
    "EmptyLedger",
    "LedgerError",
    "LedgerImport",
    "LedgerMapping",
    "LedgerRow",
    "NoLedgerColumns",
    "NotASpreadsheet",
    "RowProblem",
    "_RowReader",
    "_amount",
    "_cell_text",
    "_csv_rows",
    "_norm_header",
    "_sniff",
    "_xlsx_sheets",
    "decode_text",
    "detect_columns",
    "parse_ledger_date",
    "read_ledger",
    "repair_mojibake",
]
