"""Rules of the validation stage, each with valid and invalid values, and ``validate_invoice`` behaviour."""

from __future__ import annotations

import copy
import json
import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from pipeline.fapiao import (
    TAX_RATES,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    QrPayload,
    amounts_consistent,
    check_check_code,
    check_invoice_code,
    check_invoice_number,
    check_issue_date,
    check_tax_id,
    check_tax_rate,
    code_year,
    fix_digits,
    fix_tax_id,
    format_amount_words,
    line_tax_consistent,
    parse_amount,
    parse_amount_words,
    parse_qr_payload,
    region_of_code,
    tax_rate_fraction,
    uscc_check_char,
)
from pipeline.model import DocType, DocumentStatus, Field, FieldSource, FieldStatus, InvoiceResult, PageInfo
from pipeline.validate import NOT_FOUND, validate_invoice
from tests.conftest import EVAL_DIR

EVAL_CN = EVAL_DIR / "cn"
TODAY = date(2026, 11, 27)

# Label doc types (eval set) -> ours; the Shenzhen blockchain e-invoice has no DocType of its own.
LABEL_DOC_TYPES = {
    "vat_e_invoice_general": DocType.VAT_E_INVOICE_GENERAL,
    "fully_digital_invoice_general": DocType.FULLY_DIGITAL_GENERAL,
    "fully_digital_invoice_special": DocType.FULLY_DIGITAL_SPECIAL,
    "vat_special_paper": DocType.VAT_SPECIAL_PAPER,
    "vat_general_paper": DocType.VAT_GENERAL_PAPER,
    "shenzhen_blockchain_e_invoice": DocType.VAT_E_INVOICE_GENERAL,
}


def eval_labels() -> list[dict[str, Any]]:
    if not EVAL_CN.is_dir():
        pytest.skip("eval set not available")
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(EVAL_CN.glob("cn_*.json"))]


# ---------------------------------------------------------------------------------------------- tax IDs


def test_uscc_weights_match_the_standard() -> None:
    assert USCC_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    assert len(USCC_ALPHABET) == 31
    assert not set("IOSVZ") & set(USCC_ALPHABET)


@pytest.mark.parametrize("code", ["911201163409833307", "91440101MA59RNUF8X", "12100000466006826U"])
def test_uscc_check_char_of_real_codes(code: str) -> None:
    assert uscc_check_char(code[:17]) == code[17]


@pytest.mark.parametrize("first17", ["9112011634098333", "91120116340983330O", "9112011634098333I"])
def test_uscc_check_char_rejects_bad_input(first17: str) -> None:
    with pytest.raises(ValueError):
        uscc_check_char(first17)


@pytest.mark.parametrize(
    "value",
    [
        "911201163409833307",
        "91440300708436854B",
        "410305123456789",
        "51019800DK01187",
        "41030519800101123401",
    ],
)
def test_check_tax_id_valid(value: str) -> None:
    ok, message = check_tax_id(value)
    assert ok, message


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("911201163409833308", "check character is 8 but the first 17 characters require 7"),
        ("91120116340983330O", "never uses"),
        ("9112011634098333", "has 16 characters"),
        # A credit code with a character lost (read from a harsh photo): not an old 17-character ID.
        ("91520000MA6DKWM90", "has 17 characters"),
        ("51019800dk01187", "capital letters"),
        ("", "empty"),
    ],
)
def test_check_tax_id_invalid(value: str, why: str) -> None:
    ok, message = check_tax_id(value)
    assert not ok
    assert why in message


# ------------------------------------------------------------------------------------ OCR confusions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("O12OO18OO111", "012001800111"),
        ("0972 1126 0990 0767 6378", "09721126099007676378"),
        ("４１５３９５３０", "41539530"),
        ("4I5395B0", "41539580"),
        ("l|iZzSsG", "11122556"),
        ("D0Q", "000"),
    ],
)
def test_fix_digits_repairs(text: str, expected: str) -> None:
    assert fix_digits(text) == expected


@pytest.mark.parametrize("text", ["41A39530", "", "  ", "12-34", "1.5"])
def test_fix_digits_gives_up(text: str) -> None:
    assert fix_digits(text) is None


def test_fix_tax_id_maps_letters_a_credit_code_never_uses() -> None:
    value, note = fix_tax_id("9144O3OO7O8436854b")
    assert value == "91440300708436854B"
    assert note is not None and "O→0" in note


def test_fix_tax_id_normalises_without_note() -> None:
    assert fix_tax_id("91 4403 0070 8436 854b") == ("91440300708436854B", None)


def test_fix_tax_id_lower_case_l_is_one() -> None:
    value, note = fix_tax_id("91l201163409833307")
    assert value == "911201163409833307"
    assert note == "read l→1"


@pytest.mark.parametrize(
    ("misread", "position"),
    [("9144D300708436854B", "position 5 D→0"), ("9144030070B436854B", "position 11 B→8")],
)
def test_fix_tax_id_repairs_a_single_unambiguous_confusion(misread: str, position: str) -> None:
    value, note = fix_tax_id(misread)
    assert value == "91440300708436854B"
    assert note is not None and position in note


