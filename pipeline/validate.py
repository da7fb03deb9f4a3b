"""Validation stage: apply the rules in ``pipeline.fapiao`` to an extracted result.

``validate_invoice`` records one ``RuleCheck`` per rule it could evaluate, flags the fields a
failing rule involves, and raises fields to OK where independent evidence (sum, 大写, QR code)
confirms them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pipeline.fapiao import (
    CENT,
    FULLY_DIGITAL_DOC_TYPES,
    QR_KIND_DOC_TYPES,
    QrPayload,
    amounts_consistent,
    as_date,
    check_check_code,
    check_invoice_code,
    check_invoice_number,
    check_issue_date,
    check_tax_id,
    check_tax_rate,
    line_tax_consistent,
    parse_amount,
    parse_amount_words,
    parse_qr_payload,
    tax_rate_fraction,
)
from pipeline.model import VAT_DOC_TYPES, DocType, Field, FieldSource, FieldStatus, InvoiceResult, RuleCheck

log = logging.getLogger(__name__)

ORGANISATION_END = re.compile(
    r"(公司|企业|店|厂|中心|局|院|所|部|行|社|会|馆|站|处|室|园|场|校|学|队|户|司|团|台|署|委|办|矿|市|府|诊|基地)[）)]?$"
)
PERSON_NAME = re.compile(r"[\u4e00-\u9fff]{2,4}")

# --------------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------------

AMOUNT_FIELDS = ("amount_excl_tax", "tax_amount", "total_amount")
QR_FIELDS = ("invoice_code", "invoice_number", "issue_date", "check_code", "amount_excl_tax", "total_amount")
TRUSTED_BY_SUM_CONFIDENCE = 0.99
DERIVED_CONFIDENCE = 0.98
NOT_FOUND = "not found on the page"

_OUR_RULES = frozenset(
    {
        "tax_id_checksum",
        "amount_plus_tax_equals_total",
        "words_equal_total",
        "tax_rate_whitelist",
        "line_tax",
        "invoice_code_structure",
        "invoice_number_structure",
        "check_code_structure",
        "issue_date_valid",
        "qr_agrees",
        "name_shape",
        "derived",
        "party_ids_distinct",
    }
)
_FIELD_LABELS = {
    "seller_tax_id": "seller tax ID",
    "buyer_tax_id": "buyer tax ID",
    "amount_excl_tax": "amount",
    "tax_amount": "tax",
    "total_amount": "total",
    "total_amount_words": "amount in words",
}


def china_today() -> date:
    """Today's date in China (UTC+8, no DST): invoices are dated by the issuer's clock."""
    return datetime.now(timezone(timedelta(hours=8))).date()


class _Run:
    """One validation pass over a result: records checks and remembers which fields a rule flagged."""

    def __init__(self, result: InvoiceResult) -> None:
        self.result = result
        self.flagged: set[str] = set()

    def field(self, name: str) -> Field | None:
        found = self.result.fields.get(name)
        if found is None or found.status == FieldStatus.MISSING or found.value in (None, "", []):
            return None
        return found

    def text(self, name: str) -> str | None:
        found = self.field(name)
        return None if found is None else str(found.value).strip()

    def amount(self, name: str) -> Decimal | None:
        found = self.field(name)
        return None if found is None else _to_amount(found.value)

    def check(self, rule: str, passed: bool, fields: Iterable[str], detail: str) -> None:
        self.result.checks.append(RuleCheck(rule, passed, tuple(fields), detail))

    def flag(self, name: str, reason: str) -> None:
        found = self.result.fields.get(name)
        self.flagged.add(name)
        if found is None:
            self.result.warnings.append(reason)
            return
        # A clerk's correction is final: record the failed rule, but don't send it back to review.
        if found.source == FieldSource.REVIEW and found.status == FieldStatus.OK:
            return
        found.flag(reason)

    def trust(self, name: str, confidence: float, floor: bool = True) -> None:
        """Raise a field to OK unless a rule flagged it in this pass."""
        found = self.field(name)
        if found is None or name in self.flagged:
            return
        found.status = FieldStatus.OK
        found.confidence = max(found.confidence, confidence) if floor else confidence


def _to_amount(value: Any) -> Decimal | None:
    if isinstance(value, Decimal):
        return value.quantize(CENT, rounding=ROUND_HALF_UP)
    if isinstance(value, int | float):
        return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)
    text = str(value).strip()
    if text and set(text) <= {"*", "＊"}:
        return Decimal("0.00")  # tax printed as *** on exempt invoices
    return parse_amount(text)


def _item_value(item: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = item.get(key)
        if isinstance(value, dict):  # an item cell serialised as a Field
            value = value.get("value")
        if value not in (None, ""):
            return value
    return None


def _fmt(value: Decimal) -> str:
    return f"{value:.2f}"


def validate_invoice(
    result: InvoiceResult, today: date | None = None, review_below: float = 0.9
) -> InvoiceResult:
    """Apply the rules for the document's type; mutate and return ``result``.

    ``today`` defaults to the date in China; ``review_below`` re-flags OK fields read with less confidence
    than that which no rule confirmed.
    """
    if result.doc_type == DocType.OTHER:
        return result
    today = today or china_today()
    # Re-validation (after a review correction) replaces this stage's checks instead of piling them up.
    result.checks = [c for c in result.checks if c.rule.split(":")[0] not in _OUR_RULES]
    run = _Run(result)
    if result.doc_type in VAT_DOC_TYPES:
        _validate_vat(run, today)
    elif result.doc_type == DocType.GENERIC_INVOICE:
        _check_sum(run, words_trusted=False)
        date_text = run.text("issue_date")
        if date_text is not None:
            ok, message = check_issue_date(date_text, today)
            run.check("issue_date_valid", ok, ("issue_date",), message)
            if not ok:
                run.flag("issue_date", message)
    _flag_weak(run, review_below)
    return result


def _validate_vat(run: _Run, today: date) -> None:
    result = run.result
    payload = parse_qr_payload(result.qr_payload) if result.qr_payload else None
    if result.qr_payload and payload is None:
        log.debug("QR payload is not an invoice payload: %r", result.qr_payload[:80])
    if payload is not None:
        _type_from_qr(run, payload)
        _fill_from_qr(run, payload)
    _derive_total(run)
    words_total, total_suspect = _check_words(run)
    if not _derive_amounts(run, words_total, payload):
        _check_sum(run, words_trusted=words_total is not None, total_suspect=total_suspect)
    _check_structure(run, today)
    _check_rates(run)
    _check_items_sum(run)
    if payload is not None:
        _check_qr(run, payload)
    _check_party_names(run)
    _check_party_ids(run)
    _check_mandatory(run)


def _type_from_qr(run: _Run, payload: QrPayload) -> None:
    """The QR code's type is exact; a title under a seal or misread by OCR is not."""
    expected = QR_KIND_DOC_TYPES.get(payload.kind)
    if expected is None or expected == run.result.doc_type:
        return
    run.result.warnings.append(
        f"document type {expected} taken from the QR code (the printed title read as {run.result.doc_type})"
    )
    run.result.doc_type = expected


