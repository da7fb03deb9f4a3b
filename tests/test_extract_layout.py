"""Extraction by geometry on hand-made text lines (no OCR): labels, splits, columns, confusions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.extract import extract_fields
from pipeline.extract.layout import build_rows, normalize
from pipeline.fapiao import parse_amount_words
from pipeline.model import DocType, FieldSource, FieldStatus, InvoiceResult, TextLine, polygon_from_rect
from pipeline.validate import validate_invoice


def line(
    text: str, x: float, y: float, width: float | None = None, conf: float = 0.99, height: float = 24
) -> TextLine:
    width = width if width is not None else 22 * len(text)
    return TextLine(text=text, confidence=conf, polygon=polygon_from_rect(x, y, x + width, y + height))


def vat_page(**overrides: str) -> list[TextLine]:
    """A paper 专票 laid out like the real form, with letter-spaced labels split by OCR."""
    values = {
        "number": "10631331",
        "code": "1100214130",
        "buyer_id": "91110108MAUJFMDA5F",
        "seller_id": "91110115MA56E82N05",
        **overrides,
    }
    return [
        line("北京增值税专用发票", 680, 60, 500, height=60),  # the title: the largest print
        line(values["code"], 300, 90),
        line(f"No {values['number']}", 1270, 80),
        line("开票日期：", 1290, 180),
        line("2021年01月19日", 1450, 180),
        line("名", 190, 290, 24),
        line("称：北京长城软件有限公司", 330, 290),
        line("纳税人识别号：", 190, 330),
        line(values["buyer_id"], 380, 330),
        line("货物或应税劳务、服务名称", 160, 460),
        line("税率", 1450, 460),
        line("*餐饮服务*餐饮服务", 120, 500),
        line("15186.66", 1200, 500),
        line("6%", 1460, 500),
        line("911.20", 1600, 500),
        line("合", 250, 760, 24),
        line("计", 500, 760, 24),
        line("¥15186.66", 1200, 760),
        line("¥911.20", 1600, 760),
        line("价税合计（大写）", 220, 820),
        line("⊗壹万陆仟零玖拾柒元捌角陆分", 560, 820),
        line("（小写）¥16097.86", 1400, 820),
        line("名", 190, 880, 24),
        line("称：金桥（北京）建筑工程有限责任公司", 330, 880),
        line("纳税人识别号：", 190, 920),
        line(values["seller_id"], 380, 920),
    ]


def test_rows_join_a_letter_spaced_label() -> None:
    rows = build_rows(vat_page())
    assert any(row.text.startswith("名称:北京长城软件有限公司") for row in rows)


def test_vat_fields_from_layout() -> None:
    extraction = extract_fields(vat_page(), FieldSource.OCR, 0.9)
    values = {name: found.value for name, found in extraction.fields.items()}
    assert extraction.doc_type == DocType.VAT_SPECIAL_PAPER
    assert values["title"] == "北京增值税专用发票"
    assert values["invoice_code"] == "1100214130"
    assert values["invoice_number"] == "10631331"
    assert values["issue_date"] == "2021-01-19"
    assert values["buyer_name"] == "北京长城软件有限公司"
    assert values["seller_name"] == "金桥（北京）建筑工程有限责任公司"
    assert values["buyer_tax_id"] == "91110108MAUJFMDA5F"
    assert values["seller_tax_id"] == "91110115MA56E82N05"
    assert values["amount_excl_tax"] == "15186.66"
    assert values["tax_amount"] == "911.20"
    assert values["total_amount"] == "16097.86"
    assert values["total_amount_words"] == "壹万陆仟零玖拾柒元捌角陆分"
    assert values["tax_rates"] == ["6%"]
    assert extraction.fields["invoice_number"].box is not None


def test_ocr_confusions_in_digit_fields_are_fixed() -> None:
    extraction = extract_fields(vat_page(number="1O63I33l"), FieldSource.OCR, 0.9)
    assert extraction.fields["invoice_number"].value == "10631331"


def test_weak_ocr_sends_the_field_to_review() -> None:
    page = [ln if "No" not in ln.text else line(ln.text, ln.x0, ln.y0, conf=0.6) for ln in vat_page()]
    found = extract_fields(page, FieldSource.OCR, 0.9).fields["invoice_number"]
    assert found.status == FieldStatus.NEEDS_REVIEW
    assert any("confidence" in reason for reason in found.reasons)


def test_fully_digital_two_columns_and_value_below_label() -> None:
    page = [
        line("电子发票（普通发票）", 600, 60, 400),
        line("发票号码：25447000001115703415", 1300, 60),
        line("开票日期：2025年09月23日", 1300, 100),
        line("名称：广州华栈天城科技有限公司", 80, 250),
        line("名称：广州灵感之茶餐饮管理有限公司", 900, 250),
        line("统一社会信用代码/纳税人识别号：", 80, 300),
        line("统一社会信用代码/纳税人识别号：", 900, 330),
        line("91440106068698695J", 320, 330),
        line("91440101MA5AL52Y44", 1150, 360),
        line("合计", 150, 700),
        line("¥47.17", 1000, 700),
        line("¥2.83", 1500, 700),
        line("价税合计（大写）", 150, 760),
        line("伍拾圆整", 500, 760),
        line("（小写）¥50.00", 1300, 760),
    ]
    extraction = extract_fields(page, FieldSource.TEXT_LAYER, 0.9)
    values = {name: found.value for name, found in extraction.fields.items()}
    assert extraction.doc_type == DocType.FULLY_DIGITAL_GENERAL
    assert values["invoice_number"] == "25447000001115703415"
    assert values["invoice_code"] is None
    assert values["buyer_name"] == "广州华栈天城科技有限公司"
    assert values["seller_name"] == "广州灵感之茶餐饮管理有限公司"
    assert values["buyer_tax_id"] == "91440106068698695J"
    assert values["seller_tax_id"] == "91440101MA5AL52Y44"
    assert (values["amount_excl_tax"], values["tax_amount"], values["total_amount"]) == (
        "47.17",
        "2.83",
        "50.00",
    )


def test_toll_receipt_is_not_a_vat_invoice() -> None:
    page = [
        line("江苏省车辆通行费票据（电子）", 500, 60, 500),
        line("票据代码：32020124", 80, 150),
        line("票据号码：0007445174", 900, 150),
        line("交款人统一社会信用代码：91310000764286520D", 80, 200),
        line("金额合计（大写）壹拾元整", 80, 400),
        line("（小写）10.00", 900, 400),
    ]
    extraction = extract_fields(page, FieldSource.TEXT_LAYER, 0.9)
    assert extraction.doc_type == DocType.OTHER
    assert extraction.fields == {}


def test_a_vat_invoice_whose_title_and_header_labels_are_misread_is_known_by_its_party_blocks() -> None:
    """A harsh photo read the title as 普通发票 and 发票号码/开票日期/税额 wrong; the two party blocks'
    taxpayer ID labels and the total line still make it a VAT invoice, and its fields are read."""
    page = [
        line("普通发票", 900, 36, 180),
        line("发单号码：04868863", 1240, 74),
        line("开系日期：2022年08月25日", 1240, 107),
        line("名", 110, 199, 24),
        line("称：中铁文化旅游投资集团有限公司", 240, 198),
        line("纳税人识别号：", 106, 230),
        line("91520000MA6DKWDM90", 290, 224),
        line("地址、电话：", 106, 266),
        line("开户行及账号：", 106, 300),
        line("价税合计（大写）", 141, 623),
        line("伍佰零陆圆整", 479, 620),
        line("（小写）¥506.00", 1322, 617),
        line("名", 112, 670, 24),
        line("称：郫都区优舍酒店", 239, 665),
        line("纳税人识别号：92510124MA6794X98P", 106, 694),
        line("地址、电话：成都市郫都区望丛东路125号", 109, 728),
        line("开户行及账号：中国民生银行郫县支行156739001", 107, 754),
    ]
    extraction = extract_fields(page, FieldSource.OCR, 0.9)
    assert extraction.doc_type != DocType.OTHER
    assert extraction.fields["seller_tax_id"].value == "92510124MA6794X98P"
    assert extraction.fields["total_amount"].value == "506.00"
    # One party block is not the form: a receipt that prints one taxpayer ID stays what it is.
    receipt = [entry for entry in page if entry.y0 < 600 or "价税合计" in entry.text or "小写" in entry.text]
    assert extract_fields(receipt, FieldSource.OCR, 0.9).doc_type == DocType.OTHER


def invoice_result(page: list[TextLine]) -> InvoiceResult:
    """Extracted from OCR'd lines and validated, as the pipeline does."""
    extraction = extract_fields(page, FieldSource.OCR, 0.9)
    result = InvoiceResult(
        document_id="x", source_name="x.jpg", doc_type=extraction.doc_type, fields=extraction.fields
    )
    validate_invoice(result)
    return result