@pytest.mark.parametrize("misread", ["9L440300708436854B", "9144030Q708436854B"])
def test_fix_tax_id_leaves_ambiguous_repairs_alone(misread: str) -> None:
    # More than one single substitution makes the checksum valid: guessing would invent an ID.
    assert fix_tax_id(misread) == (misread, None)


def test_fix_tax_id_leaves_v_and_old_ids_alone() -> None:
    assert fix_tax_id("9112011634098333V7") == ("9112011634098333V7", None)
    assert fix_tax_id("51019800DK01187") == ("51019800DK01187", None)


def test_fix_tax_id_keeps_a_valid_code() -> None:
    assert fix_tax_id("911201163409833307") == ("911201163409833307", None)


# ------------------------------------------------------------------------------------ amount in words


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("600.20", "陆佰元零贰角"),
        ("7018.83", "柒仟零壹拾捌元捌角叁分"),
        ("1500.00", "壹仟伍佰元整"),
        ("10.00", "壹拾元整"),
        ("0.50", "伍角"),
        ("100000.00", "壹拾万元整"),
        ("1010.05", "壹仟零壹拾元零伍分"),
        ("0.05", "伍分"),
        ("0.00", "零元整"),
        ("64.05", "陆拾肆元零伍分"),
        ("105000.00", "壹拾万伍仟元整"),
        ("100500.00", "壹拾万零伍佰元整"),
        ("10000001.00", "壹仟万零壹元整"),
        ("100000000.00", "壹亿元整"),
        ("-12.50", "负壹拾贰元伍角"),
    ],
)
def test_format_amount_words(amount: str, words: str) -> None:
    assert format_amount_words(Decimal(amount)) == words
    assert parse_amount_words(words) == Decimal(amount)


@pytest.mark.parametrize(
    ("words", "amount"),
    [
        ("陆佰圆零贰角", "600.20"),
        ("壹仟伍佰圆正", "1500.00"),
        ("⊗壹仟伍佰圆整", "1500.00"),
        ("ⓧ 柒仟零壹拾捌圆捌角叁分", "7018.83"),
        ("￥壹拾元整", "10.00"),
        ("拾元整", "10.00"),
        ("拾伍万元整", "150000.00"),
        ("壹佰壹拾贰圆贰角整", "112.20"),  # 整 after 角 (cn_045)
        ("叁拾圆肆角贰分", "30.42"),  # no 零 after a 0 in the 元 place (cn_036)
        ("陆佰元", "600.00"),
        ("（负数）壹佰元整", "-100.00"),
        ("壹 佰 元 整", "100.00"),
    ],
)
def test_parse_amount_words_variants(words: str, amount: str) -> None:
    assert parse_amount_words(words) == Decimal(amount)


@pytest.mark.parametrize(
    "words",
    [
        "",
        "⊗",
        "陆佰",  # no 元: cannot tell yuan from a cut-off line
        "壹贰元整",  # two digits in a row
        "壹佰伍元整",  # 105 or 150?
        "佰元整",  # unit without digit
        "壹拾壹佰元整",  # units out of order
        "两元整",
        "元整",
        "壹元伍",  # digit without 角/分
        "壹元伍分角",
        "壹佰元整abc",
        "600.20",
    ],
)
def test_parse_amount_words_rejects(words: str) -> None:
    with pytest.raises(ValueError):
        parse_amount_words(words)


def test_amount_words_round_trip() -> None:
    rng = random.Random(20240501)
    for _ in range(2000):
        amount = Decimal(rng.randint(1, 9_999_999_999)) / 100
        words = format_amount_words(amount)
        assert parse_amount_words(words) == amount, words
        assert parse_amount_words(words.replace("元", "圆")) == amount, words


def test_eval_labels_words_equal_total() -> None:
    pairs = [
        (d["id"], d["fields"]["total_amount_words"], d["fields"]["total_amount"])
        for d in eval_labels()
        if d["fields"].get("total_amount_words") and d["fields"].get("total_amount")
    ]
    assert len(pairs) >= 40
    for doc_id, words, total in pairs:
        assert parse_amount_words(words) == Decimal(total), doc_id


# ------------------------------------------------------------------------------------------ amounts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("582.72", "582.72"),
        ("¥1,234.50", "1234.50"),
        ("￥１２３．４", "123.40"),
        ("1 234.56", "1234.56"),
        ("-18.37", "-18.37"),
        ("¥-18.37", "-18.37"),
        ("－１８．３７", "-18.37"),
        ("759", "759.00"),
        ("18,37", "18.37"),
        ("1.005", "1.01"),
        ("12,345,678.90", "12345678.90"),
    ],
)
def test_parse_amount(text: str, expected: str) -> None:
    assert parse_amount(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "***", "abc", "1,23,4", "12.3.4", "--5", "1e5"])
def test_parse_amount_rejects(text: str) -> None:
    assert parse_amount(text) is None


def test_amounts_consistent() -> None:
    assert amounts_consistent(Decimal("582.72"), Decimal("17.48"), Decimal("600.20"))
    assert amounts_consistent(Decimal("30.42"), Decimal("0"), Decimal("30.42"))
    assert not amounts_consistent(Decimal("582.72"), Decimal("17.48"), Decimal("600.21"))
    assert not amounts_consistent(Decimal("18.3"), Decimal("1.10"), Decimal("19.47"))


# --------------------------------------------------------------------------------------- tax rates


