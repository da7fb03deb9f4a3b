"""Review as a library: the queue of fields a clerk should look at, and their corrections.

A correction (or an acceptance: the value is right as read) is checked against its field's format first;
bad input raises ``ReviewInputError`` and nothing is stored. Otherwise it is written as an audit record
(create-only) under ``documents/<id[:2]>/<id>/reviews/<UTC time>-<field>.json``; the result JSON is
rebuilt from every record of the invoice (so concurrent review sessions lose nothing), the rules are re-run
on the whole result, and the index row is updated; then the ledger match is re-run where
``pipeline.reconcile`` offers ``rematch_document(store, document_id)``.
"""

from __future__ import annotations

import getpass
import importlib
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pipeline.errors import InputError, PipelineError, StorageError
from pipeline.fapiao import (
    FIRST_VAT_INVOICE,
    FULLY_DIGITAL_DOC_TYPES,
    OLD_TAX_RATES,
    TAX_RATES,
    check_check_code,
    check_tax_id,
    normalize_tax_rate,
    parse_amount,
    parse_amount_words,
    parse_qr_payload,
)
from pipeline.model import (
    VAT_DOC_TYPES,
    Box,
    DocType,
    Field,
    FieldSource,
    FieldStatus,
    InvoiceResult,
)
from pipeline.store.objects import review_key
from pipeline.validate import QR_FIELDS, china_today, validate_invoice

if TYPE_CHECKING:
    from pipeline.store import Store

log = logging.getLogger(__name__)

DEFAULT_REVIEW_BELOW = 0.90  # the pipeline's default (Settings.review_below)

ACCEPT = "accept"
CORRECT = "correct"

FIELD_LABELS: dict[str, str] = {
    "title": "Title (发票名称)",
    "invoice_code": "Invoice code (发票代码)",
    "invoice_number": "Invoice number (发票号码)",
    "issue_date": "Issue date (开票日期)",
    "check_code": "Check code (校验码)",
    "machine_no": "Machine number (机器编号)",
    "buyer_name": "Buyer (购买方名称)",
    "buyer_tax_id": "Buyer tax ID (购买方纳税人识别号)",
    "seller_name": "Seller (销售方名称)",
    "seller_tax_id": "Seller tax ID (销售方纳税人识别号)",
    "amount_excl_tax": "Amount excl. tax (金额)",
    "tax_amount": "Tax (税额)",
    "total_amount": "Total (价税合计)",
    "total_amount_words": "Total in words (大写)",
    "tax_rates": "Tax rates (税率)",
    "vendor_name": "Vendor",
    "vendor_tax_id": "Vendor tax ID",
    "currency": "Currency",
}

# What a field holds decides how a typed value is checked.
AMOUNT, DATE, DIGITS, TAX_ID, RATES, WORDS, CURRENCY, TEXT = (
    "amount",
    "date",
    "digits",
    "tax_id",
    "rates",
    "words",
    "currency",
    "text",
)
_KINDS: dict[str, str] = {
    "amount_excl_tax": AMOUNT,
    "tax_amount": AMOUNT,
    "total_amount": AMOUNT,
    "issue_date": DATE,
    "invoice_code": DIGITS,
    "invoice_number": DIGITS,
    "check_code": DIGITS,
    "machine_no": DIGITS,
    "buyer_tax_id": TAX_ID,
    "seller_tax_id": TAX_ID,
    "tax_rates": RATES,
    "tax_rate": RATES,
    "total_amount_words": WORDS,
    "currency": CURRENCY,
}
HINTS: dict[str, str] = {
    AMOUNT: "a number, e.g. 1234.50",
    DATE: "YYYY-MM-DD",
    DIGITS: "digits",
    TAX_ID: "18-character credit code (or an old 15/17/20-character ID)",
    RATES: "rates separated by commas, e.g. 13%, 6%",
    WORDS: "as printed, e.g. 陆佰元零贰角",
    CURRENCY: "ISO code, e.g. CNY",
    TEXT: "as printed",
}