def test_a_title_read_only_in_small_print_goes_to_review_and_a_label_naming_the_kind_is_none() -> None:
    """The large title misread (a character dropped): a body line that names the invoice's kind
    in a label is not its title, and a title found only in small print may be part of the real one."""
    page = [row for row in vat_page() if row.text != "北京增值税专用发票"]
    page.append(line("北京增值税用发票", 680, 60, 500, conf=0.998, height=60))
    labelled = [*page, line("所属增值税专用发票代码：1100214130", 120, 1000)]
    assert invoice_result(labelled).fields["title"].value is None
    small = invoice_result([*page, line("增值税专用发票", 120, 1000)]).fields["title"]
    assert small.value == "增值税专用发票" and small.status == FieldStatus.NEEDS_REVIEW
    assert any("small print" in reason for reason in small.reasons)
    # Read in full, the large title is auto-accepted.
    assert invoice_result(vat_page()).fields["title"].status == FieldStatus.OK


def test_a_fully_digital_title_read_in_part_goes_to_review() -> None:
    page = [row for row in vat_page() if row.text != "北京增值税专用发票"]
    misread = invoice_result([*page, line("电了发票（增值税专用发票）", 680, 60, 500, height=60)]).fields[
        "title"
    ]
    assert misread.value == "增值税专用发票" and misread.status == FieldStatus.NEEDS_REVIEW
    assert any("read in part" in reason for reason in misread.reasons)


