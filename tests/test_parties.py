"""Buyer and seller read from the block their labels stand in: private buyers, shifted values, swaps.

Lines are placed where OCR puts them on real layouts (全电 columns, and the stacked 购买方 / 销售方
blocks of paper and provincial e-invoices), so these run without OCR.
"""

from __future__ import annotations

import pytest

from pipeline.extract import extract_fields
from pipeline.extract.layout import Hit
from pipeline.extract.parties import PartyBlocks, cross_check
from pipeline.model import DocType, FieldSource, FieldStatus, InvoiceResult, TextLine, polygon_from_rect
from pipeline.validate import validate_invoice

BUYER_ID = "91310114MAEF222A74"
SELLER_ID = "92341882MAK1CDJB6X"


def line(text: str, x0: float, y0: float, x1: float, y1: float, confidence: float = 0.99) -> TextLine:
    return TextLine(text=text, confidence=confidence, polygon=polygon_from_rect(x0, y0, x1, y1))


def fully_digital(buyer_name: str, buyer_id: str | None, seller_id: str | None = SELLER_ID) -> list[TextLine]:
    """A 全电 invoice page as OCR reads it: two party columns side by side."""
    id_label = "统一社会信用代码/纳税人识别号："
    lines = [
        line("电子发票（普通发票）", 450, 60, 1160, 125),
        line("发票号码：26342000001798762786", 1230, 86, 1614, 121),
        line("开票日期：2026年06月10日", 1231, 137, 1534, 173),
        line("购买方信息", 39, 272, 70, 420),
        line("销售方信息", 845, 267, 876, 419),
        line(f"名称：{buyer_name}", 89, 277, 89 + 36 * (3 + len(buyer_name)), 311),
        line("名称：广德月满庭酒店（个体工商户）", 891, 273, 1305, 312),
        line(id_label + (buyer_id or ""), 84, 362, 796 if buyer_id else 420, 400),
        line(id_label + (seller_id or ""), 887, 361, 1603 if seller_id else 1220, 399),
        line("项目名称", 119, 441, 232, 475),
        line("金额", 1141, 442, 1230, 473),
        line("税率/征收率", 1252, 441, 1399, 471),
        line("税额", 1549, 440, 1634, 472),
        line("*生产生活服务*住宿服务", 33, 468, 315, 501),
        line("265.35", 1139, 470, 1225, 502),
        line("1%", 1310, 471, 1347, 500),
        line("2.65", 1581, 469, 1645, 502),
        line("¥265.35", 1125, 762, 1231, 797),
        line("¥2.65", 1567, 761, 1644, 795),
        line("价税合计（大写）", 131, 820, 329, 854),
        line("贰佰陆拾捌圆整", 491, 811, 686, 851),
        line("（小写）¥268.00", 1151, 809, 1359, 854),
    ]
    return lines


