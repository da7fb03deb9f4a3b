"""The ledger's records: its fields, rows, row problems, column mapping and import summary, and
the errors a ledger file raises.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.errors import ExitCode, InputError

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