@pytest.mark.parametrize(
    "rate", ["13%", "9%", "6%", "5%", "3%", "1%", "0%", "免税", "不征税", "13 ％", "0.13", "13"]
)
def test_check_tax_rate_valid(rate: str) -> None:
    ok, message = check_tax_rate(rate, date(2023, 2, 28))
    assert ok, message


@pytest.mark.parametrize("rate", ["17%", "16%", "11%", "10%"])
def test_old_rates_only_before_may_2019(rate: str) -> None:
    assert check_tax_rate(rate, date(2019, 3, 19))[0]
    assert check_tax_rate(rate, "2018-01-01")[0]
    ok, message = check_tax_rate(rate, date(2019, 5, 1))
    assert not ok and "no longer" in message
    assert not check_tax_rate(rate, None)[0]


@pytest.mark.parametrize("rate", ["14%", "12%", "abc", "", "***"])
def test_check_tax_rate_invalid(rate: str) -> None:
    assert not check_tax_rate(rate, date(2023, 2, 28))[0]


def test_tax_rate_whitelist_contents() -> None:
    assert {"13%", "9%", "6%", "免税", "不征税"} <= TAX_RATES
    assert "17%" not in TAX_RATES


def test_tax_rate_fraction() -> None:
    assert tax_rate_fraction("13%") == Decimal("0.13")
    assert tax_rate_fraction("免税") == 0
    assert tax_rate_fraction("x") is None


def test_line_tax_consistent() -> None:
    assert line_tax_consistent(Decimal("582.72"), Decimal("0.03"), Decimal("17.48"))
    assert line_tax_consistent(Decimal("5999.00"), Decimal("0.17"), Decimal("1019.83"))
    assert line_tax_consistent(Decimal("100.00"), Decimal("0.13"), Decimal("13.01"))  # one fen of rounding
    assert not line_tax_consistent(Decimal("100.00"), Decimal("0.13"), Decimal("13.02"))
    assert not line_tax_consistent(Decimal("582.72"), Decimal("0.03"), Decimal("17.4"))


# ------------------------------------------------------------------------------ code, number, dates


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("012001800111", "天津"),
        ("011001600111", "北京"),
        ("1100094140", "北京"),
        ("5100191160", "四川"),
        ("044031800104", "深圳"),
        ("144032409110", "深圳"),  # Shenzhen blockchain e-invoice
        ("037021800104", "青岛"),
        ("021021800104", "大连"),
        ("033021800104", "宁波"),
        ("035021800104", "厦门"),
        ("065001800111", "新疆"),
    ],
)
def test_check_invoice_code_valid(code: str, region: str) -> None:
    ok, message = check_invoice_code(code)
    assert ok, message
    assert region_of_code(code) == region
    assert region in message


@pytest.mark.parametrize(
    ("code", "why"),
    [
        ("212001800111", "start with 0"),
        ("01200180011", "11 digits"),
        ("0120018001A1", "digits only"),
        ("099001800111", "unknown region"),
        ("", "digits only"),
    ],
)
def test_check_invoice_code_invalid(code: str, why: str) -> None:
    ok, message = check_invoice_code(code)
    assert not ok
    assert why in message


def test_region_and_year_helpers() -> None:
    assert region_of_code("1100094140") == "北京"
    assert region_of_code("044011800104") == "广东"  # city not planned separately: the province
    assert region_of_code("12345") is None
    assert code_year("012001800111") == 2018
    assert code_year("1100094140") == 2009
    assert code_year("1100984140") == 1998
    assert code_year("abc") is None


@pytest.mark.parametrize(
    ("number", "doc_type", "ok"),
    [
        ("41539530", DocType.VAT_E_INVOICE_GENERAL, True),
        ("00472703", DocType.VAT_SPECIAL_PAPER, True),
        ("26342000001798762786", DocType.FULLY_DIGITAL_SPECIAL, True),
        ("25447000001115703415", DocType.FULLY_DIGITAL_GENERAL, True),
        ("4153953", DocType.VAT_E_INVOICE_GENERAL, False),
        ("4153953O", DocType.VAT_GENERAL_PAPER, False),
        ("41539530", DocType.FULLY_DIGITAL_GENERAL, False),
        ("26342000001798762786", DocType.VAT_E_INVOICE_GENERAL, False),
        ("26992000001798762786", DocType.FULLY_DIGITAL_GENERAL, False),  # 99 is no province
        ("INV-001", DocType.GENERIC_INVOICE, True),  # no structure rule outside VAT
    ],
)
def test_check_invoice_number(number: str, doc_type: DocType, ok: bool) -> None:
    assert check_invoice_number(number, doc_type)[0] is ok


def test_check_check_code() -> None:
    assert check_check_code("09721126099007676378")[0]
    assert not check_check_code("0972112609900767637")[0]
    assert not check_check_code("0972112609900767637X")[0]
    assert check_check_code("e9052", "144032409110")[0]
    assert not check_check_code("e9052")[0]
    assert not check_check_code("e9052", "012001800111")[0]