def _fill_from_qr(run: _Run, payload: QrPayload) -> None:
    for name in QR_FIELDS:
        value = getattr(payload, name)
        if value is None or run.field(name) is not None:
            continue
        run.result.fields[name] = Field(value, 1.0, FieldStatus.OK, FieldSource.QR, box=None)
        run.check(f"qr_agrees:{name}", True, (name,), f"filled from the QR code: {value}")


def _check_words(run: _Run) -> tuple[Decimal | None, bool]:
    """Compare 大写 with the total.

    Returns ``(total, total_suspect)``: the total when the words confirm it, and whether the words and
    amount + tax agree with each other against the total (then the total is the misread).
    """
    words = run.text("total_amount_words")
    total = run.amount("total_amount")
    if words is None:
        return None, False
    try:
        said = parse_amount_words(words)
    except ValueError as exc:
        reason = f"amount in words {words} could not be read ({exc})"
        run.check("words_equal_total", False, ("total_amount_words", "total_amount"), reason)
        run.flag("total_amount_words", reason)
        return None, False
    if total is None:
        return None, False
    if said == total:
        run.check(
            "words_equal_total", True, ("total_amount_words", "total_amount"), f"{words} = {_fmt(total)}"
        )
        return total, False
    reason = f"amount in words says {_fmt(said)} ({words}), but total is {_fmt(total)}"
    run.check("words_equal_total", False, ("total_amount_words", "total_amount"), reason)
    excl, tax = run.amount("amount_excl_tax"), run.amount("tax_amount")
    suspect = False
    summed = excl + tax if excl is not None and tax is not None else None
    if summed == total:
        run.flag("total_amount_words", reason)  # the sum backs the total: the words are the misread
    elif summed == said:
        suspect = True
        run.flag(
            "total_amount",
            f"total is {_fmt(total)}, but amount + tax and the amount in words say {_fmt(said)}",
        )
    else:
        run.flag("total_amount_words", reason)
        run.flag("total_amount", reason)
    return None, suspect