def test_the_total_at_the_end_of_the_words_row_when_its_label_is_misread() -> None:
    """(小写) read as 小号) and the amount in words broken: the total is still the ¥ amount at the
    end of the 价税合计 row, confirmed by the sum row (15186.66 + 911.20)."""
    misread = {
        "（小写）¥16097.86": "小号）¥16097.86",
        "⊗壹万陆仟零玖拾柒元捌角陆分": "⊗壹万陆仟零玖拾柒元集角陆分",
    }
    page = [
        line(misread[entry.text], entry.x0, entry.y0) if entry.text in misread else entry
        for entry in vat_page()
    ]
    result = invoice_result(page)
    assert result.fields["total_amount"].value == "16097.86"
    assert result.fields["amount_excl_tax"].value == "15186.66"
    assert result.fields["tax_amount"].value == "911.20"
    assert result.fields["total_amount_words"].status == FieldStatus.NEEDS_REVIEW


def test_an_amount_in_words_broken_by_a_misread_character_goes_to_review() -> None:
    page = [
        entry if not entry.text.startswith("⊗") else line("⊗壹万陆仟零玖拾柒元集角陆分", 560, 820)
        for entry in vat_page()
    ]
    words = invoice_result(page).fields["total_amount_words"]
    assert words.value == "壹万陆仟零玖拾柒元"
    assert words.status == FieldStatus.NEEDS_REVIEW
    assert any("only partly read: 角陆分" in reason for reason in words.reasons)


def test_tax_rates_under_the_table_header_when_its_rate_heading_is_misread() -> None:
    page = [line("税象", entry.x0, entry.y0) if entry.text == "税率" else entry for entry in vat_page()]
    page.append(line("规格型号", 500, 460))
    assert invoice_result(page).fields["tax_rates"].value == ["6%"]