def test_check_issue_date() -> None:
    assert check_issue_date("2018-09-21", TODAY, "012001800111")[0]
    assert check_issue_date("2026-11-27", TODAY, None)[0]
    ok, message = check_issue_date("2026-11-28", TODAY, None)
    assert not ok and "future" in message
    assert not check_issue_date("2023-02-30", TODAY, None)[0]
    assert not check_issue_date("2023/02/28", TODAY, None)[0]
    assert not check_issue_date("1990-01-01", TODAY, None)[0]
    ok, message = check_issue_date("2022-12-01", TODAY, "012002300311")
    assert not ok and "2023" in message
    assert not check_issue_date("2008-12-31", TODAY, "1100094140")[0]
    assert check_issue_date("2009-01-01", TODAY, "1100094140")[0]
    assert not check_issue_date("2025-12-31", TODAY, None, "26342000001798762786")[0]
    assert check_issue_date("2026-06-10", TODAY, None, "26342000001798762786")[0]


# ------------------------------------------------------------------------------------------ QR text


def test_parse_qr_payload_e_invoice() -> None:
    text = "01,10,012001800111,41539530,582.72,20180921,09721126099007676378,276D,"
    assert parse_qr_payload(text) == QrPayload(
        kind="10",
        invoice_code="012001800111",
        invoice_number="41539530",
        amount_excl_tax="582.72",
        issue_date="2018-09-21",
        check_code="09721126099007676378",
    )


def test_parse_qr_payload_special_paper_has_no_check_code() -> None:
    payload = parse_qr_payload("01,01,5100191160,00472703,1456.31,20190614,,E6B0,")
    assert payload is not None
    assert payload.check_code is None
    assert payload.amount_excl_tax == "1456.31"


def test_parse_qr_payload_fully_digital_amount_is_the_total() -> None:
    payload = parse_qr_payload("01,31,,26342000001798762786,268.00,20260610,,3AB4")
    assert payload is not None
    assert payload.invoice_code is None
    assert payload.total_amount == "268.00"
    assert payload.amount_excl_tax is None


def test_parse_qr_payload_tolerates_short_and_sloppy_text() -> None:
    payload = parse_qr_payload(" 01,10,051002100211,04868861,759,20220825 ")
    assert payload is not None
    assert payload.amount_excl_tax == "759.00"
    assert payload.check_code is None
    short = parse_qr_payload("01,10,012001800111,41539530")
    assert short is not None
    assert short.amount_excl_tax is None and short.issue_date is None


def test_parse_qr_payload_shenzhen_blockchain_url() -> None:
    url = (
        "https://bcfp.shenzhen.chinatax.gov.cn/verify/scan?hash=018f2d86b7848416eaf7308e503007f0ff7c7bc6"
        "cdf3148efa1f4f37cd162e9052&bill_num=02730522&total_amount=3720"
    )
    payload = parse_qr_payload(url)
    assert payload == QrPayload("sz_blockchain", None, "02730522", None, None, "e9052", "37.20")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "http://einvoice.jsczt.cn/page/32020124/0007445174/RolVjv",
        "https://example.com/?bill_num=1",
        "hello world",
        "02,10,012001800111,41539530,582.72,20180921,,",
        "01,10,012001800111,4153953X,582.72,20180921,,",
        "01,10,012001800111,41539530,582.72,20230230,,",
        "01,10,0120018001AA,41539530,582.72,20180921,,",
    ],
)
def test_parse_qr_payload_rejects(text: str) -> None:
    assert parse_qr_payload(text) is None


# ---------------------------------------------------------------------------------- validate_invoice

E_INVOICE = {
    "title": "天津增值税电子普通发票",
    "invoice_code": "012001800111",
    "invoice_number": "41539530",
    "issue_date": "2018-09-21",
    "check_code": "09721126099007676378",
    "machine_no": "499099255083",
    "buyer_name": "广州亚信技术有限公司",
    "buyer_tax_id": "91440101MA59RNUF8X",
    "seller_name": "滴滴出行科技有限公司",
    "seller_tax_id": "911201163409833307",
    "amount_excl_tax": "582.72",
    "tax_amount": "17.48",
    "total_amount": "600.20",
    "total_amount_words": "陆佰元零贰角",
}
E_INVOICE_QR = "01,10,012001800111,41539530,582.72,20180921,09721126099007676378,276D,"


def make_result(
    values: dict[str, Any],
    doc_type: DocType = DocType.VAT_E_INVOICE_GENERAL,
    confidence: float = 0.95,
    weak: tuple[str, ...] = (),
    qr: str | None = None,
) -> InvoiceResult:
    """Fields as extraction would leave them: OK when strong, NEEDS_REVIEW (with a reason) when weak."""
    fields: dict[str, Field] = {}
    for name, value in values.items():
        if value is None:
            fields[name] = Field.missing()
        elif name in weak:
            fields[name] = Field(value, 0.8, FieldStatus.NEEDS_REVIEW, FieldSource.OCR, reasons=["weak OCR"])
        else:
            fields[name] = Field(value, confidence, FieldStatus.OK, FieldSource.OCR)
    return InvoiceResult("doc", "doc.png", doc_type, fields, qr_payload=qr)


def failed(result: InvoiceResult) -> dict[str, str]:
    return {c.rule: c.detail for c in result.checks if not c.passed}


def passed(result: InvoiceResult) -> set[str]:
    return {c.rule for c in result.checks if c.passed}