def stacked(buyer_name: str, buyer_id: str | None, seller_id: str | None = SELLER_ID) -> list[TextLine]:
    """A paper 普票 as OCR reads it: 购买方 above the goods table, 销售方 below 价税合计."""
    return [
        line("011002100304", 306, 72, 603, 109),
        line("北京增值税普通发票", 682, 96, 1208, 159),
        line("开票日期：2021年08月09日", 1291, 177, 1647, 210),
        line("校 验 码：47172 86963 90400 40417", 1290, 216, 1795, 249),
        line("名", 186, 274, 222, 307),
        line(f"称：{buyer_name}", 312, 273, 312 + 36 * (2 + len(buyer_name)), 307),
        line("07+499<12-6+<>37>4++*+134511", 1120, 278, 1763, 307),
        line("购买方", 119, 283, 161, 423),
        line("密码区", 1065, 288, 1103, 420),
        line("纳税人识别号：" + (buyer_id or ""), 185, 313, 700 if buyer_id else 361, 348),
        line("3>*196626/08>98+7-69-26313<-", 1119, 316, 1761, 346),
        line("地址、电话：", 185, 353, 362, 390),
        line("开户行及账号：", 187, 396, 360, 430),
        line("货物或应税劳务、服务名称", 166, 446, 483, 479),
        line("金额", 1244, 445, 1366, 480),
        line("税率", 1449, 444, 1513, 481),
        line("税额", 1582, 442, 1709, 483),
        line("*文具*中性笔", 110, 483, 283, 517),
        line("120.35", 1322, 483, 1430, 517),
        line("13%", 1450, 483, 1509, 517),
        line("15.65", 1685, 484, 1774, 516),
        line("合", 239, 750, 276, 785),
        line("计", 410, 748, 451, 786),
        line("¥120.35", 1307, 752, 1428, 783),
        line("¥15.65", 1666, 751, 1773, 785),
        line("价税合计（大写）", 218, 801, 424, 835),
        line("⊗ 壹佰叁拾陆元整", 547, 799, 785, 835),
        line("（小写）¥136.00", 1405, 800, 1632, 835),
        line("销售方", 121, 867, 159, 1007),
        line("名", 186, 859, 222, 893),
        line("称：智源（北京）建筑工程有限责任公司", 311, 859, 807, 891),
        line("备注", 1064, 881, 1103, 980),
        line("纳税人识别号：" + (seller_id or ""), 188, 897, 678 if seller_id else 362, 927),
        line("地址、电话：北京市大兴区科创十三街99号 010-57412519", 186, 932, 1047, 965),
        line("开户行及账号：中国建设银行北京科技园支行8805351660683815", 187, 970, 885, 1003),
        line("收款人：何雪", 134, 1018, 335, 1052),
        line("销售方：", 1336, 1018, 1460, 1053),
    ]


def named_rows(buyer_name: str, buyer_id: str | None, seller_id: str | None = SELLER_ID) -> list[TextLine]:
    """Labels that name their party, one party a row (generic forms, pages drawn from e-invoice data)."""
    lines = [
        line("电子发票（增值税专用发票）", 551, 56, 1110, 99),
        line("发票号码：", 1102, 56, 1227, 81),
        line("24113018887327690116", 1259, 56, 1559, 81),
        line("开票日期：", 1102, 95, 1227, 121),
        line("2024年06月15日", 1259, 95, 1454, 121),
        line("购买方名称：", 63, 261, 213, 286),
        line(buyer_name, 236, 261, 236 + 25 * len(buyer_name), 286),
        line("纳税人识别号：", 866, 261, 1041, 286),
        line("销售方名称：", 63, 308, 213, 333),
        line("广州白云办公用品有限公司", 236, 308, 536, 333),
        line("纳税人识别号：", 866, 308, 1041, 333),
        line("项目名称", 63, 387, 163, 412),
        line("金额", 1055, 387, 1105, 412),
        line("税额", 1385, 387, 1435, 412),
        line("合计", 63, 796, 113, 821),
        line("¥11934.40", 1055, 796, 1182, 821),
        line("¥954.77", 1385, 796, 1483, 821),
        line("价税合计（大写）", 63, 859, 263, 884),
        line("壹万贰仟捌佰捌拾玖元壹角柒分", 315, 859, 665, 884),
        line("（小写）", 1055, 859, 1155, 884),
        line("¥12889.17", 1181, 859, 1308, 884),
    ]
    if buyer_id:
        lines.append(line(buyer_id, 1063, 261, 1328, 286))
    if seller_id:
        lines.append(line(seller_id, 1063, 308, 1330, 333))
    return lines


LAYOUTS = [fully_digital, stacked, named_rows]
LAYOUT_IDS = ["全电 columns", "stacked blocks", "labels naming their party"]


