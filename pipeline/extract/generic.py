"""Other invoices and receipts (English first): vendor, number, date, amounts, currency."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from pipeline.extract.layout import Hit, Row, build_rows, find_labels, normalize, read_match
from pipeline.model import TextLine

GENERIC_FIELDS = (
    "vendor_name",
    "invoice_number",
    "issue_date",
    "total_amount",
    "amount_excl_tax",
    "tax_amount",
    "currency",
    "vendor_tax_id",
)

INVOICE_WORDS = re.compile(r"invoice|receipt|bill|total|amount|cash|tax", re.IGNORECASE)
NUMBER_LABEL = re.compile(
    r"(invoice|inv|bill|receipt|document|doc|order)(no\.?|number|num|#|nr\.?|id)|invoice(?=:)", re.IGNORECASE
)
DATE_LABEL = re.compile(r"(invoice|issue|bill|document)?date", re.IGNORECASE)
TOTAL_LABELS = (
    re.compile(
        r"(grand|invoice)total|totalamount(due|payable)?|amountdue|balancedue|totaldue", re.IGNORECASE
    ),
    re.compile(r"total(incl|inclusive|inc)\.?", re.IGNORECASE),
    re.compile(r"(?<!sub)(?<!sub-)total(?!qty|quantity|items?)", re.IGNORECASE),
)
SUBTOTAL_LABEL = re.compile(
    r"sub-?total|totalexcl|netamount|nettotal|amountexcl|totalbeforetax", re.IGNORECASE
)
TAX_LABEL = re.compile(r"(?<![a-z])(tax|vat|gst|sst)(?!id|no|reg|invoice)", re.IGNORECASE)
TAX_ID_LABEL = re.compile(r"(vat|gst|tax|abn|ein)(reg\.?)?(id|no\.?|number|#)", re.IGNORECASE)
AMOUNT = re.compile(r"-?\d{1,3}(?:[,\s]\d{3})*(?:\.\d{2})(?!\d)|-?\d+\.\d{2}(?!\d)")
CURRENCIES = (
    ("EUR", re.compile(r"€|\bEUR\b")),
    ("GBP", re.compile(r"£|\bGBP\b")),
    ("MYR", re.compile(r"\bRM\s?\d|\bMYR\b|\(RM\)|RM$", re.IGNORECASE)),
    ("CNY", re.compile(r"¥|￥|\bCNY\b|\bRMB\b")),
    ("USD", re.compile(r"\$|\bUSD\b")),
)
MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
NOT_VENDOR = re.compile(
    r"^(tax)?invoice|^receipt|^bill|^page|^date|^tel|^fax|^phone|^www\.|@|^original|^copy|^cash",
    re.IGNORECASE,
)


def looks_like_invoice(text: str) -> bool:
    return len(INVOICE_WORDS.findall(text)) >= 2 and AMOUNT.search(text) is not None


def parse_any_date(text: str) -> tuple[str, bool] | None:
    """ISO date from common printed forms, and whether day and month order was ambiguous."""
    text = text.strip()
    match = re.search(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
    if match:
        return _iso(int(match[1]), int(match[2]), int(match[3])), False
    match = re.search(r"(\d{1,2})[-/.\s]?([A-Za-z]{3,9})\.?[-/.,\s]*(\d{4}|\d{2})(?!\d)", text)
    if match and match[2].lower() in MONTHS:
        return _iso(_year(match[3]), MONTHS[match[2].lower()], int(match[1])), False
    match = re.search(r"([A-Za-z]{3,9})\.?\s*(\d{1,2}),?\s*(\d{4})", text)
    if match and match[1].lower() in MONTHS:
        return _iso(int(match[3]), MONTHS[match[1].lower()], int(match[2])), False
    match = re.search(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?!\d)", text)
    if match:
        first, second, year = int(match[1]), int(match[2]), _year(match[3])
        if first > 12:
            return _iso(year, second, first), False
        if second > 12:
            return _iso(year, first, second), False
        # Day first is the convention outside North America; flag it for review.
        return _iso(year, second, first), first != second
    return None


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _iso(year: int, month: int, day: int) -> str:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return ""


def accept_amount(text: str) -> str | None:
    matches = AMOUNT.findall(text.replace(" ", ""))
    if not matches:
        return None
    try:
        return f"{Decimal(matches[-1].replace(',', '')):.2f}"
    except InvalidOperation:
        return None


def accept_number(text: str) -> str | None:
    text = text.lstrip(":#.")
    match = re.match(r"(?:no\.?|number|#)?[:.]?([A-Za-z0-9][A-Za-z0-9\-/]{2,24})", text, re.IGNORECASE)
    if not match or not re.search(r"\d", match[1]):
        return None
    return match[1]


def accept_date(text: str) -> str | None:
    parsed = parse_any_date(text)
    return parsed[0] if parsed and parsed[0] else None


def extract_generic(lines: Sequence[TextLine]) -> tuple[dict[str, Hit | None], list[str]]:
    """Raw hits for a non-VAT invoice, and notes that should send a field to review."""
    rows = build_rows(lines)
    found: dict[str, Hit | None] = dict.fromkeys(GENERIC_FIELDS)
    notes: list[str] = []
    found["vendor_name"] = _vendor(lines)
    found["invoice_number"] = _first(rows, NUMBER_LABEL, accept_number)
    date_hit = _first(rows, DATE_LABEL, accept_date)
    if date_hit is None:
        date_hit = next(
            (Hit(value, (line,)) for line in lines if (value := accept_date(line.text)) is not None),
            None,
        )
    if date_hit is not None:
        parsed = parse_any_date("".join(line.text for line in date_hit.lines))
        if parsed and parsed[1]:
            notes.append("issue_date: day and month order is ambiguous")
    found["issue_date"] = date_hit
    for label in TOTAL_LABELS:
        found["total_amount"] = _last(rows, label, accept_amount)
        if found["total_amount"] is not None:
            break
    found["amount_excl_tax"] = _first(rows, SUBTOTAL_LABEL, accept_amount)
    found["tax_amount"] = _first(rows, TAX_LABEL, accept_amount)
    found["vendor_tax_id"] = _first(rows, TAX_ID_LABEL, accept_number)
    page_text = " ".join(line.text for line in lines)
    for code, pattern in CURRENCIES:
        if pattern.search(page_text):
            first_line = next(line for line in lines if pattern.search(line.text))
            found["currency"] = Hit(code, (first_line,))
            break
    return found, notes


def _first(rows: Sequence[Row], label: re.Pattern[str], accept) -> Hit | None:
    for match in find_labels(rows, label):
        hit = read_match(rows, match, accept, None)
        if hit is not None:
            return hit
    return None


def _last(rows: Sequence[Row], label: re.Pattern[str], accept) -> Hit | None:
    """The lowest labelled value: totals are printed last, after subtotals and discounts."""
    hits = [hit for match in find_labels(rows, label) if (hit := read_match(rows, match, accept, None))]
    return hits[-1] if hits else None


def _vendor(lines: Sequence[TextLine]) -> Hit | None:
    """The issuer's name: a company-like line near the top, else the first text line that is not a heading."""
    if not lines:
        return None
    top = min(line.y0 for line in lines)
    bottom = max(line.y1 for line in lines)
    upper = [line for line in lines if line.y0 <= top + 0.3 * (bottom - top)]
    upper.sort(key=lambda line: (line.y0, line.x0))
    company = re.compile(
        r"\b(sdn\.?\s*bhd|bhd|inc\.?|ltd\.?|llc|gmbh|co\.|corp|limited|enterprise|s\.a\.)", re.I
    )
    for line in upper:
        if company.search(line.text) and not NOT_VENDOR.search(normalize(line.text)):
            return Hit(line.text.strip(), (line,))
    for line in upper:
        text = line.text.strip()
        if len(re.findall(r"[A-Za-z]", text)) >= 3 and not NOT_VENDOR.search(normalize(text)):
            return Hit(text, (line,))
    return None