def test_clean_e_invoice_passes_every_rule() -> None:
    result = validate_invoice(make_result(E_INVOICE, qr=E_INVOICE_QR), today=TODAY)
    assert failed(result) == {}
    assert {
        "tax_id_checksum:seller_tax_id",
        "tax_id_checksum:buyer_tax_id",
        "amount_plus_tax_equals_total",
        "words_equal_total",
        "invoice_code_structure",
        "invoice_number_structure",
        "check_code_structure",
        "issue_date_valid",
        "qr_agrees:invoice_number",
        "qr_agrees:amount_excl_tax",
        "qr_agrees:doc_type",
    } <= passed(result)
    assert result.status == DocumentStatus.OK


def test_sum_and_words_trust_weak_amounts() -> None:
    amounts = ("amount_excl_tax", "tax_amount", "total_amount", "total_amount_words")
    result = validate_invoice(make_result(E_INVOICE, weak=amounts), today=TODAY)
    for name in amounts:
        assert result.fields[name].status == FieldStatus.OK, name
        assert result.fields[name].confidence == pytest.approx(0.99)
    assert result.status == DocumentStatus.OK


def test_words_alone_do_not_trust_amounts_when_the_sum_fails() -> None:
    values = {**E_INVOICE, "tax_amount": "17.84"}
    result = validate_invoice(make_result(values, weak=("amount_excl_tax",)), today=TODAY)
    assert "amount_plus_tax_equals_total" in failed(result)
    # The words confirm the total, so the amount or the tax is the misread.
    assert result.fields["tax_amount"].status == FieldStatus.NEEDS_REVIEW
    assert result.fields["amount_excl_tax"].status == FieldStatus.NEEDS_REVIEW
    assert result.fields["total_amount"].status == FieldStatus.OK
    assert "582.72 + tax 17.84 = 600.56, but total is 600.20" in result.fields["tax_amount"].reasons[0]


def test_misread_words_are_the_ones_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "total_amount_words": "陆佰元零叁角"}), today=TODAY)
    assert "words_equal_total" in failed(result)
    assert result.fields["total_amount_words"].status == FieldStatus.NEEDS_REVIEW
    assert "600.30" in result.fields["total_amount_words"].reasons[0]
    assert result.fields["total_amount"].status == FieldStatus.OK


def test_misread_total_is_the_one_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "total_amount": "600.02"}), today=TODAY)
    assert result.fields["total_amount"].status == FieldStatus.NEEDS_REVIEW
    assert "600.20" in result.fields["total_amount"].reasons[0]
    assert result.fields["total_amount_words"].status == FieldStatus.OK
    assert result.fields["amount_excl_tax"].status == FieldStatus.OK


def test_unreadable_words_are_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "total_amount_words": "陆佰零贰"}), today=TODAY)
    assert "words_equal_total" in failed(result)
    assert result.fields["total_amount_words"].status == FieldStatus.NEEDS_REVIEW


def test_wrong_checksum_is_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "seller_tax_id": "911201163409833308"}), today=TODAY)
    assert "tax_id_checksum:seller_tax_id" in failed(result)
    field = result.fields["seller_tax_id"]
    assert field.status == FieldStatus.NEEDS_REVIEW
    assert "911201163409833308" in field.reasons[0]
    assert result.status == DocumentStatus.NEEDS_REVIEW


def test_qr_disagreement_is_flagged() -> None:
    result = validate_invoice(
        make_result({**E_INVOICE, "invoice_number": "41539580"}, qr=E_INVOICE_QR), TODAY
    )
    assert "qr_agrees:invoice_number" in failed(result)
    assert result.fields["invoice_number"].status == FieldStatus.NEEDS_REVIEW
    assert "QR code says 41539530" in result.fields["invoice_number"].reasons


def test_qr_agreement_trusts_a_weak_field() -> None:
    result = validate_invoice(
        make_result(E_INVOICE, weak=("check_code", "issue_date"), qr=E_INVOICE_QR), TODAY
    )
    for name in ("check_code", "issue_date"):
        assert result.fields[name].status == FieldStatus.OK
        assert result.fields[name].confidence == 1.0


def test_qr_fills_a_missing_field() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "check_code": None}, qr=E_INVOICE_QR), TODAY)
    field = result.fields["check_code"]
    assert field.value == "09721126099007676378"
    assert (field.status, field.source, field.confidence, field.box) == (
        FieldStatus.OK,
        FieldSource.QR,
        1.0,
        None,
    )
    assert result.status == DocumentStatus.OK


def test_qr_total_on_fully_digital_invoice() -> None:
    values = {
        "invoice_number": "26342000001798762786",
        "issue_date": "2026-06-10",
        "seller_name": "某某公司",
        "seller_tax_id": "92341882MAK1CDJB6X",
        "amount_excl_tax": "265.35",
        "tax_amount": "2.65",
        "total_amount": "268.00",
        "tax_rates": ["1%"],
    }
    qr = "01,31,,26342000001798762786,268.00,20260610,,3AB4"
    result = validate_invoice(
        make_result(values, DocType.FULLY_DIGITAL_SPECIAL, weak=("total_amount",), qr=qr), TODAY
    )
    assert failed(result) == {}
    assert result.fields["total_amount"].confidence == 1.0
    assert "invoice_code" not in result.fields  # not mandatory on 全电
    assert result.status == DocumentStatus.OK


