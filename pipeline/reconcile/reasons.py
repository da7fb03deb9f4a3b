"""Comparing a matched pair field by field, and the reasons (English and Chinese) a
reconciliation gives.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from pipeline.reconcile.keys import _total, canonical_id, normalize_name
from pipeline.reconcile.outcomes import (
    Difference,
    InvoiceRecord,
    ReconcileOptions,
)
from pipeline.reconcile.sources import AMOUNT_FIELDS, FIELD_LABELS, FIELDS, LedgerRow

log = logging.getLogger(__name__)


# ---- comparing a matched pair -------------------------------------------------------------------------


def _show(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def compared_fields(ledger: Sequence[LedgerRow]) -> tuple[str, ...]:
    """The fields the ledger has at all (a column with at least one value)."""
    return tuple(name for name in FIELDS if any(getattr(row, name) is not None for row in ledger))


def _compare(
    invoice: InvoiceRecord, row: LedgerRow, fields: Sequence[str], options: ReconcileOptions
) -> tuple[list[Difference], list[tuple[str, str]]]:
    """Differences, and notes (en, zh) on values that agree only within a tolerance or normalisation.

    A value missing from the invoice (not printed, not read) is no difference; a value the ledger
    has a column for but left empty is.
    """
    differences: list[Difference] = []
    notes: list[tuple[str, str]] = []
    for name in fields:
        inv_value, led_value = invoice.value(name), row.value(name)
        if inv_value is None:
            continue
        en, zh = FIELD_LABELS[name]
        same = False
        if led_value is None:
            same = False
        elif name in AMOUNT_FIELDS:
            gap = abs(inv_value - led_value)
            same = gap <= options.amount_tolerance
            if same and gap:
                notes.append(
                    (
                        f"{en} differs by {gap:.2f}, within the {options.amount_tolerance} tolerance",
                        f"{zh}相差 {gap:.2f}，在容差 {options.amount_tolerance} 以内",
                    )
                )
        elif name == "issue_date":
            gap_days = abs((inv_value - led_value).days)
            same = gap_days <= options.date_window_days
            if same and gap_days:
                notes.append(
                    (
                        f"dates are {gap_days} days apart (window {options.date_window_days})",
                        f"日期相差 {gap_days} 天（窗口内）",
                    )
                )
        elif name in ("seller_name", "buyer_name"):
            same = normalize_name(inv_value) == normalize_name(led_value)
        else:
            same = canonical_id(inv_value) == canonical_id(led_value)
            if same and _plain(inv_value) != _plain(led_value):
                notes.append(
                    (
                        f"{en} is {led_value} in the ledger and {inv_value} on the invoice: the same up to "
                        "look-alike characters (0/O, 1/I, 8/B)",
                        f"{zh}台账为 {led_value}，发票为 {inv_value}：仅易混字符不同（0/O、1/I、8/B）",
                    )
                )
        if not same:
            differences.append(Difference(name, _show(name, inv_value), _show(name, led_value)))
    return differences, notes


def _plain(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


# ---- reasons ---------------------------------------------------------------------------------------


def _row_summary(row: LedgerRow, zh: bool) -> str:
    return _row_summaries(row)[1 if zh else 0]


def _money(value: Decimal) -> str:
    text = str(value)  # ledger amounts are already quantized to the fen: str() is the fast way
    dot = text.find(".")
    return text if dot >= 0 and len(text) - dot == 3 and "E" not in text else f"{value:.2f}"


def _row_summaries(row: LedgerRow) -> tuple[str, str]:
    """A short description of a ledger row, in English and in Chinese."""
    en: list[str] = []
    zh: list[str] = []
    if row.invoice_number:
        en.append("invoice " + row.invoice_number)
        zh.append("发票 " + row.invoice_number)
    if row.issue_date:
        day = row.issue_date.isoformat()
        en.append(day)
        zh.append(day)
    total = _total(row.amount_excl_tax, row.tax_amount, row.total_amount)
    if total is not None:
        en.append("total " + _money(total))
        zh.append("价税合计 " + _money(total))
    elif row.amount_excl_tax is not None:
        en.append("amount " + _money(row.amount_excl_tax))
        zh.append("金额 " + _money(row.amount_excl_tax))
    if row.seller_name:
        en.append(row.seller_name)
        zh.append(row.seller_name)
    return ", ".join(en), "，".join(zh)


def _invoice_label(invoice: InvoiceRecord) -> str:
    return f"{invoice.source_name} ({invoice.document_id[:12]})"


# A scanned-twice reason names the scan reconciled instead; ``rematch_document`` reads it back.
SCANNED_TWICE_EN = "Scanned twice: the same invoice as "
SCANNED_TWICE_TAIL_EN = ", which is the scan reconciled"


def _with_notes(text: tuple[str, str], notes: list[tuple[str, str]]) -> tuple[str, str]:
    if not notes:
        return text
    return (
        text[0] + " Note: " + "; ".join(n[0] for n in notes) + ".",
        text[1] + "注：" + "；".join(n[1] for n in notes) + "。",
    )


def _matched_reason(row: LedgerRow, differences: list[Difference], by_number: bool) -> tuple[str, str]:
    n = row.row_number
    how_en = "" if by_number else " by amount, date and seller (the invoice number could not be compared)"
    how_zh = "" if by_number else "（按金额、日期和销售方找到，发票号码无法比对）"
    if not differences:
        return (
            f"In the ledger at row {n}{how_en}; every compared field agrees.",
            f"已在台账第{n}行找到{how_zh}，各项一致。",
        )
    return (
        f"In the ledger at row {n}{how_en}, but {len(differences)} field(s) differ: "
        + "; ".join(d.describe() for d in differences)
        + ".",
        f"已在台账第{n}行找到{how_zh}，但有{len(differences)}项不一致："
        + "；".join(d.describe(zh=True) for d in differences)
        + "。",
    )


def _hint(
    row: LedgerRow | None, invoice: InvoiceRecord | None, differences: list[Difference]
) -> tuple[str, str]:
    """Name the closest counterpart when it is close enough to help: the same number, or a different
    number with the same amount and at most one other difference (the three amounts count as one)."""
    kinds = {"amount" if d.field in AMOUNT_FIELDS else d.field for d in differences}
    if not differences or ("invoice_number" in kinds and ("amount" in kinds or len(kinds) > 2)):
        return "", ""
    en = ", ".join(FIELD_LABELS[d.field][0] for d in differences)
    zh = "、".join(FIELD_LABELS[d.field][1] for d in differences)
    if row is not None:
        return (
            f" The closest ledger row is {row.row_number} ({_row_summary(row, False)}), which differs in: {en}.",
            f"最接近的是台账第{row.row_number}行（{_row_summary(row, True)}），不一致项：{zh}。",
        )
    assert invoice is not None
    return (
        f" The closest scanned invoice is {_invoice_label(invoice)}, which differs in: {en}.",
        f"最接近的已扫描发票是 {_invoice_label(invoice)}，不一致项：{zh}。",
    )