def _single_rate(run: _Run) -> tuple[str, Decimal] | None:
    """The invoice's one tax rate (from the rates row and the item lines), or None when several or none."""
    texts: list[str] = []
    found = run.field("tax_rates")
    if found is not None:
        values = found.value if isinstance(found.value, list | tuple) else [found.value]
        texts += [t for value in values for t in _RATE_SEPARATORS.split(str(value)) if t]
    texts += [str(rate) for item in run.result.items if (rate := _item_value(item, "tax_rate", "rate"))]
    fractions = {text: tax_rate_fraction(text) for text in texts}
    distinct = {fraction for fraction in fractions.values() if fraction is not None}
    if len(distinct) != 1 or None in fractions.values():
        return None
    text = next(text for text, fraction in fractions.items() if fraction is not None)
    return text, distinct.pop()


def _item_sums(run: _Run) -> tuple[Decimal | None, Decimal | None]:
    """The item lines' amounts and taxes added up, each None unless every line has it."""
    items = run.result.items
    if not items:
        return None, None
    sums: list[Decimal | None] = []
    for keys in (("amount", "amount_excl_tax"), ("tax_amount", "tax")):
        values = [_to_amount(value) for item in items if (value := _item_value(item, *keys)) is not None]
        ok = len(values) == len(items) and None not in values
        sums.append(sum(values, Decimal(0)) if ok else None)  # type: ignore[arg-type]
    return sums[0], sums[1]


