"""Five invoices for the index tests (four fapiao and a foreign one, one with a seller name to review).

``INVOICES`` holds one tuple per invoice; ``make_result(spec)`` turns one into an ``InvoiceResult``.
"""

from __future__ import annotations

from pipeline.model import (
    DocType,
    Field,
    FieldSource,
    FieldStatus,
    InvoiceResult,
    PageInfo,
    TextLine,
    polygon_from_rect,
)

# (id char, number, code, date, seller, seller tax id, buyer, total, status of seller_name field, text)
INVOICES = [
    ("a", "18582132", "011002300711", "2023-02-15", "北京智源医疗器械有限公司", "91110108701741311A",
     "众合（北京）科技有限责任公司", "7849.81", FieldStatus.OK, "广告服务 广告发布费"),
    ("b", "53237011", "011001900311", "2019-09-07", "北京智源信息技术股份有限公司", "91110108MA01ABCD1X",
     "天润（杭州）信息技术有限公司", "9961.70", FieldStatus.NEEDS_REVIEW, "技术服务费 软件维护"),
    ("c", "78739086", "011002400604", "2024-07-10", "北京凯德网络科技股份有限公司", "911101055977111111",
     "北京天润网络科技有限公司", "1581.00", FieldStatus.OK, "办公用品 打印纸"),
    ("d", "10631331", "1100214130", "2021-01-19", "金桥（北京）建筑工程有限责任公司", "91110000600001234X",
     "北京长城软件有限公司", "48360.72", FieldStatus.OK, "工程款 建筑服务"),
    ("e", "INV-2025-7285", None, "2025-02-09", "Blauwal Software GmbH", None,
     None, "4,777.70", FieldStatus.OK, "Software licence annual support"),
]  # fmt: skip


def make_result(spec: tuple) -> InvoiceResult:  # type: ignore[type-arg]
    char, number, code, issued, seller, seller_tax, buyer, total, seller_status, text = spec
    fields = {
        "invoice_number": Field(number, 0.99, FieldStatus.OK, FieldSource.TEXT_LAYER),
        "invoice_code": Field(code, 0.98, FieldStatus.OK if code else FieldStatus.MISSING),
        "issue_date": Field(issued, 0.97, FieldStatus.OK),
        "seller_name": Field(seller, 0.7 if seller_status != FieldStatus.OK else 0.95, seller_status),
        "seller_tax_id": Field(seller_tax, 0.99, FieldStatus.OK if seller_tax else FieldStatus.MISSING),
        "buyer_name": Field(buyer, 0.96, FieldStatus.OK if buyer else FieldStatus.MISSING),
        "total_amount": Field(total, 0.99, FieldStatus.OK),
        "tax_rates": Field(["6%"], 0.9, FieldStatus.OK),
    }
    if seller_status != FieldStatus.OK:
        fields["seller_name"].reasons.append("low OCR confidence")
    words = text.split()
    return InvoiceResult(
        document_id=char * 64,
        source_name=f"scan-{char}.pdf",
        doc_type=DocType.GENERIC_INVOICE if code is None else DocType.VAT_E_INVOICE_GENERAL,
        fields=fields,
        pages=[PageInfo(0, 100, 80, "text_layer")],
        engine="text_layer",
        lines=[
            TextLine(word, 0.99, polygon_from_rect(0, 10 * n, 50, 10 * n + 8)) for n, word in enumerate(words)
        ],
    )
