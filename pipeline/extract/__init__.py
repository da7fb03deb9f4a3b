"""Stage 4: text lines -> typed fields with a confidence, a box and a status.

Extraction reports what the page shows; ``validate`` then decides, with rules and
the QR code, which values can be trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from pipeline.extract.generic import GENERIC_FIELDS, extract_generic, looks_like_invoice
from pipeline.extract.layout import Hit, normalize
from pipeline.extract.remarks import remarks_field
from pipeline.extract.vat import VAT_FIELDS, classify, extract_items, extract_vat, looks_like_vat_invoice
from pipeline.model import DocType, Field, FieldSource, FieldStatus, TextLine

LIST_FIELDS = frozenset({"tax_rates"})


@dataclass
class Extraction:
    doc_type: DocType
    fields: dict[str, Field]
    items: list[dict[str, object]] = field(default_factory=list)


def to_field(hit: Hit | None, source: FieldSource, review_below: float, name: str = "") -> Field:
    """A found value is accepted when its evidence is strong enough, else sent to review."""
    if hit is None:
        return Field.missing(source=source)
    value: object = hit.text.split(",") if name in LIST_FIELDS else hit.text
    confidence = hit.confidence
    found = Field(value=value, confidence=confidence, status=FieldStatus.OK, source=source, box=hit.box)
    if confidence < review_below:
        found.flag(f"weak OCR confidence {confidence:.2f}")
    for note in hit.notes:
        found.flag(note)
    return found


def _require_evidence(fields: dict[str, Field], paid: Decimal | None) -> None:
    """Free-form invoices have no checksums: accept only what arithmetic on the page backs.

    The vendor is picked by position on the page, so it always goes to review. A total is
    accepted when subtotal + tax make it, or when the cash tendered less the change does.
    """
    vendor = fields["vendor_name"]
    if vendor.value is not None:
        vendor.flag("vendor chosen by its position on the page: confirm it")
    total, excl, tax = (fields[name].value for name in ("total_amount", "amount_excl_tax", "tax_amount"))
    if total is None:
        return
    summed = excl is not None and tax is not None and Decimal(excl) + Decimal(tax) == Decimal(total)
    if not summed and paid != Decimal(total):
        fields["total_amount"].flag(
            "neither subtotal + tax nor cash − change on the page confirms this total"
        )


def extract_fields(lines: Sequence[TextLine], source: FieldSource, review_below: float) -> Extraction:
    """Classify the document and read its fields."""
    text = "".join(normalize(line.text) for line in lines)
    if looks_like_vat_invoice([line.text for line in lines]):
        hits = extract_vat(lines)
        title = hits["title"].text if hits["title"] else ""
        doc_type = classify(title, text)
        fields = {name: to_field(hits[name], source, review_below, name) for name in VAT_FIELDS}
        fields["remarks"] = remarks_field(lines, source)  # 备注, for red-letter links (issue 15)
        return Extraction(doc_type, fields, list(extract_items(lines)))
    if looks_like_invoice(" ".join(line.text for line in lines)):
        generic = extract_generic(lines)
        fields = {name: to_field(generic.found[name], source, review_below, name) for name in GENERIC_FIELDS}
        for note in generic.notes:
            name, _, reason = note.partition(": ")
            if fields[name].value is not None:
                fields[name].flag(reason)
        _require_evidence(fields, generic.paid)
        return Extraction(DocType.GENERIC_INVOICE, fields)
    return Extraction(DocType.OTHER, {})


__all__ = ["Extraction", "extract_fields"]