def _derive_amounts(run: _Run, words_total: Decimal | None, payload: QrPayload | None = None) -> bool:
    """Fill a missing amount or tax (or both) by arithmetic: excl + tax = total.

    The total is the one the words confirm, else the one read. A missing one of the two comes from
    the total less the other; both missing, from the item lines that add up to the total, or from
    the invoice's single tax rate when one split of the total fits it. The derived values are
    accepted only when two independent readings confirm them: the amount in words (with the other
    amount read cleanly), the tax rate (tax = amount × rate), the item lines' sums, the QR code's
    amount. Returns True when it derived one: the sum then holds by construction and proves nothing.
    """
    total = words_total if words_total is not None else run.amount("total_amount")
    total_field = run.field("total_amount")
    if total is None or total_field is None:
        return False
    total_weak = words_total is None and total_field.status != FieldStatus.OK
    excl, tax = run.amount("amount_excl_tax"), run.amount("tax_amount")
    if excl is not None and tax is not None:
        return False
    rate = _single_rate(run)
    item_amounts, item_taxes = _item_sums(run)
    derived_from = ""
    if excl is None and tax is None:
        if item_amounts is not None and item_taxes is not None and item_amounts + item_taxes == total:
            excl, tax, derived_from = item_amounts, item_taxes, "items"
        elif rate is not None:
            fits = [
                candidate
                for step in range(-3, 4)
                if (candidate := (total / (1 + rate[1])).quantize(CENT, rounding=ROUND_HALF_UP) + step * CENT)
                >= 0
                and candidate + (candidate * rate[1]).quantize(CENT, rounding=ROUND_HALF_UP) == total
            ]
            if len(fits) != 1:
                return False
            excl, tax, derived_from = fits[0], total - fits[0], "rate"
        else:
            return False
        missing = ("amount_excl_tax", "tax_amount")
        present_field = None
    elif excl is None:
        assert tax is not None
        excl, missing, present_field = total - tax, ("amount_excl_tax",), run.field("tax_amount")
    else:
        tax, missing, present_field = total - excl, ("tax_amount",), run.field("amount_excl_tax")
    assert excl is not None and tax is not None

    confirmations: list[str] = []
    contradictions: list[str] = []
    if words_total is not None:
        confirmations.append(f"the amount in words says {_fmt(total)}")
    if rate is not None and derived_from != "rate":
        expected = (excl * rate[1]).quantize(CENT, rounding=ROUND_HALF_UP)
        n_lines = max(len(run.result.items), 1)
        if abs(expected - tax) <= CENT * n_lines:
            confirmations.append(f"{_fmt(excl)} × {rate[0]} ≈ {_fmt(tax)}")
        else:
            contradictions.append(f"{_fmt(excl)} × {rate[0]} = {_fmt(expected)}, not {_fmt(tax)}")
    if derived_from != "items":
        if item_amounts is not None and "amount_excl_tax" in missing:
            (confirmations if item_amounts == excl else contradictions).append(
                f"the item amounts add up to {_fmt(item_amounts)}"
            )
        if item_taxes is not None and "tax_amount" in missing:
            (confirmations if item_taxes == tax else contradictions).append(
                f"the item taxes add up to {_fmt(item_taxes)}"
            )
    else:
        confirmations.append("the item lines add up to the total")
    qr_amount = _to_amount(payload.amount_excl_tax) if payload and payload.amount_excl_tax else None
    excl_from_qr = present_field is not None and present_field.source == FieldSource.QR
    if qr_amount is not None and "amount_excl_tax" in missing and not excl_from_qr:
        (confirmations if qr_amount == excl else contradictions).append(f"the QR code says {_fmt(qr_amount)}")

    present_ok = present_field is None or present_field.status == FieldStatus.OK
    by_words = words_total is not None and present_field is not None and present_ok
    accepted = not contradictions and (by_words or len(confirmations) >= 2) and present_ok
    if total_weak and len(confirmations) < 2:
        accepted = False
        contradictions.append("the total it comes from needs review")
    if excl < 0 <= total or tax < 0 <= total:
        accepted = False
        contradictions.append("a derived amount is negative")
    how = {"items": "the item lines", "rate": f"the total and the rate {rate[0] if rate else ''}"}.get(
        derived_from, "the total less the other amount"
    )
    for name in missing:
        value = excl if name == "amount_excl_tax" else tax
        field = Field(_fmt(value), DERIVED_CONFIDENCE, FieldStatus.OK, FieldSource.DERIVED, box=None)
        if not accepted:
            if present_field is not None and not present_ok:
                other = "tax" if name == "amount_excl_tax" else "amount"
                field.flag(f"derived from {how}, and the {other} it comes from needs review")
            elif contradictions:
                field.flag(f"derived from {how}, but {'; '.join(contradictions)}")
            else:
                field.flag(f"derived from {how}; nothing else on the page confirms it")
            run.flagged.add(name)
        run.result.fields[name] = field
        detail = f"{_fmt(value)} from {how}" + (f"; {'; '.join(confirmations)}" if confirmations else "")
        run.check(f"derived:{name}", True, ("total_amount", *AMOUNT_FIELDS[:2]), detail)
    if accepted and present_field is not None and len(confirmations) >= 2:
        other_name = "tax_amount" if missing == ("amount_excl_tax",) else "amount_excl_tax"
        run.trust(other_name, TRUSTED_BY_SUM_CONFIDENCE)
    return True


