"""Fapiao domain helpers in ``pipeline.fapiao``: tax IDs, OCR repairs, amounts in words, rates, codes, QR text."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

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
from pipeline.model import DocType
from tests.eval_labels import TODAY, eval_labels

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
