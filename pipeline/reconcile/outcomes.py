"""What a reconciliation says: outcomes, options, the invoice and entry records."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipeline.errors import ExitCode, InputError
from pipeline.fapiao import as_date, parse_amount
from pipeline.reconcile.sources import FIELD_LABELS, LedgerRow

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class ReconcileError(InputError):
    """Options that make no sense (a negative tolerance, a period that ends before it starts)."""

    exit_code = ExitCode.BAD_ARGS


class Outcome(StrEnum):
    MATCHED = "matched"
    MATCHED_WITH_DIFFERENCES = "matched_with_differences"
    NOT_IN_LEDGER = "not_in_ledger"
    DUPLICATE = "duplicate"
    NO_INVOICE_SCANNED = "no_invoice_scanned"


OUTCOME_LABELS: dict[Outcome, tuple[str, str]] = {
    Outcome.MATCHED: ("matched", "已匹配"),
    Outcome.MATCHED_WITH_DIFFERENCES: ("matched with differences", "匹配但有差异"),
    Outcome.NOT_IN_LEDGER: ("not in the ledger", "台账中没有"),
    Outcome.DUPLICATE: ("duplicate", "重复"),
    Outcome.NO_INVOICE_SCANNED: ("no invoice scanned", "无对应扫描发票"),
}


@dataclass(frozen=True)
class ReconcileOptions:
    """``amount_tolerance``: amounts this close (in yuan) agree. ``date_window_days``: dates this many
    days apart agree (for ledgers that record a booking date). ``date_from``/``date_to``: the period
    (inclusive) of invoices and ledger rows to reconcile; undated ones are always included."""

    amount_tolerance: Decimal = Decimal("0.01")
    date_window_days: int = 0
    date_from: date | None = None
    date_to: date | None = None
    name_threshold: float = 85.0  # rapidfuzz ratio (0-100) of normalised names that counts as the same seller
    workers: int = 2

    def __post_init__(self) -> None:
        if self.amount_tolerance < 0:
            raise ReconcileError(f"the amount tolerance cannot be negative ({self.amount_tolerance})")
        if self.date_window_days < 0:
            raise ReconcileError(f"the date window cannot be negative ({self.date_window_days} days)")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ReconcileError(f"--from {self.date_from} is after --to {self.date_to}")
        if not 0 <= self.name_threshold <= 100:
            raise ReconcileError("name_threshold is a rapidfuzz ratio between 0 and 100")
        if self.workers == 0:
            raise ReconcileError("workers must be at least 1 (or -1 for every core)")


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    """A stored invoice as the index holds it (``Index.documents()`` rows), with typed values."""

    document_id: str
    source_name: str = ""
    doc_type: str = "vat_general_paper"
    status: str = "ok"
    invoice_code: str | None = None
    invoice_number: str | None = None
    issue_date: date | None = None
    buyer_name: str | None = None
    buyer_tax_id: str | None = None
    seller_name: str | None = None
    seller_tax_id: str | None = None
    amount_excl_tax: Decimal | None = None
    tax_amount: Decimal | None = None
    total_amount: Decimal | None = None
    result_key: str = ""
    ingested_at: float = 0.0
    review_fields: tuple[str, ...] = ()
    # for red-letter invoices: the 备注 read off the page, and an e-invoice's OriginalInvoiceCode/No
    remarks: str | None = None
    original_invoice_code: str | None = None
    original_invoice_number: str | None = None

    @classmethod
    def from_index_row(cls, row: Mapping[str, Any]) -> InvoiceRecord:
        def text(name: str) -> str | None:
            value = row.get(name)
            return str(value).strip() or None if value is not None else None

        def amount(name: str) -> Decimal | None:
            value = text(name)
            return parse_amount(value) if value else None

        return cls(
            document_id=str(row["document_id"]),
            source_name=text("source_name") or "",
            doc_type=text("doc_type") or "",
            status=text("status") or "",
            invoice_code=text("invoice_code"),
            invoice_number=text("invoice_number"),
            issue_date=as_date(text("issue_date")),
            buyer_name=text("buyer_name"),
            buyer_tax_id=text("buyer_tax_id"),
            seller_name=text("seller_name") or text("vendor_name"),
            seller_tax_id=text("seller_tax_id"),
            amount_excl_tax=amount("amount_excl_tax"),
            tax_amount=amount("tax_amount"),
            total_amount=amount("total_amount"),
            result_key=text("result_key") or "",
            ingested_at=float(row.get("ingested_at") or 0.0),
            review_fields=tuple(f for f in (text("review_fields") or "").split(",") if f),
            **_red_letter_fields(row.get("fields_json")),
        )

    def value(self, name: str) -> Any:
        return getattr(self, name)


_RED_LETTER_FIELDS = ("remarks", "original_invoice_code", "original_invoice_number")


def _red_letter_fields(fields_json: Any) -> dict[str, str]:
    """The red-letter fields from an index row's ``fields_json``, when extraction found them."""
    if not fields_json or ("remarks" not in fields_json and "original_invoice" not in fields_json):
        return {}
    try:
        fields = json.loads(fields_json)
    except (TypeError, ValueError):
        return {}
    return {name: str(fields[name]).strip() for name in _RED_LETTER_FIELDS if fields.get(name)}


