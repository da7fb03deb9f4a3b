"""Stage 4b: the invoice's own data (OFD tags and attachments, e-invoice XML) over the page's fields.

A value the file carries as data is exact: it becomes the field's value with source
``structured`` and confidence 1.0. The page text is still read (by the same extractor as OCR
lines) for what the data lacks (the title, the amount in words) and as a witness: where page
and data disagree, the field goes to review with both values. The validation rules then run as
for any other invoice.
"""

from __future__ import annotations

import re

from pipeline.extract import Extraction, to_field
from pipeline.extract.vat import VAT_FIELDS, classify, extract_vat
from pipeline.load.einvoice import normalise
from pipeline.model import VAT_DOC_TYPES, Field, FieldSource, FieldStatus, StructuredInvoice, TextLine

RED_LETTER_DATA = ("remarks", "original_invoice_code", "original_invoice_number")


def same_value(name: str, page_value: object, data_value: str) -> bool:
    """Whether the page shows the data's value, in the field's own terms (amounts, dates, IDs)."""
    shown = normalise(name, str(page_value))
    if shown is None:
        return False
    if name.endswith("_name") or name == "total_amount_words":
        return re.sub(r"\s", "", shown) == re.sub(r"\s", "", data_value)
    return shown == data_value


def merge_structured(
    extraction: Extraction, structured: StructuredInvoice, lines: list[TextLine], review_below: float
) -> Extraction:
    """The extraction with the structured values in it (a new ``Extraction``; fields are replaced)."""
    if extraction.doc_type not in VAT_DOC_TYPES:
        # E-invoice data is a VAT invoice's: read the page as one even if its text did not say so.
        hits = extract_vat(lines)
        title = hits["title"].text if hits["title"] else ""
        text = "".join(line.text for line in lines)
        fields = {
            name: to_field(hits[name], FieldSource.TEXT_LAYER, review_below, name) for name in VAT_FIELDS
        }
        extraction = Extraction(classify(title, text), fields, extraction.items)
    fields = dict(extraction.fields)
    for name, value in structured.fields.items():
        on_page = fields.get(name)
        box = structured.boxes.get(name) or (on_page.box if on_page is not None else None)
        merged = Field(
            value=value, confidence=1.0, status=FieldStatus.OK, source=FieldSource.STRUCTURED, box=box
        )
        if (
            on_page is not None
            and on_page.value not in (None, "")
            and not same_value(name, on_page.value, value)
        ):
            merged.flag(f"the page shows {on_page.value}; the invoice's own data says {value}")
        disagreement = structured.extra.get(f"disagrees:{name}")
        if disagreement:
            merged.flag(f"the file's parts disagree: {disagreement}")
        fields[name] = merged
    # What reconciliation links a red-letter invoice to its blue one by (pipeline.reconcile.redletter).
    for name in RED_LETTER_DATA:
        value = structured.extra.get(name)
        if value and name not in structured.fields:
            fields[name] = Field(
                value=value, confidence=1.0, status=FieldStatus.OK, source=FieldSource.STRUCTURED
            )
    items = list(structured.items) if structured.items else extraction.items
    return Extraction(extraction.doc_type, fields, items)