def test_generic_invoice_fields() -> None:
    page = [
        line("Acme Widgets Ltd.", 80, 40, 300),
        line("INVOICE", 700, 40, 150),
        line("Invoice No:", 600, 120, 150),
        line("INV-2024-0042", 780, 120, 200),
        line("Date: 03/15/2024", 600, 160, 250),
        line("Subtotal", 500, 600, 120),
        line("$1,200.00", 800, 600, 140),
        line("Tax (10%)", 500, 640, 120),
        line("$120.00", 800, 640, 140),
        line("Total", 500, 680, 120),
        line("$1,320.00", 800, 680, 140),
    ]
    extraction = extract_fields(page, FieldSource.OCR, 0.9)
    values = {name: found.value for name, found in extraction.fields.items()}
    assert extraction.doc_type == DocType.GENERIC_INVOICE
    assert values["vendor_name"] == "Acme Widgets Ltd."
    assert values["invoice_number"] == "INV-2024-0042"
    assert values["issue_date"] == "2024-03-15"
    assert values["total_amount"] == "1320.00"
    assert values["amount_excl_tax"] == "1200.00"
    assert values["tax_amount"] == "120.00"
    assert values["currency"] == "USD"


def test_normalize_full_width() -> None:
    assert normalize("发票号码：１２３ ４５") == "发票号码:12345"
    assert normalize("￥ 1,200.00") == "¥1,200.00"


def test_items_from_a_real_text_layer(eval_dir) -> None:
    """Header cells give the columns; the item row's runs fall into them."""
    from pipeline.config import Settings
    from pipeline.extract.vat import extract_items
    from pipeline.load import load_document

    page = load_document((eval_dir / "cn" / "cn_034.pdf").read_bytes(), Settings())[0]
    assert extract_items(page.text_layer or []) == [
        {
            "name": "*运输服务*客运服务费",
            "spec": "无",
            "unit": "次",
            "quantity": "1",
            "unit_price": "582.72",
            "amount": "582.72",
            "tax_rate": "3%",
            "tax_amount": "17.48",
        }
    ]


def test_items_wrapped_name_and_spec_and_a_half_read_sum_row() -> None:
    from pipeline.extract.vat import extract_items

    header = [
        ("项目名称", 200),
        ("规格型号", 500),
        ("单位", 670),
        ("数量", 780),
        ("单价", 940),
        ("金额", 1150),
        ("税率", 1300),
        ("税额", 1450),
    ]
    page = [line(text, x, 410, 90) for text, x in header] + [
        line("*通信传输设备*新LoRa扩频无线模", 40, 450, 420),
        line("E220-400MBL", 500, 450, 140),
        line("个", 680, 450, 24),
        line("1", 800, 450, 20),
        line("51.33", 950, 450, 80),
        line("51.33", 1160, 450, 80),
        line("13%", 1310, 450, 50),
        line("6.67", 1460, 450, 70),
        line("块进口低功耗4", 40, 480, 200),  # the name and the spec wrap onto a second line
        line("-01", 500, 480, 40),
        line("*通信传输设备*价外费用", 40, 510, 300),
        line("4.42", 1160, 510, 80),
        line("0.58", 1460, 510, 70),
        line("计", 460, 700, 24),  # 合计 letter-spaced, its 合 unread, 计 under the spec column
        line("¥55.75", 1150, 700, 100),
    ]
    items = extract_items(page)
    assert [(item["name"], item["spec"], item["amount"]) for item in items] == [
        ("*通信传输设备*新LoRa扩频无线模块进口低功耗4", "E220-400MBL-01", "51.33"),
        ("*通信传输设备*价外费用", None, "4.42"),
    ]


def test_receipt_without_invoice_number_takes_the_booking_id_for_review() -> None:
    page = [
        line("PAYMENT RECEIPT", 300, 40, 300),
        line("Booking ID", 80, 200, 150),
        line("Payment Mode", 600, 200, 200),
        line("IBZY2087", 80, 240, 140),
        line("Cash at Hotel", 600, 240, 200),
        line("Grand Total", 80, 400, 150),
        line("Rs 1939", 600, 400, 120),
    ]
    extraction = extract_fields(page, FieldSource.TEXT_LAYER, 0.9)
    number = extraction.fields["invoice_number"]
    assert extraction.doc_type == DocType.GENERIC_INVOICE
    assert number.value == "IBZY2087"
    assert number.status == FieldStatus.NEEDS_REVIEW
    assert extraction.fields["total_amount"].value == "1939.00"