def _derive_total(run: _Run) -> None:
    """A missing total can come from the words when amount + tax says the same."""
    if run.field("total_amount") is not None:
        return
    words, excl, tax = run.text("total_amount_words"), run.amount("amount_excl_tax"), run.amount("tax_amount")
    if words is None or excl is None or tax is None:
        return
    try:
        said = parse_amount_words(words)
    except ValueError:
        return
    if said != excl + tax:
        return
    run.result.fields["total_amount"] = Field(
        _fmt(said), DERIVED_CONFIDENCE, FieldStatus.OK, FieldSource.DERIVED
    )
    run.check(
        "derived:total_amount",
        True,
        ("total_amount_words", *AMOUNT_FIELDS),
        f"amount in words {words} = amount {_fmt(excl)} + tax {_fmt(tax)}",
    )


def _check_sum(run: _Run, words_trusted: bool, total_suspect: bool = False) -> None:
    excl, tax, total = (run.amount(n) for n in AMOUNT_FIELDS)
    if excl is None or tax is None or total is None:
        return
    if amounts_consistent(excl, tax, total):
        run.check(
            "amount_plus_tax_equals_total", True, AMOUNT_FIELDS, f"{_fmt(excl)} + {_fmt(tax)} = {_fmt(total)}"
        )
        if words_trusted:
            for name in (*AMOUNT_FIELDS, "total_amount_words"):
                run.trust(name, TRUSTED_BY_SUM_CONFIDENCE)
        return
    reason = f"amount {_fmt(excl)} + tax {_fmt(tax)} = {_fmt(excl + tax)}, but total is {_fmt(total)}"
    run.check("amount_plus_tax_equals_total", False, AMOUNT_FIELDS, reason)
    if words_trusted:
        reason += " (the amount in words agrees with the total)"
        involved: tuple[str, ...] = ("amount_excl_tax", "tax_amount")
    elif total_suspect:
        involved = ("total_amount",)
    else:
        involved = AMOUNT_FIELDS
    for name in involved:
        run.flag(name, reason)


def _check_structure(run: _Run, today: date) -> None:
    result = run.result
    for name in ("seller_tax_id", "buyer_tax_id"):
        value = run.text(name)
        if value is None:
            continue
        ok, message = check_tax_id(value)
        run.check(f"tax_id_checksum:{name}", ok, (name,), message)
        if not ok:
            run.flag(name, f"{_FIELD_LABELS[name]} {value}: {message}")

    code = run.text("invoice_code")
    if code is not None:
        if result.doc_type in FULLY_DIGITAL_DOC_TYPES:
            ok, message = False, f"fully-digital invoices have no invoice code, but {code} was read"
        else:
            ok, message = check_invoice_code(code)
        run.check("invoice_code_structure", ok, ("invoice_code",), message)
        if not ok:
            run.flag("invoice_code", message)

    number = run.text("invoice_number")
    if number is not None:
        ok, message = check_invoice_number(number, result.doc_type)
        run.check("invoice_number_structure", ok, ("invoice_number",), message)
        if not ok:
            run.flag("invoice_number", message)

    check_code = run.text("check_code")
    if check_code is not None:
        ok, message = check_check_code(check_code, code)
        run.check("check_code_structure", ok, ("check_code",), message)
        if not ok:
            run.flag("check_code", message)

    issue = run.text("issue_date")
    if issue is not None:
        ok, message = check_issue_date(issue, today, code, number)
        involved = ("issue_date", "invoice_code") if code else ("issue_date",)
        run.check("issue_date_valid", ok, involved, message)
        if not ok:
            run.flag("issue_date", message)


_RATE_SEPARATORS = re.compile(r"[,，、;；/\s]+")


