"""The web app's test stores: the text-layer PDF samples through the real pipeline (no OCR), one invoice
whose seller and file name are markup, one failure; and a tax-platform export and ledger for them.

Shared by ``test_web.py``, ``test_web_browser.py`` and ``test_web_api_schema.py``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.ingest import save_result, work
from pipeline.model import Box, DocType, Field, FieldSource, FieldStatus, InvoiceResult, PageInfo, TextLine
from pipeline.store import Store, open_store
from pipeline.validate import validate_invoice
from tests.conftest import SAMPLES

PDF_SAMPLES = ("en_invoice.pdf", "fully_digital_general.pdf", "vat_e_general.pdf")
SCRIPT_SELLER = "<script>alert('x')</script>科技有限公司"


@dataclass(frozen=True)
class WebStore:
    path: Path
    ids: dict[str, str]  # sample name -> document id
    script_id: str
    index: str | None = None  # a PostgreSQL URL, or None: the SQLite file in the store

    def open(self) -> Store:
        return open_store(str(self.path), index=self.index)


def ingest_samples(store: Store, names: tuple[str, ...] = PDF_SAMPLES) -> dict[str, str]:
    """The PDFs through the real pipeline (their text layers: no OCR), stored as ``ingest`` does."""
    settings = Settings(store=store.location)
    ids = {}
    for name in names:
        data = (SAMPLES / name).read_bytes()
        outcome = save_result(work(name, data, name, settings), data, name, store)
        assert outcome.document_id, outcome
        ids[name] = outcome.document_id
    return ids


def script_invoice(store: Store) -> str:
    """An invoice whose seller's name is markup: every page must show it as text."""
    page = (SAMPLES / "vat_special_clean.png").read_bytes()
    data = page + b"\n<script>-seller"
    document_id = hashlib.sha256(data).hexdigest()
    box = Box(0, ((310.0, 856.0), (816.0, 856.0), (816.0, 896.0), (310.0, 896.0)))
    ok = FieldStatus.OK
    result = InvoiceResult(
        document_id=document_id,
        source_name="<img src=x onerror=alert(1)>.png",
        doc_type=DocType.VAT_GENERAL_PAPER,
        fields={
            "invoice_code": Field("1100214130", 1.0, ok, FieldSource.OCR),
            "invoice_number": Field("77777777", 1.0, ok, FieldSource.OCR),
            "issue_date": Field("2024-05-06", 1.0, ok, FieldSource.OCR),
            "seller_name": Field(SCRIPT_SELLER, 0.99, ok, FieldSource.OCR, box),
            "buyer_name": Field("<b>bold</b> buyer", 0.99, ok, FieldSource.OCR),
            "amount_excl_tax": Field("94.34", 1.0, ok, FieldSource.OCR),
            "tax_amount": Field("5.66", 1.0, ok, FieldSource.OCR),
            "total_amount": Field("100.00", 1.0, ok, FieldSource.OCR),
        },
        pages=[PageInfo(0, 1890, 1150, "ocr")],
        engine="test",
        lines=[TextLine("<script>alert('line')</script>", 0.99, ((0, 0), (1, 0), (1, 1), (0, 1)))],
    )
    assert store.save(data, result.source_name, validate_invoice(result), [(0, page)])
    return document_id


def build_web_store(path: Path, index: str | None = None) -> WebStore:
    store = open_store(str(path), index=index)
    try:
        ids = ingest_samples(store)
        script_id = script_invoice(store)
        store.save_failure("f" * 64, "broken.pdf", "ImageUnreadable", "not a PDF or image")
    finally:
        store.close()
    return WebStore(path, ids, script_id, index)


def expected_fields(name: str) -> dict[str, Any]:
    stem = name.rsplit(".", 1)[0]
    return json.loads((SAMPLES / f"{stem}.expected.json").read_text(encoding="utf-8"))["fields"]


def platform_and_ledger(tmp_path: Path) -> tuple[Path, Path]:
    """A 全量发票查询 export (CSV) where the 增值税电子普通发票 is partly red-reversed by a red invoice
    (its 备注 names the blue one) and the 全电 invoice is voided; a ledger booking both."""
    vat = expected_fields("vat_e_general.pdf")
    digital = expected_fields("fully_digital_general.pdf")
    platform = tmp_path / "全量发票查询.csv"
    header = "发票代码,数电发票号码,发票号码,开票日期,金额,税额,价税合计,销售方名称,销售方纳税人识别号,发票状态,备注\n"
    rows = [
        f"{vat['invoice_code']},,{vat['invoice_number']},{vat['issue_date']},{vat['amount_excl_tax']},"
        f"{vat['tax_amount']},{vat['total_amount']},{vat['seller_name']},{vat['seller_tax_id']},部分红冲,",
        f"{vat['invoice_code']},,90000001,2023-02-20,-1000.00,-60.00,-1060.00,{vat['seller_name']},"
        f"{vat['seller_tax_id']},正常,对应正数发票代码:{vat['invoice_code']}号码:{vat['invoice_number']}",
        f",{digital['invoice_number']},,{digital['issue_date']},{digital['amount_excl_tax']},"
        f"{digital['tax_amount']},{digital['total_amount']},{digital['seller_name']},{digital['seller_tax_id']},作废,",
    ]
    platform.write_text(header + "\n".join(rows) + "\n", encoding="utf-8-sig")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(
        "发票代码,发票号码,开票日期,金额,税额,价税合计,销售方名称\n"
        + "".join(
            f"{f['invoice_code'] or ''},{f['invoice_number']},{f['issue_date']},{f['amount_excl_tax']},"
            f"{f['tax_amount']},{f['total_amount']},{f['seller_name']}\n"
            for f in (vat, digital)
        ),
        encoding="utf-8",
    )
    return platform, ledger