def parties_of(lines: list[TextLine]) -> dict[str, object]:
    extraction = extract_fields(lines, FieldSource.OCR, 0.9)
    return {
        name: extraction.fields[name]
        for name in ("buyer_name", "buyer_tax_id", "seller_name", "seller_tax_id")
    }


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
@pytest.mark.parametrize("buyer", ["个人", "王磊"])
def test_a_private_buyer_has_no_id_and_the_seller_keeps_its_own(layout, buyer: str) -> None:
    fields = parties_of(layout(buyer, None))
    assert fields["buyer_name"].value == buyer
    assert fields["buyer_tax_id"].value is None
    assert fields["buyer_tax_id"].status == FieldStatus.MISSING and not fields["buyer_tax_id"].reasons
    assert fields["seller_tax_id"].value == SELLER_ID
    assert fields["seller_tax_id"].status == FieldStatus.OK


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_company_buyer_and_seller_each_in_their_field(layout) -> None:
    fields = parties_of(layout("上海松鼠创科技术有限责任公司", BUYER_ID))
    assert fields["buyer_name"].value == "上海松鼠创科技术有限责任公司"
    assert (fields["buyer_tax_id"].value, fields["seller_tax_id"].value) == (BUYER_ID, SELLER_ID)
    assert fields["buyer_tax_id"].status == fields["seller_tax_id"].status == FieldStatus.OK


@pytest.mark.parametrize("layout", LAYOUTS, ids=LAYOUT_IDS)
def test_an_unread_seller_id_is_not_filled_with_the_buyers(layout) -> None:
    fields = parties_of(layout("上海松鼠创科技术有限责任公司", BUYER_ID, seller_id=None))
    assert fields["buyer_tax_id"].value == BUYER_ID
    assert fields["seller_tax_id"].value is None


def test_an_id_whose_label_was_not_read_is_found_in_its_block_and_sent_to_review() -> None:
    lines = fully_digital("上海松鼠创科技术有限责任公司", BUYER_ID)
    lines = [
        line("统一社会信甲代码/纳锐人枳别亏：" + BUYER_ID, 84, 362, 796, 400)
        if BUYER_ID in item.text
        else item
        for item in lines
    ]
    fields = parties_of(lines)
    assert fields["buyer_tax_id"].value == BUYER_ID
    assert fields["buyer_tax_id"].status == FieldStatus.NEEDS_REVIEW
    assert "without its label" in fields["buyer_tax_id"].reasons[0]
    assert fields["seller_tax_id"].value == SELLER_ID


def test_a_value_the_marks_place_in_the_other_block_goes_to_review() -> None:
    buyer_mark = line("购买方信息", 39, 272, 70, 420)
    seller_mark = line("销售方信息", 845, 267, 876, 419)
    blocks = PartyBlocks(
        page=0,
        columns=True,
        row_height=34,
        band_top=240,
        band_bottom=440,
        split_x=1400,  # a split found too far right
        markers=[],
    )
    from pipeline.extract.parties import Marker

    blocks.markers = [Marker("buyer", buyer_mark), Marker("seller", seller_mark)]
    shifted = Hit(SELLER_ID, (line(SELLER_ID, 1221, 361, 1575, 399),))
    checked = cross_check(blocks, "buyer", shifted)
    assert checked is not None and "seller (销售方) block" in checked.notes[0]
    assert cross_check(blocks, "seller", shifted) == shifted


def test_the_same_id_for_both_parties_is_never_auto_accepted() -> None:
    extraction = extract_fields(
        fully_digital("上海松鼠创科技术有限责任公司", SELLER_ID), FieldSource.OCR, 0.9
    )
    result = InvoiceResult(
        document_id="x", source_name="x.png", doc_type=DocType.FULLY_DIGITAL_GENERAL, fields=extraction.fields
    )
    validate_invoice(result)
    for name in ("buyer_tax_id", "seller_tax_id"):
        assert result.fields[name].status == FieldStatus.NEEDS_REVIEW, name
        assert any("same taxpayer ID" in reason for reason in result.fields[name].reasons)