def _check_rates(run: _Run) -> None:
    """Tax rates: the document-level ``tax_rates`` field (["13%", "6%"]) and the lines in ``result.items``.

    Items are read from the keys ``tax_rate`` (or ``rate``), ``amount`` and ``tax_amount`` (or ``tax``).
    """
    issue = as_date(run.text("issue_date"))
    rated: list[tuple[str, str, str]] = []  # (where, rate text, field to flag)
    for name in ("tax_rates", "tax_rate"):
        found = run.field(name)
        if found is None:
            continue
        # extract stores tax_rates as a list of labels; accept "13%,6%" text as well.
        values = found.value if isinstance(found.value, list | tuple) else [found.value]
        for value in values:
            for rate_text in _RATE_SEPARATORS.split(str(value)):
                if rate_text:
                    rated.append(("tax rate", rate_text, name))
    tax_problems: list[str] = []
    lines_seen = 0
    for i, item in enumerate(run.result.items, start=1):
        rate_text = _item_value(item, "tax_rate", "rate")
        if rate_text is None:
            continue
        rated.append((f"line {i}", str(rate_text), "tax_amount"))
        amount = _item_value(item, "amount", "amount_excl_tax")
        tax = _item_value(item, "tax_amount", "tax")
        fraction = tax_rate_fraction(str(rate_text))
        amount_value = None if amount is None else _to_amount(amount)
        tax_value = None if tax is None else _to_amount(tax)
        if fraction is None or amount_value is None or tax_value is None:
            continue
        lines_seen += 1
        if not line_tax_consistent(amount_value, fraction, tax_value):
            expected = (amount_value * fraction).quantize(CENT, rounding=ROUND_HALF_UP)
            product = f"{_fmt(amount_value)} × {rate_text} = {_fmt(expected)}"
            tax_problems.append(f"line {i}: {product}, but tax is {_fmt(tax_value)}")
    if rated:
        problems: list[tuple[str, str]] = []
        for where, rate_text, name in rated:
            ok, message = check_tax_rate(rate_text, issue)
            if not ok:
                problems.append((name, f"{where}: {message}"))
        involved = tuple(dict.fromkeys(name for _, _, name in rated))
        detail = "; ".join(p for _, p in problems) or f"{len(rated)} rate(s) valid"
        run.check("tax_rate_whitelist", not problems, involved, detail)
        for name, problem in problems:
            run.flag(name, problem)
    if lines_seen:
        detail = "; ".join(tax_problems) or f"{lines_seen} line(s) consistent"
        run.check("line_tax", not tax_problems, ("tax_amount",), detail)
        for problem in tax_problems:
            run.flag("tax_amount", problem)


def _check_items_sum(run: _Run) -> None:
    """The item lines' amounts add up to the amount excl. tax (and their taxes to the tax).

    A line the table reader missed or misread shows here; the totals themselves are checked by
    their own arithmetic, so a mismatch is a warning on the items, not a flag on a total.
    """
    items = run.result.items
    if not items:
        return
    for key, keys, total_name in (
        ("amounts", ("amount", "amount_excl_tax"), "amount_excl_tax"),
        ("taxes", ("tax_amount", "tax"), "tax_amount"),
    ):
        total = run.amount(total_name)
        values = [_to_amount(value) for item in items if (value := _item_value(item, *keys)) is not None]
        if total is None or len(values) != len(items) or None in values:
            continue
        added = sum(values, Decimal(0))  # type: ignore[arg-type]
        ok = added == total
        detail = f"item {key} add up to {_fmt(added)}; {total_name} is {_fmt(total)}"
        run.check(f"items_add_up:{key}", ok, (), detail)
        if not ok:
            run.result.warnings.append(f"{detail}: check the item lines")


def _qr_equal(name: str, ours: str, theirs: str) -> bool:
    if name in ("amount_excl_tax", "total_amount"):
        return _to_amount(ours) == _to_amount(theirs)
    return ours.upper() == theirs.upper()


