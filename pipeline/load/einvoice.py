"""What OFD and XML e-invoices share: normalised values, merged sources, and a page for XML.

Values keep the result's conventions: dates YYYY-MM-DD, amounts with two decimals (tax printed
``***`` on exempt invoices is 0.00), IDs upper-case without spaces, rates like ``13%``.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from pipeline.model import Page, StructuredInvoice, TextLine, polygon_from_rect

AMOUNT_FIELDS = frozenset({"amount_excl_tax", "tax_amount", "total_amount"})
ID_FIELDS = frozenset(
    {"invoice_code", "invoice_number", "check_code", "machine_no", "buyer_tax_id", "seller_tax_id"}
)
ITEM_KEYS = ("name", "spec", "unit", "quantity", "unit_price", "amount", "tax_rate", "tax_amount")
CENT = Decimal("0.01")
DATE = re.compile(r"(\d{4})\s*[-年/.]?\s*(\d{1,2})\s*[-月/.]?\s*(\d{1,2})")


def normalise_amount(text: str) -> str | None:
    cleaned = re.sub(r"[\s,，¥￥元]", "", text)
    if not cleaned:
        return None
    if set(cleaned) <= {"*", "＊"}:
        return "0.00"
    try:
        return f"{Decimal(cleaned).quantize(CENT, rounding=ROUND_HALF_UP):.2f}"
    except InvalidOperation:
        return None


def normalise_date(text: str) -> str | None:
    found = DATE.search(text)
    if not found:
        return None
    year, month, day = (int(part) for part in found.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return f"{year:04d}-{month:02d}-{day:02d}"


def normalise_rate(text: str) -> str | None:
    cleaned = text.strip().replace(" ", "")
    if not cleaned:
        return None
    if cleaned.endswith("%"):
        try:
            return f"{Decimal(cleaned[:-1]).normalize():f}%"
        except InvalidOperation:
            return cleaned
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return cleaned  # 免税, 不征税, ***
    if value < 1:
        value *= 100  # 数电 XML writes 0.13
    return f"{value.normalize():f}%"


def normalise(name: str, text: str | None) -> str | None:
    """The value of field ``name`` in the result's form, or None when there is none."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if name in AMOUNT_FIELDS:
        return normalise_amount(text)
    if name == "issue_date":
        return normalise_date(text)
    if name in ID_FIELDS:
        return re.sub(r"\s", "", text).upper() or None
    return re.sub(r"\s+", " ", text)


def normalise_item(raw: dict[str, str | None]) -> dict[str, str | None]:
    item: dict[str, str | None] = dict.fromkeys(ITEM_KEYS)
    for key in ITEM_KEYS:
        value = (raw.get(key) or "").strip()
        if not value:
            continue
        if key in ("amount", "tax_amount"):
            item[key] = normalise_amount(value) or value
        elif key == "tax_rate":
            item[key] = normalise_rate(value)
        else:
            item[key] = value
    return item


def build(
    sources: list[tuple[str, dict[str, str | None], list[dict[str, str | None]]]],
) -> StructuredInvoice | None:
    """Merge the sources found in one file, most trusted first.

    Each value comes from the first source that has it; a later source that says otherwise is
    kept as a disagreement (a review reason), never silently dropped.
    """
    fields: dict[str, str] = {}
    items: list[dict[str, str | None]] = []
    origins: list[str] = []
    disagreements: dict[str, str] = {}
    for origin, values, source_items in sources:
        used = False
        for name, raw in values.items():
            value = normalise(name, raw)
            if value is None:
                continue
            used = True
            if name not in fields:
                fields[name] = value
            elif fields[name] != value and name not in disagreements:
                disagreements[name] = f"{origin} says {value}"
        if source_items and not items:
            items = [normalise_item(item) for item in source_items]
            used = True
        if used:
            origins.append(origin)
    if not fields:
        return None
    structured = StructuredInvoice(fields=fields, items=items, origin=", ".join(origins))
    structured.extra.update({f"disagrees:{name}": text for name, text in disagreements.items()})
    return structured


# ---- the page shown for an XML invoice ---------------------------------------------------------

PAGE_MM = (210.0, 140.0)
LABELS = (
    ("invoice_code", "发票代码："),
    ("invoice_number", "发票号码："),
    ("issue_date", "开票日期："),
    ("check_code", "校验码："),
    ("machine_no", "机器编号："),
)


def _date_cn(value: str) -> str:
    year, month, day = value.split("-")
    return f"{year}年{month}月{day}日"


def xml_page(structured: StructuredInvoice, title: str, dpi: int, words: str = "") -> Page:
    """A plain page laid out like a printed invoice, drawn from the XML's values.

    An XML invoice has no page of its own; this one lets review, reports and the extractor see
    the same values (its text lines are what is drawn, so they agree with the data by design).
    """
    from pipeline.load.canvas import Canvas

    canvas = Canvas(*PAGE_MM, dpi)
    lines: list[TextLine] = []
    size = 3.2

    def put(
        x: float, y: float, text: str, text_size: float = size, color: tuple[int, ...] = (0, 0, 0)
    ) -> None:
        if not text:
            return
        width = canvas.text(x, y, text, text_size, color)
        left, top = canvas.px(x), canvas.px(y - text_size * 0.88)
        lines.append(
            TextLine(
                text, 1.0, polygon_from_rect(left, top, left + width, canvas.px(y + text_size * 0.12)), 0
            )
        )

    fields = structured.fields
    brown = (156, 82, 35)
    put(70, 12, title, 5.5, brown)
    y = 10.0
    for name, label in LABELS:
        if name in fields:
            value = _date_cn(fields[name]) if name == "issue_date" else fields[name]
            put(140, y, label, size, brown)
            put(160, y, value)
            y += 5
    y = max(y, 36.0)
    for side, prefix in (("buyer", "购买方"), ("seller", "销售方")):
        put(8, y, f"{prefix}名称：", size, brown)
        put(30, y, fields.get(f"{side}_name", ""))
        put(110, y, "纳税人识别号：", size, brown)
        put(135, y, fields.get(f"{side}_tax_id", ""))
        y += 6
    y += 4
    columns = (
        (8, "项目名称"),
        (62, "规格型号"),
        (84, "单位"),
        (96, "数量"),
        (112, "单价"),
        (134, "金额"),
        (156, "税率"),
        (176, "税额"),
    )
    for x, label in columns:
        put(x, y, label, size, brown)
    y += 6
    for item in structured.items[:12]:
        for (x, _), key in zip(columns, ITEM_KEYS, strict=True):
            put(x, y, item.get(key) or "", 2.8)
        y += 5
    y = max(y + 2, 104.0)
    put(8, y, "合计", size, brown)
    put(134, y, f"¥{fields['amount_excl_tax']}" if "amount_excl_tax" in fields else "")
    put(176, y, f"¥{fields['tax_amount']}" if "tax_amount" in fields else "")
    y += 8
    put(8, y, "价税合计（大写）", size, brown)
    put(40, y, words or fields.get("total_amount_words", ""))
    put(134, y, "（小写）", size, brown)
    put(150, y, f"¥{fields['total_amount']}" if "total_amount" in fields else "")
    remark = structured.extra.get("remarks", "")
    if remark:
        put(8, y + 8, "备注：", size, brown)
        put(22, y + 8, remark[:60], 2.8)
    return Page(
        index=0,
        image=canvas.to_bgr(),
        text_layer=lines,
        text_layer_trusted=True,
        note="drawn from the e-invoice XML (the file has no page of its own)",
        structured=structured,
        drawn_from_data=True,
    )
