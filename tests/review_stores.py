"""The review tool's test store: real sample pages with results as the pipeline makes them (boxes from
a real OCR run of the same pages), a few values misread on purpose, and the real rules applied; and
reading back what the store holds for a document.

Shared by ``test_review.py``, ``test_review_browser.py`` and ``test_web_browser.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.model import Box, DocType, Field, FieldSource, FieldStatus, InvoiceResult, PageInfo
from pipeline.store import Store, open_store
from pipeline.store.objects import result_key
from pipeline.validate import validate_invoice
from tests.conftest import SAMPLES

OK, REVIEW, MISSING = FieldStatus.OK, FieldStatus.NEEDS_REVIEW, FieldStatus.MISSING
OCR, QR = FieldSource.OCR, FieldSource.QR
VAT_QR = "01,01,1100214130,10631331,44463.10,20210119,,9C54,"


def rect(x0: float, y0: float, x1: float, y1: float) -> Box:
    return Box(0, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


def vat_special_result(document_id: str) -> InvoiceResult:
    """samples/vat_special_clean.png as the pipeline reads it, with three misreads.

    The buyer's name is read with low confidence, the seller's tax ID has a wrong check character
    (…N06 for …N05) and the total reads 48360.12 where amount + tax and the words say 48360.72.
    """
    fields = {
        "title": Field("北京增值税专用发票", 0.9998, OK, OCR, rect(680, 94, 1208, 160)),
        "invoice_code": Field("1100214130", 1.0, OK, OCR, rect(1555, 56, 1722, 86)),
        "invoice_number": Field("10631331", 1.0, OK, QR, None),
        "issue_date": Field("2021-01-19", 1.0, OK, OCR, rect(1289, 176, 1654, 211)),
        "check_code": Field.missing(),
        "machine_no": Field.missing(),
        "buyer_name": Field("北京长城软件有限公司", 0.62, OK, OCR, rect(312, 272, 653, 310)),
        "buyer_tax_id": Field("91110108MAUJFMDA5F", 0.9995, OK, OCR, rect(186, 313, 688, 349)),
        "seller_name": Field("金桥（北京）建筑工程有限责任公司", 0.9993, OK, OCR, rect(310, 856, 816, 896)),
        "seller_tax_id": Field("91110115MA56E82N06", 0.97, OK, OCR, rect(186, 895, 688, 929)),
        "amount_excl_tax": Field("44463.10", 1.0, OK, OCR, rect(1282, 754, 1436, 785)),
        "tax_amount": Field("3897.62", 0.9955, OK, OCR, rect(1641, 751, 1780, 787)),
        "total_amount": Field("48360.12", 0.93, OK, OCR, rect(1406, 799, 1672, 837)),
        "total_amount_words": Field("肆万捌仟叁佰陆拾元零柒角贰分", 0.99, OK, OCR, rect(586, 803, 986, 836)),
        "tax_rates": Field(["13%", "6%", "9%"], 0.998, OK, OCR, rect(1457, 485, 1517, 600)),
    }
    result = InvoiceResult(
        document_id=document_id,
        source_name="vat_special_clean.png",
        doc_type=DocType.VAT_SPECIAL_PAPER,
        fields=fields,
        pages=[PageInfo(0, 1890, 1150, "ocr")],
        engine="test",
        qr_payload=VAT_QR,
    )
    return validate_invoice(result)


def generic_result(document_id: str) -> InvoiceResult:
    """samples/en_invoice.png as the pipeline reads it: 09/02/2025 may be either day-month order."""
    fields = {
        "vendor_name": Field("Blauwal Software GmbH", 0.9993, OK, OCR, rect(138.6, 145, 785.9, 195.7)),
        "invoice_number": Field("INV-2025-7285", 1.0, OK, OCR, rect(1284, 271.2, 1514.2, 303)),
        "issue_date": Field(
            "2025-02-09",
            1.0,
            REVIEW,
            OCR,
            rect(1335.7, 318.3, 1516.6, 353.7),
            ["day and month order is ambiguous"],
        ),
        "total_amount": Field("4777.70", 0.9986, OK, OCR, rect(1336.8, 1402.9, 1515.4, 1439.5)),
        "amount_excl_tax": Field("4014.87", 0.9999, OK, OCR, rect(1352.1, 1276.8, 1515.4, 1313.3)),
        "tax_amount": Field("762.83", 1.0, OK, OCR, rect(1380.3, 1332.2, 1516.6, 1368.7)),
        "currency": Field("EUR", 0.9999, OK, OCR, rect(1443.7, 413.8, 1517.7, 453.9)),
        "vendor_tax_id": Field("DE685504335", 0.9847, OK, OCR, rect(138.6, 346.6, 474.6, 378.4)),
    }
    result = InvoiceResult(
        document_id=document_id,
        source_name="en_invoice.png",
        doc_type=DocType.GENERIC_INVOICE,
        fields=fields,
        pages=[PageInfo(0, 1654, 2339, "ocr")],
        engine="test",
    )
    return validate_invoice(result)


@dataclass(frozen=True)
class ReviewStore:
    path: Path
    vat_id: str
    generic_id: str

    def open(self) -> Store:
        return open_store(str(self.path))


def build_review_store(path: Path) -> ReviewStore:
    """A store with two invoices that need review (pages are the real sample images)."""
    store = open_store(str(path))
    try:
        ids = []
        for name, build in (
            ("vat_special_clean.png", vat_special_result),
            ("en_invoice.png", generic_result),
        ):
            data = (SAMPLES / name).read_bytes()
            document_id = hashlib.sha256(data).hexdigest()
            assert store.save(data, name, build(document_id), [(0, data)])
            ids.append(document_id)
    finally:
        store.close()
    return ReviewStore(path, *ids)


def stored_json(store: Store, document_id: str) -> dict[str, Any]:
    return json.loads(store.objects.get(result_key(document_id)))


def index_row(store: Store, document_id: str) -> dict[str, Any]:
    return next(row for row in store.index.documents() if row["document_id"] == document_id)