def _check_qr(run: _Run, payload: QrPayload) -> None:
    expected = QR_KIND_DOC_TYPES.get(payload.kind)
    if expected is not None:
        ok = expected == run.result.doc_type
        detail = f"QR type {payload.kind} means {expected}; document classified as {run.result.doc_type}"
        run.check("qr_agrees:doc_type", ok, (), detail)
        if not ok:
            run.result.warnings.append(detail)
    for name in QR_FIELDS:
        theirs = getattr(payload, name)
        found = run.field(name)
        if theirs is None or found is None or found.source == FieldSource.QR:
            continue
        ours = str(found.value).strip()
        if _qr_equal(name, ours, theirs):
            run.check(f"qr_agrees:{name}", True, (name,), f"QR code agrees: {theirs}")
            run.trust(name, 1.0, floor=False)
        else:
            reason = f"QR code says {theirs}"
            run.check(f"qr_agrees:{name}", False, (name,), f"{reason}, page says {ours}")
            run.flag(name, reason)


def _mandatory_fields(doc_type: DocType) -> tuple[str, ...]:
    names = ["invoice_number", "issue_date", "total_amount", "seller_name"]
    if doc_type not in FULLY_DIGITAL_DOC_TYPES:
        names.append("invoice_code")
    if doc_type in (DocType.VAT_E_INVOICE_GENERAL, DocType.VAT_GENERAL_PAPER):
        names.append("check_code")
    return tuple(names)


def _check_party_names(run: _Run) -> None:
    """No rule can confirm a name, but a cut-off one is visible: organisations end with a kind word.

    Only OCR'd names are checked (a text layer is exact); short names of 2-4 characters are
    people and pass.
    """
    for name in ("buyer_name", "seller_name"):
        found = run.field(name)
        if found is None or found.source != FieldSource.OCR:
            continue
        text = str(found.value)
        ok = bool(ORGANISATION_END.search(text) or PERSON_NAME.fullmatch(text))
        run.check(f"name_shape:{name}", ok, (name,), text)
        if not ok:
            run.flag(name, f"name '{text}' does not end like an organisation name: it may be cut off")


def _check_party_ids(run: _Run) -> None:
    """Buyer and seller are two parties: one ID read for both means one of them was taken from the
    other's block (a private buyer's empty ID cell, a shifted print), so neither is accepted."""
    buyer, seller = run.text("buyer_tax_id"), run.text("seller_tax_id")
    if buyer is None or seller is None:
        return
    ok = buyer.upper() != seller.upper()
    run.check("party_ids_distinct", ok, ("buyer_tax_id", "seller_tax_id"), f"buyer {buyer}, seller {seller}")
    if not ok:
        reason = f"buyer and seller have the same taxpayer ID {buyer}: one was read from the other's block"
        run.flag("buyer_tax_id", reason)
        run.flag("seller_tax_id", reason)


def _page_source(result: InvoiceResult) -> FieldSource:
    """Where a value was looked for: the text layer when every page had one, else OCR."""
    pages = result.pages
    if pages and all(page.text_source == "text_layer" for page in pages):
        return FieldSource.TEXT_LAYER
    return FieldSource.OCR


def _check_mandatory(run: _Run) -> None:
    for name in _mandatory_fields(run.result.doc_type):
        if run.field(name) is not None:
            continue
        found = run.result.fields.get(name)
        if found is None:
            run.result.fields[name] = Field.missing(NOT_FOUND, _page_source(run.result))
        else:
            found.flag(NOT_FOUND)


def _flag_weak(run: _Run, review_below: float) -> None:
    """Catch OK fields read with low confidence that no rule confirmed (keeps the contract with extract)."""
    for name, found in run.result.fields.items():
        if (
            found.status == FieldStatus.OK
            and found.source in (FieldSource.OCR, FieldSource.TEXT_LAYER)
            and found.confidence < review_below
        ):
            found.flag(f"read with low confidence ({found.confidence:.2f})")
            log.debug("field %s OK but below %.2f", name, review_below)