def test_qr_type_corrects_the_classification_with_a_warning() -> None:
    """The QR code's type is exact; a misread or sealed title is not."""
    result = validate_invoice(make_result(E_INVOICE, DocType.VAT_GENERAL_PAPER, qr=E_INVOICE_QR), TODAY)
    assert result.doc_type == DocType.VAT_E_INVOICE_GENERAL
    assert "qr_agrees:doc_type" not in failed(result)
    assert any("taken from the QR code" in warning for warning in result.warnings)


def test_non_invoice_qr_is_ignored() -> None:
    result = validate_invoice(make_result(E_INVOICE, qr="https://example.com/x"), today=TODAY)
    assert not any(c.rule.startswith("qr_agrees") for c in result.checks)
    assert result.status == DocumentStatus.OK


def test_future_date_is_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "issue_date": "2026-12-01"}), today=TODAY)
    assert "issue_date_valid" in failed(result)
    assert "in the future" in result.fields["issue_date"].reasons[0]


def test_date_before_code_year_is_flagged() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "issue_date": "2016-09-21"}), today=TODAY)
    assert result.fields["issue_date"].status == FieldStatus.NEEDS_REVIEW


def test_bad_structures_are_flagged() -> None:
    values = {**E_INVOICE, "invoice_code": "01200180011", "invoice_number": "4153953", "check_code": "0972"}
    result = validate_invoice(make_result(values), today=TODAY)
    assert {"invoice_code_structure", "invoice_number_structure", "check_code_structure"} <= set(
        failed(result)
    )
    for name in ("invoice_code", "invoice_number", "check_code"):
        assert result.fields[name].status == FieldStatus.NEEDS_REVIEW


def test_missing_mandatory_field_sends_document_to_review() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "seller_name": None}), today=TODAY)
    assert result.fields["seller_name"].reasons == [NOT_FOUND]
    assert result.fields["seller_name"].status == FieldStatus.MISSING
    assert result.status == DocumentStatus.NEEDS_REVIEW


def test_absent_mandatory_field_is_added_as_missing() -> None:
    values = {k: v for k, v in E_INVOICE.items() if k != "invoice_number"}
    result = validate_invoice(make_result(values), today=TODAY)
    assert result.fields["invoice_number"].reasons == [NOT_FOUND]


def test_optional_fields_stay_missing_quietly() -> None:
    values = {**E_INVOICE, "invoice_code": "5100191160", "issue_date": "2019-06-14", "check_code": None}
    values |= {"machine_no": None, "buyer_tax_id": None}
    result = validate_invoice(make_result(values, DocType.VAT_SPECIAL_PAPER), today=TODAY)
    for name in ("check_code", "machine_no", "buyer_tax_id"):
        assert result.fields[name].status == FieldStatus.MISSING
        assert result.fields[name].reasons == []
    assert result.status == DocumentStatus.OK


def test_check_code_is_mandatory_on_e_invoices() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "check_code": None}), today=TODAY)
    assert result.fields["check_code"].reasons == [NOT_FOUND]


def test_missing_tax_is_derived_from_trusted_total() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "tax_amount": None}), today=TODAY)
    field = result.fields["tax_amount"]
    assert (field.value, field.status, field.source) == ("17.48", FieldStatus.OK, FieldSource.DERIVED)
    assert field.confidence == pytest.approx(0.98)
    assert "derived:tax_amount" in passed(result)
    assert result.status == DocumentStatus.OK


def test_missing_amount_derived_from_a_weak_tax_needs_review() -> None:
    result = validate_invoice(
        make_result({**E_INVOICE, "amount_excl_tax": None}, weak=("tax_amount",)), TODAY
    )
    field = result.fields["amount_excl_tax"]
    assert field.value == "582.72"
    assert field.status == FieldStatus.NEEDS_REVIEW
    assert result.fields["tax_amount"].status == FieldStatus.NEEDS_REVIEW


def test_without_words_a_derived_tax_is_only_a_suggestion() -> None:
    result = validate_invoice(
        make_result({**E_INVOICE, "tax_amount": None, "total_amount_words": None}), today=TODAY
    )
    field = result.fields["tax_amount"]
    assert (field.value, field.source, field.status) == (
        "17.48",
        FieldSource.DERIVED,
        FieldStatus.NEEDS_REVIEW,
    )
    assert "nothing else on the page confirms it" in field.reasons[0]


def test_without_words_the_rate_and_the_items_confirm_a_derived_tax() -> None:
    values = {**E_INVOICE, "tax_amount": None, "total_amount_words": None, "tax_rates": ["3%"]}
    result = make_result(values)
    result.items = [{"amount": "582.72", "tax_rate": "3%", "tax_amount": "17.48"}]
    validate_invoice(result, today=TODAY)
    field = result.fields["tax_amount"]
    assert (field.value, field.source, field.status) == ("17.48", FieldSource.DERIVED, FieldStatus.OK)


def test_a_derived_tax_the_rate_contradicts_goes_to_review() -> None:
    values = {**E_INVOICE, "tax_amount": None, "tax_rates": ["13%"]}  # 582.72 × 13 % is not 17.48
    result = validate_invoice(make_result(values), today=TODAY)
    field = result.fields["tax_amount"]
    assert field.value == "17.48" and field.status == FieldStatus.NEEDS_REVIEW
    assert "13%" in field.reasons[0]