def receipt(*body: TextLine, name: str = "KEDAI RUNCIT MAJU JAYA") -> list[TextLine]:
    """A Malaysian till receipt: shop header, company number, address, title, then the body."""
    return [
        line(name, 120, 40, 22 * len(name)),
        line("(001234567-K)", 260, 80, 220),
        line("NO. 12, JALAN BESAR, 45600 KLANG", 100, 120, 560),
        line("SIMPLIFIED TAX INVOICE", 200, 200, 420),
        *body,
    ]


def test_receipt_vendor_is_the_header_not_the_customer_under_the_title() -> None:
    page = receipt(
        line("BIG BUYER ENGINEERING (M) SDN BHD", 100, 240, 600),
        line("TOTAL", 80, 400, 100),
        line("12.00", 600, 400, 100),
        line("THANK YOU. PLEASE COME AGAIN", 160, 3000, 500),  # a long till roll
    )
    assert extract_fields(page, FieldSource.OCR, 0.9).fields["vendor_name"].value == "KEDAI RUNCIT MAJU JAYA"


def test_vendor_name_ocr_confusions_and_glued_company_number() -> None:
    cases = {
        "99 SPEED MART S/BS19537-X)": "99 SPEED MART S/B",
        "Taste Of The WorId Sdn Bhd": "Taste Of The World Sdn Bhd",
        "BOOK TA _K (TAMAN DAYA) SDN BHD": "BOOK TA .K (TAMAN DAYA) SDN BHD",
        "AIK_HUAT HARDWARE": "AIK HUAT HARDWARE",
        "UNIHAKKA INTERNATIONAL-SDN BHD": "UNIHAKKA INTERNATIONAL SDN BHD",
    }
    for printed, expected in cases.items():
        page = receipt(line("TOTAL", 80, 400, 100), line("12.00", 600, 400, 100), name=printed)
        assert extract_fields(page, FieldSource.OCR, 0.9).fields["vendor_name"].value == expected, printed


def test_vendor_name_over_two_lines_whose_boxes_overlap() -> None:
    page = receipt(line("TOTAL", 80, 400, 100), line("12.00", 600, 400, 100), name="HOME MASTER HARDWARE &")
    page.insert(1, line("ELECTRICAL", 220, 60, 220))  # OCR boxes of consecutive lines overlap
    vendor = extract_fields(page, FieldSource.OCR, 0.9).fields["vendor_name"]
    assert vendor.value == "HOME MASTER HARDWARE & ELECTRICAL"


def test_total_after_rounding_when_the_rounded_amount_is_printed() -> None:
    page = receipt(
        line("TOTAL AMT.", 80, 400, 200),
        line("60.31", 600, 400, 100),
        line("ROUNDING ADJ", 80, 440, 200),
        line("-0.01", 600, 440, 100),
        line("RM", 80, 480, 60),
        line("60.30", 600, 480, 100),
        line("CASH", 80, 520, 100),
        line("70.30", 600, 520, 100),
    )
    assert extract_fields(page, FieldSource.OCR, 0.9).fields["total_amount"].value == "60.30"
    # Without the rounded amount printed, the rounding alone is no evidence: the labelled total stays.
    assert extract_fields(page[:-4] + page[-2:], FieldSource.OCR, 0.9).fields["total_amount"].value == "60.31"


def test_total_is_never_the_cash_tendered() -> None:
    # "GRAND TOTAL 1000": the decimal point was lost; the next row is the cash, not the total.
    misread = receipt(
        line("SUB TOTAL", 80, 360, 200),
        line("10.00", 600, 360, 100),
        line("GRAND TOTAL", 80, 400, 200),
        line("1000", 600, 400, 80),
        line("CASH", 80, 440, 100),
        line("20.00", 600, 440, 100),
        line("CHANGE", 80, 480, 120),
        line("10.00", 600, 480, 100),
    )
    total = extract_fields(misread, FieldSource.OCR, 0.9).fields["total_amount"]
    assert total.value == "10.00"
    assert total.status == FieldStatus.NEEDS_REVIEW
    unlabelled = receipt(
        line("TL:RM", 80, 400, 100),
        line("28.60", 600, 400, 100),
        line("CASH", 80, 440, 100),
        line("100.00", 600, 440, 120),
    )
    assert extract_fields(unlabelled, FieldSource.OCR, 0.9).fields["total_amount"].value == "28.60"