_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_COMPACT_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_RATE_SPLIT = re.compile(r"[,，、;；/\s]+")
_MAX_TEXT = 200


class ReviewInputError(InputError):
    """A typed value that is not valid for its field: refused with a message, nothing stored."""


# --------------------------------------------------------------------------------------------------
# The queue
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueEntry:
    """One invoice with fields to review, as the index lists it."""

    document_id: str
    source_name: str
    doc_type: str
    fields: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "document_id": self.document_id,
            "source_name": self.source_name,
            "doc_type": self.doc_type,
            "fields": list(self.fields),
        }


def review_queue(store: Store) -> list[QueueEntry]:
    """Every stored invoice whose index row lists fields to review, in the index's order."""
    entries = []
    for row in store.index.documents():
        names = tuple(name for name in (row.get("review_fields") or "").split(",") if name)
        if names:
            entries.append(QueueEntry(row["document_id"], row["source_name"], row["doc_type"], names))
    return entries


@dataclass(frozen=True)
class FieldReview:
    """Everything the clerk sees for one field."""

    name: str
    label: str
    kind: str
    hint: str
    value: str  # as shown and edited; "" when missing
    status: str
    source: str
    confidence: float
    reasons: tuple[str, ...]
    box: Box | None
    qr_value: str | None
    ledger_value: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "hint": self.hint,
            "value": self.value,
            "status": self.status,
            "source": self.source,
            "confidence": round(self.confidence, 4),
            "reasons": list(self.reasons),
            "box": self.box.to_dict() if self.box else None,
            "qr_value": self.qr_value,
            "ledger_value": self.ledger_value,
        }


def needs_review(found: Field) -> bool:
    """The index's definition: flagged, or missing with a reason."""
    return found.status == FieldStatus.NEEDS_REVIEW or (
        found.status == FieldStatus.MISSING and bool(found.reasons)
    )


def field_label(name: str, doc_type: DocType | None = None) -> str:
    """The field's name for people; the Chinese printed label only on Chinese invoices."""
    label = FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()
    return label if doc_type is None or doc_type in VAT_DOC_TYPES else label.split(" (")[0]


def field_kind(result: InvoiceResult, name: str) -> str:
    kind = _KINDS.get(name, TEXT)
    if result.doc_type not in VAT_DOC_TYPES and kind in (DIGITS, TAX_ID):
        return TEXT  # other invoices number their documents as they like
    return kind


def display_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def qr_values(result: InvoiceResult) -> dict[str, str]:
    """The values the invoice's QR code states, by field name (empty without a readable payload)."""
    payload = parse_qr_payload(result.qr_payload) if result.qr_payload else None
    if payload is None:
        return {}
    values = {name: getattr(payload, name) for name in QR_FIELDS}
    return {name: value for name, value in values.items() if value is not None}


def _reconcile() -> ModuleType | None:
    """``pipeline.reconcile`` if it exists (the ledger feature is optional to this module)."""
    try:
        return importlib.import_module("pipeline.reconcile")
    except ModuleNotFoundError as exc:
        if exc.name != "pipeline.reconcile":
            raise
        return None


def ledger_values(store: Store, document_id: str) -> dict[str, str]:
    """The matched ledger entry's values by field name, where ``pipeline.reconcile`` can say."""
    module = _reconcile()
    lookup = getattr(module, "ledger_values", None) if module else None
    if lookup is None:
        return {}
    try:
        values = lookup(store, document_id) or {}
    except PipelineError as exc:  # e.g. a PostgreSQL index: the ledger tables are SQLite-only for now
        log.debug("no ledger values for %s: %s", document_id[:12], exc)
        return {}
    return {str(name): display_value(value) for name, value in dict(values).items()}