def test_both_amounts_missing_are_split_by_the_single_rate() -> None:
    values = {**E_INVOICE, "amount_excl_tax": None, "tax_amount": None, "tax_rates": ["3%"]}
    result = make_result(values)
    result.items = [{"amount": "582.72", "tax_rate": "3%", "tax_amount": None}]
    validate_invoice(result, today=TODAY)
    assert result.fields["amount_excl_tax"].value == "582.72"
    assert result.fields["tax_amount"].value == "17.48"
    # words and the item amount confirm the split
    assert result.fields["amount_excl_tax"].status == FieldStatus.OK
    assert result.fields["tax_amount"].source == FieldSource.DERIVED


def test_both_amounts_missing_and_nothing_but_the_rate_stay_for_review() -> None:
    values = {**E_INVOICE, "amount_excl_tax": None, "tax_amount": None, "tax_rates": ["3%"]}
    values["total_amount_words"] = None
    result = validate_invoice(make_result(values), today=TODAY)
    assert result.fields["tax_amount"].value == "17.48"
    assert result.fields["tax_amount"].status == FieldStatus.NEEDS_REVIEW


def test_an_exempt_invoice_gets_a_zero_tax_confirmed_by_the_rate_and_the_words() -> None:
    values = {**E_INVOICE, "amount_excl_tax": "600.20", "tax_amount": None, "tax_rates": ["免税"]}
    result = validate_invoice(make_result(values), today=TODAY)
    field = result.fields["tax_amount"]
    assert (field.value, field.status) == ("0.00", FieldStatus.OK)


def test_missing_total_derived_when_words_equal_the_sum() -> None:
    result = validate_invoice(make_result({**E_INVOICE, "total_amount": None}), today=TODAY)
    field = result.fields["total_amount"]
    assert (field.value, field.status, field.source) == ("600.20", FieldStatus.OK, FieldSource.DERIVED)


def test_tax_rate_rules() -> None:
    values = {**E_INVOICE, "issue_date": "2023-03-10", "tax_rates": ["3%", "17%"]}
    result = validate_invoice(make_result(values), today=TODAY)
    assert "tax_rate_whitelist" in failed(result)
    assert result.fields["tax_rates"].status == FieldStatus.NEEDS_REVIEW
    assert "17%" in result.fields["tax_rates"].reasons[0]
    old = validate_invoice(make_result({**values, "issue_date": "2018-09-21"}), today=TODAY)
    assert "tax_rate_whitelist" in passed(old)


def test_line_tax_rule_on_items() -> None:
    result = make_result(E_INVOICE)
    result.items = [
        {"name": "*运输服务*客运服务费", "amount": "500.00", "tax_rate": "3%", "tax_amount": "15.00"},
        {"name": "*运输服务*客运服务费", "amount": "82.72", "tax_rate": "3%", "tax_amount": "2.84"},
    ]
    validate_invoice(result, today=TODAY)
    assert "line 2: 82.72 × 3% = 2.48, but tax is 2.84" in failed(result)["line_tax"]
    assert result.fields["tax_amount"].status == FieldStatus.NEEDS_REVIEW


def test_items_add_up_to_the_totals() -> None:
    lines = [
        {"name": "*运输服务*客运服务费", "amount": "500.00", "tax_rate": "3%", "tax_amount": "15.00"},
        {"name": "*运输服务*客运服务费", "amount": "82.72", "tax_rate": "3%", "tax_amount": "2.48"},
    ]
    result = make_result(E_INVOICE)
    result.items = lines
    validate_invoice(result, today=TODAY)
    assert {"items_add_up:amounts", "items_add_up:taxes"} <= passed(result)
    # A line the table reader missed: the items are wrong, the totals (confirmed by their own sum) are not.
    missed = make_result(E_INVOICE)
    missed.items = lines[:1]
    validate_invoice(missed, today=TODAY)
    assert (
        failed(missed)["items_add_up:amounts"] == "item amounts add up to 500.00; amount_excl_tax is 582.72"
    )
    assert any("check the item lines" in warning for warning in missed.warnings)
    assert missed.fields["amount_excl_tax"].status == FieldStatus.OK


def test_exempt_line_with_starred_tax() -> None:
    result = make_result({**E_INVOICE, "tax_amount": "***", "amount_excl_tax": "600.20"})
    result.items = [{"amount": "600.20", "tax_rate": "免税", "tax_amount": "***"}]
    validate_invoice(result, today=TODAY)
    assert failed(result) == {}
    assert {"line_tax", "tax_rate_whitelist", "amount_plus_tax_equals_total"} <= passed(result)


def test_low_confidence_ok_field_is_caught() -> None:
    result = make_result(E_INVOICE)
    result.fields["buyer_name"].confidence = 0.5
    validate_invoice(result, today=TODAY, review_below=0.9)
    assert result.fields["buyer_name"].status == FieldStatus.NEEDS_REVIEW


def test_clerk_correction_is_not_sent_back() -> None:
    result = make_result(E_INVOICE)
    result.fields["seller_tax_id"] = Field("911201163409833308", 1.0, FieldStatus.OK, FieldSource.REVIEW)
    validate_invoice(result, today=TODAY)
    assert "tax_id_checksum:seller_tax_id" in failed(result)  # still recorded
    assert result.fields["seller_tax_id"].status == FieldStatus.OK