def invoices_from_index(rows: Iterable[Mapping[str, Any]]) -> list[InvoiceRecord]:
    """The invoices to reconcile from ``Index.documents()``: everything but ``not_an_invoice``."""
    return [
        InvoiceRecord.from_index_row(row)
        for row in rows
        if row.get("status") != "not_an_invoice" and row.get("doc_type") != "other"
    ]


@dataclass(frozen=True, slots=True)
class Difference:
    field: str
    invoice_value: str | None
    ledger_value: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "invoice": self.invoice_value, "ledger": self.ledger_value}

    def describe(self, zh: bool = False) -> str:
        label = FIELD_LABELS[self.field][1 if zh else 0]
        empty = "（空）" if zh else "(empty)"
        inv = self.invoice_value if self.invoice_value is not None else empty
        led = self.ledger_value if self.ledger_value is not None else empty
        return f"{label}（发票 {inv}，台账 {led}）" if zh else f"{label} (invoice {inv}, ledger {led})"


@dataclass(slots=True)
class Entry:
    """One line of the reconciliation: an invoice (with its ledger row, if any) or a lone ledger row."""

    outcome: Outcome
    invoice: InvoiceRecord | None
    ledger_row: LedgerRow | None
    score: float
    differences: list[Difference]
    reason_en: str
    reason_zh: str
    related_document: str | None = None  # duplicate: the scan that is reconciled instead
    related_rows: tuple[int, ...] = ()  # duplicate: the other ledger rows booking the same invoice
    # Same invoice, several files (its OFD, PDF, XML, a scan): every file's name, the one reconciled
    # first; ``arrived_separately`` when they came in more than one delivery (double reimbursement).
    documents: tuple[str, ...] = ()
    arrived_separately: bool = False

    @property
    def is_copy(self) -> bool:
        """Another file of an invoice reconciled through its first file: not counted again."""
        return self.invoice is not None and self.related_document is not None


@dataclass
class Reconciliation:
    entries: list[Entry]
    options: ReconcileOptions
    invoices_considered: int
    ledger_rows_considered: int
    seconds: float = 0.0

    @property
    def lines(self) -> list[Entry]:
        """One entry per invoice: the other files of an invoice are listed in its ``documents``."""
        return [entry for entry in self.entries if not entry.is_copy]

    def counts(self) -> dict[str, int]:
        """Outcomes per invoice (an invoice held in several files counts once)."""
        counts = dict.fromkeys((str(o) for o in Outcome), 0)
        for entry in self.lines:
            counts[str(entry.outcome)] += 1
        return counts

    @property
    def arrived_separately(self) -> list[Entry]:
        return [entry for entry in self.lines if entry.arrived_separately]

    def of(self, outcome: Outcome | str) -> list[Entry]:
        """The invoices with this outcome (an invoice's other files are in its ``documents``)."""
        return [entry for entry in self.lines if entry.outcome == outcome]

    @property
    def all_matched(self) -> bool:
        return all(entry.outcome == Outcome.MATCHED and not entry.arrived_separately for entry in self.lines)