def fields_to_review(result: InvoiceResult, ledger: dict[str, str] | None = None) -> list[FieldReview]:
    """The fields of one result that need review, in the result's field order."""
    qr = qr_values(result)
    ledger = ledger or {}
    out = []
    for name, found in result.fields.items():
        if not needs_review(found):
            continue
        kind = field_kind(result, name)
        out.append(
            FieldReview(
                name=name,
                label=field_label(name, result.doc_type),
                kind=kind,
                hint=HINTS[kind],
                value=display_value(found.value),
                status=str(found.status),
                source=str(found.source),
                confidence=found.confidence,
                reasons=tuple(found.reasons),
                box=found.box,
                qr_value=qr.get(name),
                ledger_value=ledger.get(name),
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# Checking a typed value
# --------------------------------------------------------------------------------------------------


def _squash(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def normalize_value(result: InvoiceResult, name: str, text: str, today: date | None = None) -> Any:
    """The stored form of a typed value for this field; ``ReviewInputError`` says why it is refused."""
    raw = (text or "").strip()
    label = field_label(name, result.doc_type)
    if not raw:
        raise ReviewInputError(f"{label}: type a value, or accept the field as it is")
    kind = field_kind(result, name)
    if kind == AMOUNT:
        squashed = _squash(raw)
        if name == "tax_amount" and set(squashed) <= {"*"}:
            return "0.00"  # tax printed *** on exempt invoices
        amount = parse_amount(raw)
        if amount is None:
            raise ReviewInputError(f"{label}: {raw!r} is not an amount; type a number such as 1234.50")
        return f"{amount:.2f}"
    if kind == DATE:
        return _normalize_date(result, label, raw, today or china_today())
    if kind == DIGITS:
        return _normalize_digits(result, name, label, raw)
    if kind == TAX_ID:
        value = _squash(raw).upper()
        ok, message = check_tax_id(value)
        if not ok:
            raise ReviewInputError(f"{label} {value}: {message}")
        return value
    if kind == RATES:
        return _normalize_rates(label, raw)
    if kind == WORDS:
        words = _squash(raw)
        try:
            parse_amount_words(words)
        except ValueError as exc:
            raise ReviewInputError(f"{label}: {words} is not an amount in words ({exc})") from exc
        return words
    if kind == CURRENCY:
        code = _squash(raw).upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ReviewInputError(f"{label}: {raw!r} is not a currency code; type three letters, e.g. CNY")
        return code
    value = " ".join(unicodedata.normalize("NFKC", raw).split())
    if len(value) > _MAX_TEXT:
        raise ReviewInputError(f"{label}: {len(value)} characters is too long (at most {_MAX_TEXT})")
    if result.doc_type in VAT_DOC_TYPES:
        # Chinese names are printed with full-width brackets, as the extractor stores them.
        value = value.replace("(", "（").replace(")", "）")
    return value


def _normalize_date(result: InvoiceResult, label: str, raw: str, today: date) -> str:
    squashed = _squash(raw)
    match = _DATE.match(squashed) or _COMPACT_DATE.match(squashed)
    if not match:
        raise ReviewInputError(f"{label}: {raw!r} is not a date; type it as YYYY-MM-DD")
    year, month, day = (int(part) for part in match.groups())
    try:
        when = date(year, month, day)
    except ValueError as exc:
        raise ReviewInputError(
            f"{label}: {year:04d}-{month:02d}-{day:02d} is not a date that exists"
        ) from exc
    if when > today:
        raise ReviewInputError(f"{label}: {when} is in the future")
    if result.doc_type in VAT_DOC_TYPES and when < FIRST_VAT_INVOICE:
        raise ReviewInputError(f"{label}: {when} is before VAT invoices existed ({FIRST_VAT_INVOICE})")
    return when.isoformat()


def _normalize_digits(result: InvoiceResult, name: str, label: str, raw: str) -> str:
    value = _squash(raw)
    if name == "check_code":
        code = result.value("invoice_code")
        ok, message = check_check_code(value.lower(), code if isinstance(code, str) else None)
        if ok:
            return value.lower() if not value.isdigit() else value
        raise ReviewInputError(f"{label}: {message}")
    if not (value.isascii() and value.isdigit()):
        raise ReviewInputError(f"{label}: {raw!r} must be digits only")
    if name == "invoice_code":
        lengths: tuple[int, ...] = (10, 12)
    elif name == "invoice_number":
        lengths = (20,) if result.doc_type in FULLY_DIGITAL_DOC_TYPES else (8,)
    elif name == "machine_no":
        lengths = (12,)
    else:
        lengths = ()
    if lengths and len(value) not in lengths:
        expected = " or ".join(str(n) for n in lengths)
        raise ReviewInputError(f"{label}: {value} has {len(value)} digits; expected {expected}")
    return value


def _normalize_rates(label: str, raw: str) -> list[str]:
    rates = []
    for part in _RATE_SPLIT.split(raw):
        if not part:
            continue
        rate = normalize_tax_rate(part)
        if rate is None:
            raise ReviewInputError(f"{label}: {part!r} is not a tax rate")
        if rate not in TAX_RATES and rate not in OLD_TAX_RATES:
            raise ReviewInputError(f"{label}: {rate} is not a VAT rate")
        if rate not in rates:
            rates.append(rate)
    if not rates:
        raise ReviewInputError(f"{label}: type at least one rate, e.g. 13%")
    return rates


# --------------------------------------------------------------------------------------------------
# Applying a correction
# --------------------------------------------------------------------------------------------------


def default_reviewer() -> str:
    """``$USER``, else the login name."""
    name = os.environ.get("USER", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def review_history(store: Store, document_id: str) -> list[dict[str, Any]]:
    """Every audit record of one document, oldest first."""
    return [record for _, record in store.review_records(document_id)]


def apply_correction(
    store: Store,
    document_id: str,
    field: str,
    new_value: str | None,
    reviewer: str,
    accept: bool = False,
    *,
    today: date | None = None,
    review_below: float = DEFAULT_REVIEW_BELOW,
) -> InvoiceResult:
    """Correct (or, with ``accept``, confirm) one field; re-run the rules; store the audit and result.

    A typed value equal to the stored one counts as an acceptance. Raises ``ReviewInputError`` for a
    value its field cannot hold (nothing is stored), ``NotFound`` for an unknown document.
    """
    reviewer = reviewer.strip()
    if not reviewer:
        raise ReviewInputError("a reviewer name is needed (--reviewer or $USER)")
    result = store.load_result(document_id)
    document_id = result.document_id
    found = result.fields.get(field)
    if found is None:
        raise ReviewInputError(f"invoice {document_id[:12]} has no field {field!r}")
    value = found.value if accept else normalize_value(result, field, new_value or "", today)
    action = ACCEPT if accept or value == found.value else CORRECT
    old = found.to_dict()

    now = datetime.now(UTC)
    record = {
        "document_id": document_id,
        "source_name": result.source_name,
        "field": field,
        "action": action,
        "old_value": old["value"],
        "new_value": value,
        "old_status": old["status"],
        "old_source": old["source"],
        "old_confidence": old["confidence"],
        "old_reasons": old["reasons"],
        "reviewer": reviewer,
        "reviewed_at": now.isoformat().replace("+00:00", "Z"),
    }
    stamp = f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{field}"
    record["key"] = review_key(document_id, stamp)
    store.save_review_record(document_id, record, stamp)
    result = _settle(store, document_id, field, today, review_below)
    log.info("%s %s of %s by %s: %r -> %r", action, field, document_id[:12], reviewer, old["value"], value)
    if _rematch_ledger(store, document_id):
        result = store.load_result(document_id)
    return result


def _settle(
    store: Store, document_id: str, acted_on: str, today: date | None, review_below: float
) -> InvoiceResult:
    """Rebuild result.json from the stored result and every review record, until no record is missing.

    Two clerks correcting the same invoice at once each store their record first (create-only), then
    each rebuilds the result from all records and writes it. Whoever wrote a result built without the
    other's record sees that record afterwards and writes again, so the last result.json holds both.
    """
    for _ in range(10):
        records = store.review_records(document_id)
        result = _replay(
            store.load_result(document_id), [r for _, r in records], acted_on, today, review_below
        )
        store.replace_result(result)
        if {key for key, _ in store.review_records(document_id)} <= {key for key, _ in records}:
            return result
    raise StorageError(f"invoice {document_id[:12]} keeps changing under review; try again")


def _replay(
    result: InvoiceResult,
    history: list[dict[str, Any]],
    acted_on: str,
    today: date | None,
    review_below: float,
) -> InvoiceResult:
    """The result with every correction in ``history`` applied (oldest first) and the rules re-run."""
    before = _rule_reasons(result, today, review_below)
    for record in history:
        found = result.fields.get(record.get("field", ""))
        if record.get("action") == CORRECT and found is not None:
            box = found.box
            result.fields[record["field"]] = Field(
                record["new_value"], 1.0, FieldStatus.OK, FieldSource.REVIEW, box=box
            )
    latest = {record.get("field"): record for record in history}.get(acted_on, {})
    found = result.fields.get(acted_on)
    if latest.get("action") == ACCEPT and found is not None:
        has_value = found.value not in (None, "", [])
        found.status = FieldStatus.OK if has_value else FieldStatus.MISSING
        found.reasons = []
    _drop_stale_reasons(result, before, _rule_reasons(result, today, review_below), skip=acted_on)
    validate_invoice(result, today=today, review_below=review_below)
    _keep_accepted(result, history)
    result.warnings = list(dict.fromkeys(result.warnings))
    return result


def _rule_reasons(result: InvoiceResult, today: date | None, review_below: float) -> dict[str, set[str]]:
    """The reasons the rules alone give each field for these values (run on a copy)."""
    probe = InvoiceResult(
        document_id=result.document_id,
        source_name=result.source_name,
        doc_type=result.doc_type,
        fields={
            name: Field(
                found.value,
                found.confidence,
                FieldStatus.MISSING if found.status == FieldStatus.MISSING else FieldStatus.OK,
                found.source,
                found.box,
            )
            for name, found in result.fields.items()
        },
        items=result.items,
        checks=list(result.checks),
        qr_payload=result.qr_payload,
    )
    validate_invoice(probe, today=today, review_below=review_below)
    return {name: set(found.reasons) for name, found in probe.fields.items()}


def _drop_stale_reasons(
    result: InvoiceResult, before: dict[str, set[str]], after: dict[str, set[str]], skip: str
) -> None:
    """Remove reasons a rule gave before the change and no longer gives (amount + tax ≠ total, …).

    A field left without reasons goes back to OK; the re-validation then flags it again if it was read
    with low confidence and nothing confirms it.
    """
    for name, found in result.fields.items():
        if name == skip or found.source == FieldSource.REVIEW:
            continue
        stale = before.get(name, set()) - after.get(name, set())
        if not stale or not stale.intersection(found.reasons):
            continue
        found.reasons = [reason for reason in found.reasons if reason not in stale]
        if not found.reasons and found.status == FieldStatus.NEEDS_REVIEW:
            found.status = FieldStatus.OK


def _keep_accepted(result: InvoiceResult, history: list[dict[str, Any]]) -> None:
    """A value a person accepted stays accepted while it is unchanged, whatever the rules say."""
    latest: dict[str, dict[str, Any]] = {}
    for record in history:
        latest[record["field"]] = record
    for name, record in latest.items():
        found = result.fields.get(name)
        if record.get("action") != ACCEPT or found is None or found.source == FieldSource.REVIEW:
            continue
        if found.value != record.get("new_value"):
            continue
        has_value = found.value not in (None, "", [])
        found.status = FieldStatus.OK if has_value else FieldStatus.MISSING
        found.reasons = []
        if has_value:
            found.confidence = 1.0


def _rematch_ledger(store: Store, document_id: str) -> bool:
    """Re-run the ledger match for this document if the reconcile feature is installed."""
    module = _reconcile()
    rematch = getattr(module, "rematch_document", None) if module else None
    if rematch is None:
        log.debug("no pipeline.reconcile.rematch_document: ledger match not re-run")
        return False
    try:
        rematch(store, document_id)
    except PipelineError as exc:
        log.warning("ledger re-match of %s failed (the correction is stored): %s", document_id[:12], exc)
        return False
    return True