def test_revalidation_replaces_checks() -> None:
    result = validate_invoice(make_result(E_INVOICE, qr=E_INVOICE_QR), today=TODAY)
    count = len(result.checks)
    validate_invoice(result, today=TODAY)
    assert len(result.checks) == count


def test_other_documents_are_untouched() -> None:
    result = make_result(
        {"total_amount": "12.00", "issue_date": "2099-01-01"}, DocType.OTHER, qr=E_INVOICE_QR
    )
    before = copy.deepcopy(result)
    assert validate_invoice(result, today=TODAY) is result
    assert result == before
    assert result.status == DocumentStatus.NOT_AN_INVOICE


def test_generic_invoice_rules() -> None:
    values = {
        "amount_excl_tax": "100.00",
        "tax_amount": "20.00",
        "total_amount": "121.00",
        "issue_date": "2030-01-01",
    }
    values["seller_tax_id"] = "not checked"
    result = validate_invoice(make_result(values, DocType.GENERIC_INVOICE), today=TODAY)
    assert set(failed(result)) == {"amount_plus_tax_equals_total", "issue_date_valid"}
    assert all(result.fields[n].status == FieldStatus.NEEDS_REVIEW for n in ("total_amount", "issue_date"))
    assert result.fields["seller_tax_id"].status == FieldStatus.OK
    good = {**values, "total_amount": "120.00", "issue_date": "2024-01-01"}
    assert failed(validate_invoice(make_result(good, DocType.GENERIC_INVOICE), today=TODAY)) == {}


def test_generic_invoice_with_partial_amounts_has_no_sum_rule() -> None:
    result = validate_invoice(make_result({"total_amount": "$1,200.00"}, DocType.GENERIC_INVOICE), TODAY)
    assert result.checks == []


def test_eval_labels_pass_every_rule() -> None:
    """The real, checked labels must not trip any rule: guards against rules that cry wolf.

    The one exception is on purpose: cn_044 was issued by a tax-office machine whose printed
    seller name ("高新自助代开七") is not an organisation name, and a clerk should see it.
    """
    name_shape_flags = []
    for label in eval_labels():
        doc_type = LABEL_DOC_TYPES[label["doc_type"]]
        values = {k: v for k, v in label["fields"].items() if v is not None}
        result = validate_invoice(make_result(values, doc_type), today=TODAY)
        problems = failed(result)
        name_shape_flags += [(label["id"], rule) for rule in problems if rule.startswith("name_shape")]
        problems = {rule: v for rule, v in problems.items() if not rule.startswith("name_shape")}
        assert problems == {}, label["id"]
        if any(rule.startswith("name_shape") for rule in failed(result)):
            continue
        assert result.status == DocumentStatus.OK, (
            label["id"],
            result.to_dict(include_lines=False)["fields"],
        )
    assert name_shape_flags == [("cn_044", "name_shape:seller_name")]


def test_cut_off_ocr_names_go_to_review() -> None:
    values = {"seller_name": "奇点同舟餐饮管理", "buyer_name": "张伟"}
    result = validate_invoice(make_result(values), today=TODAY)
    assert result.fields["seller_name"].status == FieldStatus.NEEDS_REVIEW
    assert "cut off" in result.fields["seller_name"].reasons[-1]
    assert result.fields["buyer_name"].status == FieldStatus.OK  # a person's name
    whole = validate_invoice(make_result({"seller_name": "奇点同舟餐饮管理（北京）有限公司"}), today=TODAY)
    assert whole.fields["seller_name"].status == FieldStatus.OK
    exact = make_result(values)
    exact.fields["seller_name"].source = FieldSource.TEXT_LAYER
    assert validate_invoice(exact, today=TODAY).fields["seller_name"].status == FieldStatus.OK


@pytest.mark.parametrize(
    ("text_source", "want"), [("text_layer", FieldSource.TEXT_LAYER), ("ocr", FieldSource.OCR)]
)
def test_a_field_not_found_names_where_it_was_looked_for(text_source: str, want: FieldSource) -> None:
    """A missing field's source is the page's (its text layer or OCR), not always OCR."""
    values = {k: v for k, v in E_INVOICE.items() if k != "check_code"}
    result = make_result(values)
    result.pages = [PageInfo(0, 1700, 1100, text_source)]
    validate_invoice(result, today=TODAY)
    found = result.fields["check_code"]
    assert found.value is None and NOT_FOUND in found.reasons
    assert found.source == want


def test_extraction_gives_missing_fields_the_page_source() -> None:
    from pipeline.extract import extract_fields
    from pipeline.model import TextLine, polygon_from_rect

    lines = [
        TextLine("电子发票（普通发票）", 1.0, polygon_from_rect(600, 60, 1000, 90)),
        TextLine("发票号码：25447000001115703415", 1.0, polygon_from_rect(1300, 60, 1900, 90)),
        TextLine("开票日期：2025年09月23日", 1.0, polygon_from_rect(1300, 100, 1900, 130)),
    ]
    for source in (FieldSource.TEXT_LAYER, FieldSource.OCR):
        fields = extract_fields(lines, source, 0.9).fields
        missing = [name for name, found in fields.items() if found.value is None]
        assert missing and all(fields[name].source == source for name in missing), source