def test_a_due_date_named_after_the_label_is_not_the_issue_date() -> None:
    page = [
        line("Free Service Abonné", 80, 40, 300),
        line("Facture n°562044387 du 02 Juillet 2015", 80, 300, 600),
        line("Date limite de paiement le 05 Juillet 2015", 80, 340, 640),
        line("Total facture", 80, 500, 200),
        line("29.99", 800, 500, 100),
    ]
    assert extract_fields(page, FieldSource.TEXT_LAYER, 0.9).fields["issue_date"].value == "2015-07-02"


def test_printed_date_forms() -> None:
    from pipeline.extract.generic import parse_any_date

    assert parse_any_date("2024-03-15") == ("2024-03-15", False)
    assert parse_any_date("August 3, 2014") == ("2014-08-03", False)
    assert parse_any_date("02 Juillet 2015") == ("2015-07-02", False)
    assert parse_any_date("25/12/2017 14:03") == ("2017-12-25", False)
    assert parse_any_date("05/03/2018") == ("2018-03-05", True)  # day first, flagged
    assert parse_any_date(":10-03-201823:03:06") == ("2018-03-10", True)  # time glued to the year
    assert parse_any_date("20/03/201") is None


def test_cash_less_change_confirms_a_receipt_total() -> None:
    def total_with(change: str, tendered_label: str = "CASH") -> FieldStatus:
        page = receipt(
            line("TOTAL", 80, 400, 100),
            line("28.60", 600, 400, 100),
            line(tendered_label, 80, 440, 200),
            line("50.00", 600, 440, 100),
            line("CHANGE DUE", 80, 480, 200),
            line(change, 600, 480, 100),
        )
        total = extract_fields(page, FieldSource.OCR, 0.9).fields["total_amount"]
        assert total.value == "28.60"
        return total.status

    assert total_with("21.40") == FieldStatus.OK
    assert total_with("21.40", "CASH RM") == FieldStatus.OK
    assert total_with("21.40", "Amount Tendered:") == FieldStatus.OK
    assert total_with("21.00") == FieldStatus.NEEDS_REVIEW


def test_paper_invoice_kind_when_the_title_is_unread() -> None:
    from pipeline.extract.vat import classify

    special_scan = "1100094140No87654321机器编号000000000001开票日期:2010年11月08日名称:纳税人识别号:"
    general_scan = "No41108527开票日期:2019年03月19日校验码55617567312345678901名称:"
    assert classify("", special_scan) == DocType.VAT_SPECIAL_PAPER  # 专票 print no 校验码
    assert classify("", general_scan) == DocType.VAT_GENERAL_PAPER
    assert classify("深圳增值税普通发票", special_scan) == DocType.VAT_GENERAL_PAPER  # a read title decides


def invoice_page(*header: TextLine) -> list[TextLine]:
    return [
        *header,
        line("Invoice No: 12429647", 900, 700, 300),
        line("Total", 600, 1400, 100),
        line("$101.00", 900, 1400, 120),
        line("Thank you for your business", 200, 3000, 500),
    ]


def vendor_of(page: list[TextLine]) -> str | None:
    return extract_fields(page, FieldSource.TEXT_LAYER, 0.9).fields["vendor_name"].value


def test_vendor_is_not_the_customer_under_or_beside_a_to_label() -> None:
    beside = invoice_page(
        line("Tax Invoice", 80, 40, 200),
        line("Envato", 80, 80, 110),
        line("ABN: 11 119 159 741", 80, 120, 300),
        line("To:", 80, 300, 40),
        line("iViveLabs Limited", 160, 300, 300),
    )
    assert vendor_of(beside) == "Envato"
    under = invoice_page(
        line("Bill to:", 80, 40, 120),
        line("Globex Trading Ltd", 80, 80, 320),
        line("Initech Software GmbH", 900, 200, 360),
    )
    assert vendor_of(under) == "Initech Software GmbH"


def test_vendor_from_the_window_envelope_sender_line() -> None:
    page = invoice_page(
        line("QualityHosting AG - Uferweg 40-42 - D-63571 Gelnhausen", 60, 40, 700),
        line("iViveLabs Ltd.", 60, 90, 240),
    )
    assert vendor_of(page) == "QualityHosting AG"


