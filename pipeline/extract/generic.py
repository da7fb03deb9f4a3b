"""Other invoices and receipts: vendor, number, date, amounts, currency.

Labels are matched in English, German, Dutch, French and Malay/receipt forms; amounts
accept both decimal points and decimal commas. When a value is found only by a
fallback (no label), the field is sent to review.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pipeline.extract.layout import (
    Hit,
    LabelMatch,
    Row,
    build_rows,
    find_labels,
    normalize,
    read_match,
    spaced,
    spaced_tail,
    vertical_overlap,
)
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

INVOICE_WORDS = re.compile(
    r"invoice|receipt|bill|factuur|rechnung|facture|fattura|factura|total|totaal|gesamt|betrag|amount"
    r"|summe|montant|tax|vat|btw|mwst|ust|tva|gst|cash",
    re.IGNORECASE,
)
# Row texts are normalised without spaces: "Invoice No:" arrives as "InvoiceNo:".
NUMBER_LABEL = re.compile(
    r"(invoice|inv|bill|receipt|document|doc|tax\s?invoice)(no\.?|number|num|#|nr\.?|id)"
    r"|factuurnummer|factuurnr\.?|rechnungsnummer|rechnungsnr\.?|rechnungfür"
    r"|facturen°|facturenº|n°defacture|numérodefacture|numerodefacture|invoice(?=[:#])"
    r"|^(tax)?invoice(?!date|total|summary|no|number|to|amount|period|for|address)(?=[A-Z0-9#])",
    re.IGNORECASE,
)
DATE_LABEL = re.compile(
    r"(invoice|issue|bill|document|tax\s?point)?date(?!n)|factuurdatum|rechnungsdatum|datum|datedefacture",
    re.IGNORECASE,
)
TOTAL_LABEL = re.compile(
    r"grandtotal|totalamount|amountdue|balancedue|totaldue|totalpayable|nettotal|netttotal|totalincl"
    r"|gesamtsumme|gesamtbetrag|rechnungsbetrag|endbetrag|totaalbedrag|teBetalen|totaal|totalttc|montantttc"
    r"|(?<!sub)(?<!sub-)(?<!zwischen)total|summe",
    re.IGNORECASE,
)
CELL_NUMBER_LABEL = re.compile(
    r"(invoice|factuur|rechnung|facture)(no\.?|number|nr\.?|nummer|#)?:?", re.IGNORECASE
)
REFERENCE_LABEL = re.compile(r"(booking|reservation|reference|ref)(id|no\.?|number|#)?:?", re.IGNORECASE)
SUMMARY = re.compile(r"(gst|tax|vat|btw|mwst)summary", re.IGNORECASE)
WHOLE_AMOUNT = re.compile(r"(?:Rs\.?|\$|€|£|RM|¥|INR|USD|EUR)\s?(\d{1,3}(?:,\d{3})+|\d+)(?![\d.,]\d)")
NOT_TOTAL = re.compile(
    r"total(qty|oly|qly|quantity|items?|excl|exclusive|ht|gst|tax|vat|discount|saving|sales\(?excl|tva|net\b)"
    r"|subtotal|totalbeforetax|(?<!inkl\.)netto(?!tal)|excl|exkl|zwischensumme|hors|includes\d+%",
    re.IGNORECASE,
)
SUBTOTAL_LABEL = re.compile(
    r"sub-?total|totalexcl|totalbeforetax|netamount|zwischensumme|nettobetrag|totaalexcl|totalht|montantht",
    re.IGNORECASE,
)
TAX_LABEL = re.compile(
    r"(?<![a-z])(total)?(tax|vat|gst|sst|btw|mwst|ust|tva)(?!id|no|reg|invoice|nr|nummer|number|%?\d)",
    re.IGNORECASE,
)
TAX_ID_LABEL = re.compile(
    r"(vat|gst|tax|abn|ein|btw|ust|tva)[-.]?(reg\.?)?(id|no\.?|number|#|nr\.?|-?idnr\.?)|gstid", re.IGNORECASE
)
AMOUNT = re.compile(r"(?<![\d.,])-?(?:\d{1,3}(?:[.,\s]\d{3})+|\d+)[.,]\d{2}(?![\d.,]\d)")
CURRENCIES = (
    ("EUR", re.compile(r"€|\bEUR\b")),
    ("GBP", re.compile(r"£|\bGBP\b")),
    ("MYR", re.compile(r"\bRM\s?\d|\bMYR\b|\(RM\)|\bRM\b")),
    ("INR", re.compile(r"₹|\bINR\b|\bRs\.?\s?\d")),
    ("CNY", re.compile(r"¥|￥|\bCNY\b|\bRMB\b")),
    ("USD", re.compile(r"\$|\bUSD\b")),
)
MONTH_NAMES = {
    1: "jan january januar januari janvier",
    2: "feb february februar februari février fevrier",
    3: "mar march märz maerz maart mars",
    4: "apr april avril",
    5: "may mai mei",
    6: "jun june juni juin",
    7: "jul july juli juillet",
    8: "aug august augustus août aout",
    9: "sep sept september septembre",
    10: "oct october oktober okt octobre",
    11: "nov november novembre",
    12: "dec december dezember dez décembre decembre",
}
MONTHS = {name: number for number, names in MONTH_NAMES.items() for name in names.split()}
MONTH_WORD = "|".join(sorted(MONTHS, key=len, reverse=True))
NOT_VENDOR = re.compile(
    r"^(tax)?invoice|^receipt|^bill|^page|^seite|^date|^tel|^fax|^phone|^www\.|@|^original|^copy|^cash"
    r"|^rechnung|^factuur|^facture|^attn|^to:|^ship|^sold|^gst|^co\.?(reg|no)|^\(?(co|company|roc)\.?no"
    r"|^(description|items?|qty|quantity|amount|price|total)$",
    re.IGNORECASE,
)
# Matched on a row's text with its spaces: "CASH RM 5.00", "Amount Tendered: 50.00", "CHANGE DUE 10.00".
TENDERED_LABEL = re.compile(r"(cash|(amount\s*)?tendered|(amount\s*)?paid)\b", re.IGNORECASE)
CHANGE_LABEL = re.compile(r"(cash\s*)?change(\s*due)?\b", re.IGNORECASE)
PAYMENT_ROW = re.compile(r"cash|change|tender|paid|rounding|card|visa|master", re.IGNORECASE)
ROUNDING = re.compile(r"rounding|roundingadj|round(ed)?adj", re.IGNORECASE)
CUSTOMER_LABEL = re.compile(
    r"(bill(ed)?to|invoiceto|soldto|shipto|deliverto|to:|customer:?$|attn|bestelltvon|empfänger"
    r"|rechnungsadresse|lieferadresse|factuuradres|afleveradres|facturéà|adressedefacturation)",
    re.IGNORECASE,
)
SENDER_LINE = re.compile(r"(?P<name>.{3,60}?)\s+[-–|·]\s+.*?\d.*?\s+[-–|·]\s+.*\d{4,5}")
# Title words: a line made of these alone ("PAYMENT RECEIPT", "Kopie factuur") names no company.
TITLE_WORDS = re.compile(
    r"\b(tax|payment|retail|copy|kopie|original|duplicate|pro-?forma|simplified|official|cash)\b"
    r"|\b(invoices?|receipts?|bills?|factuur|rechnung|facture|fattura|factura|quittung)\b",
    re.IGNORECASE,
)
TITLE = re.compile(r"^(simplified)?(tax)?(invoice|receipt)$|^cashbill$|^officialreceipt$", re.IGNORECASE)
COMPANY = re.compile(
    r"\b(sdn\.?\s*bhd|s/b|bhd|inc\.?|ltd\.?|llc|gmbh|ag|b\.v\.|bv|co\.|corp|limited|enterprise|trading"
    r"|s\.a\.r?\.?l?|s\.a\.|restaurant|hardware|market|mart|store|stationery|services)(?!\w)",
    re.IGNORECASE,
)


def looks_like_invoice(text: str) -> bool:
    amount = AMOUNT.search(text) or WHOLE_AMOUNT.search(text)
    return len(INVOICE_WORDS.findall(text)) >= 2 and amount is not None


def parse_money(text: str) -> Decimal | None:
    """'1,234.56', '1.234,56', '35,24', '1 234,56' -> Decimal; the last separator is the decimal one."""
    text = text.strip().replace(" ", "")
    negative = text.startswith("-")
    digits = text.lstrip("-")
    if not re.fullmatch(r"[\d.,]+[.,]\d{2}", digits):
        return None
    whole, fraction = digits[:-3], digits[-2:]
    whole = re.sub(r"[.,]", "", whole)
    try:
        value = Decimal(f"{whole or '0'}.{fraction}")
    except InvalidOperation:
        return None
    return -value if negative else value


def parse_any_date(text: str) -> tuple[str, bool] | None:
    """ISO date from common printed forms, and whether day and month order was ambiguous."""
    # A time glued to the year, its space lost: "10-03-201823:03:06".
    text = re.sub(r"(?<=[-/.]\d{4})(?=\d{1,2}:\d{2})", " ", text.strip())
    match = re.search(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)", text)
    if match:
        return _iso(int(match[1]), int(match[2]), int(match[3])), False
    # Month first ("August 3, 2014") before day first ("28 Jan 15", "02 Juillet 2015"), so that
    # "July 1 - July 31, 2014" is not read as 1 July 2031.
    month_first = rf"\b({MONTH_WORD})\.?\s*(\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s*(\d{{4}})(?!\d)"
    match = re.search(month_first, text, re.I)
    if match:
        return _iso(int(match[3]), MONTHS[match[1].lower()], int(match[2])), False
    day_first = rf"(?<!\d)(\d{{1,2}})[-/.\s]*({MONTH_WORD})\b\.?[-/.,\s]*(\d{{4}}|\d{{2}})(?!\d)"
    match = re.search(day_first, text, re.I)
    if match:
        return _iso(_year(match[3]), MONTHS[match[2].lower()], int(match[1])), False
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
    match = AMOUNT.search(text)
    if match:
        value = parse_money(match.group())
        return f"{value:.2f}" if value is not None else None
    # Whole amounts are printed without decimals after a currency sign: "Rs 1939", "$ 120".
    whole = WHOLE_AMOUNT.search(text)
    return f"{Decimal(whole[1].replace(',', '')):.2f}" if whole else None


def amounts_in(text: str) -> list[Decimal]:
    return [value for match in AMOUNT.finditer(text) if (value := parse_money(match.group())) is not None]


def accept_number(text: str) -> str | None:
    """The first token after the label that holds a digit (texts keep their spaces here)."""
    text = re.sub(r"^(?:no\.?|number|nr\.?|n°|nº)\s*", "", text.lstrip(":#.°º "), flags=re.IGNORECASE)
    for token in text.lstrip(":#.°º ").split()[:2]:
        token = token.strip(",;:").lstrip("#")
        if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\-/_.]{2,40}", token) and re.search(r"\d", token):
            return token.rstrip(".-/")
    return None


def accept_date(text: str) -> str | None:
    parsed = parse_any_date(text)
    return parsed[0] if parsed and parsed[0] else None


def _spaced(line: TextLine) -> str:
    """Line text with single spaces kept: dates and months need word boundaries."""
    return re.sub(r"\s+", " ", line.text).strip()


@dataclass
class GenericHits:
    found: dict[str, Hit | None]
    notes: list[str]  # "field: reason" that sends a field to review
    paid: Decimal | None  # cash tendered − change, when both are printed


def extract_generic(lines: Sequence[TextLine]) -> GenericHits:
    """Raw hits for a non-VAT invoice, notes that should send a field to review, the amount paid."""
    rows = build_rows(lines)
    found: dict[str, Hit | None] = dict.fromkeys(GENERIC_FIELDS)
    notes: list[str] = []
    found["vendor_name"] = _vendor(lines)
    found["invoice_number"] = _first(rows, NUMBER_LABEL, accept_number) or _under_cell_label(lines)
    if found["invoice_number"] is None:
        # Receipts without an invoice number identify themselves by a booking or reference number.
        found["invoice_number"] = _first(rows, REFERENCE_LABEL, accept_number) or _under_cell_label(
            lines, REFERENCE_LABEL
        )
        if found["invoice_number"] is not None:
            notes.append("invoice_number: no invoice number printed; a booking or reference number was taken")
    found["issue_date"] = _date(rows, lines, notes)
    found["total_amount"] = _total(rows, lines, notes)
    found["amount_excl_tax"] = _first(rows, SUBTOTAL_LABEL, accept_amount)
    found["tax_amount"] = _first(rows, TAX_LABEL, accept_amount, exclude=NOT_TAX)
    found["vendor_tax_id"] = _first(rows, TAX_ID_LABEL, accept_number)
    page_text = " ".join(line.text for line in lines)
    for code, pattern in CURRENCIES:
        if pattern.search(page_text):
            first_line = next((line for line in lines if pattern.search(line.text)), lines[0])
            found["currency"] = Hit(code, (first_line,))
            break
    return GenericHits(found, notes, _paid(rows))


def _paid(rows: Sequence[Row]) -> Decimal | None:
    """What the customer paid: the cash tendered less the change given back."""

    def last_amount(label: re.Pattern[str]) -> Decimal | None:
        for row in rows:
            text = " ".join(spaced(line.text) for line in row.lines)
            if label.match(text):
                amounts = amounts_in(text)
                return amounts[-1] if amounts else None
        return None

    tendered, change = last_amount(TENDERED_LABEL), last_amount(CHANGE_LABEL)
    if tendered is None or change is None or change < 0 or change >= tendered:
        return None
    return tendered - change


NOT_TAX = re.compile(r"incl|inkl|exkl|excl|total(?!tax|gst|vat)|summary|%\)?$", re.IGNORECASE)


def _date(rows: Sequence[Row], lines: Sequence[TextLine], notes: list[str]) -> Hit | None:
    hit = None
    for match in find_labels(rows, DATE_LABEL):
        # Due, payment and order dates, named before the label ("Due date") or after it
        # ("Date limite de paiement", "Date of payment").
        if re.search(
            r"due|fällig|verval|échéance|limite|paiement|payment|order|bestel|liefer",
            match.row.text[: match.end + 12],
            re.I,
        ):
            continue
        label_line = match.row.lines[match.line_index]
        for line in (label_line, *match.row.lines[match.line_index + 1 : match.line_index + 3]):
            value = accept_date(_spaced(line))
            if value:
                hit = Hit(value, (line,))
                break
        if hit is None:
            hit = read_match(rows, match, accept_date, None, keep_spaces=True)
        if hit is not None:
            break
    if hit is None:
        ordered = [line for row in rows for line in row.lines]
        dated = [Hit(value, (line,)) for line in ordered if (value := accept_date(_spaced(line)))]
        hit = dated[0] if dated else None
    if hit is not None:
        parsed = parse_any_date(_spaced(hit.lines[0]))
        if parsed and parsed[1]:
            notes.append("issue_date: day and month order is ambiguous")
    return hit


def _total(rows: Sequence[Row], lines: Sequence[TextLine], notes: list[str]) -> Hit | None:
    """The payable total: the lowest total-labelled amount on the page (after subtotals and rounding)."""
    candidates: list[Hit] = []
    summary = next((row for row in rows if SUMMARY.search(row.text)), None)
    for match in find_labels(rows, TOTAL_LABEL):
        if summary is not None and match.row.y0 > summary.y0 and match.row.page == summary.page:
            break  # the tax summary table repeats net amounts under a "Total" label
        context = match.row.text[max(0, match.start - 6) : match.end + 14]
        if NOT_TOTAL.search(context):
            continue
        # A total row with several columns (net, tax, gross) ends with the gross amount.
        on_row = amounts_in(_row_rest(match))
        if len(on_row) > 1:
            line = match.row.lines[-1]
            candidates.append(Hit(f"{max(on_row):.2f}", (line,)))
            continue
        # A number on the label's row that does not read as an amount ("1000" for "10.00") is the
        # total misread: the amount on the next row (often the cash tendered) is not.
        look_below = not re.search(r"\d", _row_rest(match))
        hit = read_match(rows, match, accept_amount, None, look_below=look_below, keep_spaces=True)
        if hit is not None and Decimal(hit.text) > 0:
            candidates.append(hit)
    if candidates:
        best = max(candidates, key=lambda hit: (hit.lines[0].page, hit.lines[0].y0, Decimal(hit.text)))
        return _after_rounding(rows, best)
    # Cash tendered and change are never the total; neither is the rounding.
    amounts = [
        Hit(value, (line,))
        for row in rows
        if not PAYMENT_ROW.search(row.text)
        for line in row.lines
        if (value := accept_amount(normalize(line.text)))
    ]
    if not amounts:
        return None
    notes.append("total_amount: no total label found; the largest amount on the page was taken")
    return max(amounts, key=lambda hit: Decimal(hit.text))


def _after_rounding(rows: Sequence[Row], total: Hit) -> Hit:
    """A rounding row under the total makes the payable amount, when that amount is printed below."""
    line = total.lines[0]
    below = [row for row in rows if row.page == line.page and row.y0 >= line.y1 - 0.3 * line.height][:3]
    rounding = next((row for row in below if ROUNDING.search(row.text)), None)
    if rounding is None:
        return total
    adjustments = amounts_in(" ".join(spaced(item.text) for item in rounding.lines))
    if len(adjustments) != 1:
        return total
    payable = Decimal(total.text) + adjustments[0]
    for row in below:
        if row.y0 <= rounding.y0 or PAYMENT_ROW.search(row.text):
            continue
        for item in row.lines:
            if accept_amount(normalize(item.text)) == f"{payable:.2f}":
                return Hit(f"{payable:.2f}", (item,))
    return total


def _under_cell_label(lines: Sequence[TextLine], cell: re.Pattern[str] | None = None) -> Hit | None:
    """Table headers: a cell that says only "Invoice" / "Factuur" with the number in the cell below."""
    cell = cell or CELL_NUMBER_LABEL
    for label in lines:
        if not cell.fullmatch(normalize(label.text)):
            continue
        below = [
            line
            for line in lines
            if 0 <= line.y0 - label.y1 <= 2.5 * label.height
            and line.x0 < label.x1 + label.height
            and line.x1 > label.x0 - label.height
        ]
        for line in sorted(below, key=lambda item: item.y0):
            value = accept_number(spaced(line.text))
            if value is not None:
                return Hit(value, (line,))
    return None


def _row_rest(match: LabelMatch) -> str:
    """Everything printed after the label on its row, spaces kept (amounts stay apart)."""
    row, index = match.row, match.line_index
    consumed = match.end - row.line_start(index)
    parts = [spaced_tail(row.lines[index].text, consumed)] + [
        spaced(line.text) for line in row.lines[index + 1 :]
    ]
    return " ".join(part for part in parts if part)


def _first(
    rows: Sequence[Row], label: re.Pattern[str], accept, exclude: re.Pattern[str] | None = None
) -> Hit | None:
    for match in find_labels(rows, label):
        if exclude is not None and exclude.search(match.row.text[max(0, match.start - 6) : match.end + 8]):
            continue
        hit = read_match(rows, match, accept, None, keep_spaces=True)
        if hit is not None:
            return hit
    return None


def _unaccented(text: str) -> str:
    """OCR puts accents on capitals ("INVOICÉ"); English titles have none."""
    return "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))


def _name_like(text: str) -> bool:
    """Could be a company name: logos read as a few letters, hand-written names are lower case."""
    text = text.strip()
    letters = len(re.findall(r"[A-Za-z]", text))
    if letters < 5 or text.lower() == text or NOT_VENDOR.search(normalize(text).lstrip("*#-·. ")):
        return False
    if re.match(r"[^:]{1,30}:\s", text):  # a form field ("Guest Name: Sanjay"), not a letterhead
        return False
    return len(re.findall(r"[A-Za-z]", TITLE_WORDS.sub("", text))) >= 3


def _fix_name_confusions(text: str) -> str:
    """OCR confusions that a printed company name makes certain."""
    text = text.replace("·", " ")
    # "WorId": a capital I between small letters is a small l.
    text = re.sub(r"(?<=[a-z])I(?=[a-z])", "l", text)
    # Names never hold "_": inside a word it is a gap, beside a space a low dot ("TA _K" is "TA .K").
    text = re.sub(r"(?<=[A-Za-z])_(?=[A-Za-z])", " ", text)
    # A legal suffix stands apart: "INTERNATIONAL-SDN BHD".
    text = re.sub(r"(?<=[A-Za-z])[-_](?=(?:sdn|bhd|ltd|limited|inc|llc|gmbh)\b)", " ", text, flags=re.I)
    return text.replace("_", ".")


def _sender_line(line: TextLine) -> Hit | None:
    """The small return-address line above a window envelope's address field:
    "QualityHosting AG - Uferweg 40-42 - D-63571 Gelnhausen" names the sender first."""
    match = SENDER_LINE.match(line.text.strip())
    if match is None or not _name_like(match["name"]) or not COMPANY.search(match["name"]):
        return None
    return Hit(match["name"].strip(), (line,))


def _customer_block(lines: Sequence[TextLine]) -> set[TextLine]:
    """Lines addressed to the customer: beside or under a "Bill to" / "To:" / "Empfänger" label."""
    block: set[TextLine] = set()
    for label in lines:
        if not CUSTOMER_LABEL.match(normalize(label.text)):
            continue
        height = max(label.height, 1.0)
        for line in lines:
            beside = vertical_overlap(line, label) >= 0.5 and line.x0 >= label.x1 - height
            under = (
                0 < line.y0 - label.y0 <= 5 * height
                and label.x0 - 2 * height <= line.x0 <= label.x0 + 8 * height
            )
            if line is not label and (beside or under):
                block.add(line)
    return block


def _header(lines: Sequence[TextLine], top: float, bottom: float) -> list[TextLine]:
    """The top of the page where the issuer prints its name, top to bottom.

    Receipts print the shop's header, then the title ("TAX INVOICE"), then the customer:
    once a name stands above the title, names below it are the buyer's.
    """
    upper = sorted(
        (line for line in lines if line.y0 <= top + 0.3 * (bottom - top)), key=lambda line: line.y0
    )
    title = next((line for line in upper if TITLE.match(_unaccented(normalize(line.text)))), None)
    if title is not None:
        above = [line for line in upper if line.y1 <= title.y0 + 0.5 * title.height]
        if any(_name_like(line.text) for line in above):
            return above
    return upper


def _clean_name(text: str) -> str:
    """A vendor name without the company number, title or OCR confusions printed around it."""
    text = re.sub(r"\s*\((?:co\.?\s*no\.?\s*)?[\dA-Z-]*\d[\dA-Z-]*\)\s*$", "", text, flags=re.I)
    # A company number glued to the name, its "(" often read as a letter: "MART S/BS19537-X) PAI".
    text = re.sub(r"\s*[(A-Z]?\d{5,}-[A-Z]\).*$", "", text)
    text = _fix_name_confusions(text)
    # The title printed after the name on one line: "Amazon Web Services Invoice".
    return re.sub(r"\s+(tax\s+)?(invoice|receipt|rechnung|factuur|facture)$", "", text, flags=re.I)


def _vendor(lines: Sequence[TextLine]) -> Hit | None:
    """The issuer's name: the most prominent company-like line near the top of the page."""
    if not lines:
        return None
    top = min(line.y0 for line in lines)
    bottom = max(line.y1 for line in lines)
    upper = _header(lines, top, bottom)
    sender = next((hit for line in upper if (hit := _sender_line(line))), None)
    if sender is not None:
        return sender
    customer = _customer_block(upper)
    upper = [line for line in upper if line not in customer]
    median_height = sorted(line.height for line in upper)[len(upper) // 2] if upper else 1.0

    def score(line: TextLine) -> float:
        text = line.text.strip()
        if not _name_like(text):
            return -1.0
        value = line.height / max(median_height, 1.0)
        value += 1.5 if COMPANY.search(text) else 0.0
        value += 0.5 if text.upper() == text else 0.0
        value -= 0.15 * len(re.findall(r"\d", text))
        value -= 1.5 if text.endswith(",") else 0.0  # an address line continues after a comma
        value -= (line.y0 - top) / max(bottom - top, 1.0) * 3
        return value

    ranked = sorted(upper, key=score, reverse=True)
    if not ranked or score(ranked[0]) < 0:
        return None
    best = ranked[0]
    # OCR splits a wide name into boxes on one baseline ("SAM" "SAM TRADING" "CO"): take the row.
    row = sorted(
        (
            line
            for line in upper
            if line is best
            or (
                vertical_overlap(line, best) >= 0.6
                and not re.search(r"\d", line.text)
                and not NOT_VENDOR.search(normalize(line.text).lstrip("*#-·. "))
            )
        ),
        key=lambda line: line.x0,
    )
    # Only the boxes that continue the name: no wide gap (a heading or a column on the same line).
    start = end = row.index(best)
    while start > 0 and row[start].x0 - row[start - 1].x1 <= 2.5 * best.height:
        start -= 1
    while end < len(row) - 1 and row[end + 1].x0 - row[end].x1 <= 2.5 * best.height:
        end += 1
    parts = row[start : end + 1]
    text = _clean_name(" ".join(line.text.strip() for line in parts))
    # Names printed over two lines ("HOME MASTER HARDWARE &" / "ELECTRICAL").
    below = [
        line
        for line in upper
        # OCR boxes of consecutive lines overlap a little: start below the name's middle.
        if line.y0 > best.y0 + 0.6 * best.height
        and -0.3 * best.height <= line.y0 - best.y1 < 1.5 * best.height
        and abs(line.height - best.height) < 0.4 * best.height
    ]
    below = [line for line in below if not re.search(r"\d", line.text)]
    if text.endswith(("&", "-")) and below:
        nxt = min(below, key=lambda line: line.y0)
        return Hit(f"{text} {nxt.text.strip()}", (*parts, nxt))
    return Hit(text, tuple(parts))