def test_titles_and_form_fields_are_not_vendor_names() -> None:
    page = invoice_page(
        line("PAYMENT RECEIPT", 300, 40, 300),
        line("Guest Name: Sanjay", 80, 100, 300),
        line("Coolblue B.V.", 900, 140, 220),
    )
    assert vendor_of(page) == "Coolblue B.V."
    assert vendor_of(invoice_page(line("Amazon Web Services Invoice", 600, 40, 500))) == "Amazon Web Services"


@pytest.mark.parametrize(
    "words",
    ["负壹万陆仟零玖拾柒元捌角陆分", "（负数）壹万陆仟零玖拾柒元捌角陆分", "⊗负数壹万陆仟零玖拾柒元捌角陆分"],
)
def test_red_letter_amount_in_words_keeps_its_sign(words: str) -> None:
    """A red-letter invoice prints negative amounts and a negative 大写: both agree, nothing to review."""
    page = []
    for ln in vat_page():
        text = ln.text
        if text.startswith("⊗"):
            text = words
        elif text.startswith("（小写）"):
            text = "（小写）¥-16097.86"
        elif text in ("15186.66", "911.20", "¥15186.66", "¥911.20"):
            text = text.replace("¥", "¥-") if text.startswith("¥") else "-" + text
        page.append(line(text, ln.x0, ln.y0, ln.x1 - ln.x0))
    extraction = extract_fields(page, FieldSource.TEXT_LAYER, 0.9)
    found = extraction.fields["total_amount_words"]
    assert found.value is not None and parse_amount_words(found.value) == Decimal("-16097.86")
    assert extraction.fields["total_amount"].value == "-16097.86"
    result = InvoiceResult(
        document_id="x", source_name="x.pdf", doc_type=extraction.doc_type, fields=extraction.fields
    )
    validate_invoice(result)
    check = next(c for c in result.checks if c.rule == "words_equal_total")
    assert check.passed, check.detail
    assert result.fields["total_amount_words"].status == FieldStatus.OK


def test_sum_row_amounts_in_separate_cells_are_not_run_together() -> None:
    """合计 amounts printed without ¥ in their own columns: two numbers, never one read across both."""
    page = [
        line(ln.text.removeprefix("¥"), ln.x0, ln.y0) if ln.y0 == 760 and "¥" in ln.text else ln
        for ln in vat_page()
    ]
    values = {name: found.value for name, found in extract_fields(page, FieldSource.OCR, 0.9).fields.items()}
    assert values["amount_excl_tax"] == "15186.66"
    assert values["tax_amount"] == "911.20"


def test_a_vat_invoice_whose_labels_each_lost_a_character_is_still_one() -> None:
    """An unseen harsh photo read 发票代吗, 份税合计, 纳人识时号, 纳税人识制号, 开户行成账号 and
    the title without 子: no label exact enough for the other rules, four within one character."""
    from pipeline.extract.vat import looks_like_vat_invoice

    misread = [
        "天津增值税电普通发票",
        "发票代吗：012001800111",
        "发票号码：38257275",
        "开票日期：2018年09月17日",
        "名称：深圳中买飞贷金融科技有限公司",
        "纳人识时号：914403005891868120",
        "1.15.+>+>11-518<7>2317+54>+4",  # the cipher block beside it
        "地址、电话：",
        "开户行成账号：",
        "份税合计（大写）",
        "玖佰零轴元柴角任分",
        "（小写）￥906.75",
        "名称：清滴出行科技有限公司",
        "纳税人识制号：911201163409833307",
    ]
    assert looks_like_vat_invoice(misread)
    # Read this badly, one party's ID is not enough: a receipt prints one at most.
    receipt = [text for text in misread if "9112011" not in text]
    assert not looks_like_vat_invoice(receipt)
    # A toll receipt prints a few such labels, not four: it stays "not an invoice".
    toll = [
        "通行费票据",
        "票据代码：12345678",
        "票据号码：00012345",
        "开票日期：2021年01月01日",
        "金额：¥35.00",
    ]
    assert not looks_like_vat_invoice(toll)
