#!/usr/bin/env python3
"""Generate OFD and XML e-invoices with exact ground truth (deterministic).

* ``python scripts/make_einvoice_samples.py`` (re)writes the committed set in
  ``samples_einvoice/``; ``--list`` prints the cases.
* ``python scripts/make_einvoice_samples.py --out DIR --count N [--seed S]`` writes N random
  e-invoices (OFD and XML, blue and red-letter) into DIR, for benchmarks.

Every document ``<case>.<ext>`` comes with ``<case>.expected.json`` in the schema of
``scripts/make_samples.py`` (case, doc_type, files, fields, items, generator). The files are
written the way the tax platform's issuers write them, each case with a different mix of the
sources a reader must combine:

===================================  ==========================================================
vat_e_general_blue.ofd               增值税电子普通发票: CustomTag (values split "¥" + digits),
                                     CustomDatas, Attachs/original_invoice.xml, template page
fully_digital_red.ofd                数电 电子发票（普通发票）, red-letter (negative amounts):
                                     CustomTag and CustomDatas only, no attachment
fully_digital_special_blue.xml       数电票 XML (root EInvoice), 专票, three item lines
vat_e_general_red.xml                the older e-invoice XML (eInvoice, fp: namespace),
                                     red-letter with OriginalInvoiceCode/No
===================================  ==========================================================
"""

from __future__ import annotations

import argparse
import io
import json
import random
import zipfile
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pipeline.fapiao import USCC_ALPHABET, format_amount_words, uscc_check_char

REPO = Path(__file__).resolve().parents[1]

OUT = REPO / "samples_einvoice"
CENT = Decimal("0.01")
FP = "http://www.edrm.org.cn/schema/e-invoice/2019"
OFD_NS = "http://www.ofdspec.org/2016"

BUYERS = (
    "北京星河数据科技有限公司",
    "上海青松贸易有限公司",
    "杭州云帆网络科技有限公司",
    "深圳市前海恒信咨询有限公司",
)
SELLERS = (
    "北京安泰文化传媒股份有限公司",
    "南京爱洋文化传播有限公司",
    "成都锦城餐饮管理有限公司",
    "广州白云办公用品有限公司",
)
GOODS = (
    ("*信息技术服务*技术服务费", "", "项", Decimal("0.06")),
    ("*餐饮服务*餐费", "", "次", Decimal("0.06")),
    ("*纸制品*复印纸", "A4 70g", "箱", Decimal("0.13")),
    ("*文具*中性笔", "0.5mm", "盒", Decimal("0.13")),
    ("*运输服务*客运服务费", "", "次", Decimal("0.09")),
)


def uscc(rng: random.Random, region: str = "110108") -> str:
    body = "91" + region + "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


@dataclass
class Invoice:
    case: str
    kind: str  # "vat_e_general" or "fully_digital_general" / "fully_digital_special"
    red: bool
    number: str
    issue_date: str
    buyer_name: str
    buyer_tax_id: str
    seller_name: str
    seller_tax_id: str
    items: list[dict[str, str]]
    code: str | None = None
    check_code: str | None = None
    machine_no: str | None = None
    remarks: str = ""
    original: tuple[str | None, str] | None = None  # the blue invoice a red one reverses
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sign(self) -> Decimal:
        return Decimal(-1) if self.red else Decimal(1)

    @property
    def excl(self) -> Decimal:
        return sum((Decimal(i["amount"]) for i in self.items), Decimal(0))

    @property
    def tax(self) -> Decimal:
        return sum((Decimal(i["tax_amount"]) for i in self.items), Decimal(0))

    @property
    def total(self) -> Decimal:
        return self.excl + self.tax

    @property
    def title(self) -> str:
        if self.kind == "vat_e_general":
            return "北京增值税电子普通发票"
        return (
            "电子发票（增值税专用发票）" if self.kind == "fully_digital_special" else "电子发票（普通发票）"
        )

    @property
    def words(self) -> str:
        return format_amount_words(self.total)

    def truth(self, files: list[str], variant: str) -> dict[str, Any]:
        doc_type = "vat_e_invoice_general" if self.kind == "vat_e_general" else self.kind
        return {
            "case": self.case,
            "doc_type": doc_type,
            "variant": variant,
            "red_letter": self.red,
            "files": files,
            "fields": {
                "title": self.title,
                "invoice_code": self.code,
                "invoice_number": self.number,
                "issue_date": self.issue_date,
                "check_code": self.check_code,
                "machine_no": self.machine_no,
                "buyer_name": self.buyer_name,
                "buyer_tax_id": self.buyer_tax_id,
                "seller_name": self.seller_name,
                "seller_tax_id": self.seller_tax_id,
                "amount_excl_tax": f"{self.excl:.2f}",
                "tax_amount": f"{self.tax:.2f}",
                "total_amount": f"{self.total:.2f}",
                "total_amount_words": self.words,
                "tax_rates": sorted({i["tax_rate"] for i in self.items}),
            },
            "items": [dict(i) for i in self.items],
            "generator": {"script": "scripts/make_einvoice_samples.py"},
        }


def make_items(rng: random.Random, count: int, red: bool) -> list[dict[str, str]]:
    items = []
    for name, spec, unit, rate in rng.sample(GOODS, count):
        quantity = rng.randint(1, 20)
        price = Decimal(rng.randint(500, 90000)) / 100
        amount = (price * quantity).quantize(CENT)
        if red:
            amount, quantity = -amount, -quantity
        tax = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
        items.append(
            {
                "name": name,
                "spec": spec or None,
                "unit": unit,
                "quantity": str(quantity),
                "unit_price": f"{price:.2f}",
                "amount": f"{amount:.2f}",
                "tax_rate": f"{int(rate * 100)}%",
                "tax_amount": f"{tax:.2f}",
            }
        )
    return items


def random_invoice(rng: random.Random, case: str, kind: str, red: bool, items: int) -> Invoice:
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    year = 2024
    invoice = Invoice(
        case=case,
        kind=kind,
        red=red,
        number="",
        issue_date=f"{year}-{month:02d}-{day:02d}",
        buyer_name=rng.choice(BUYERS),
        buyer_tax_id=uscc(rng, "110105"),
        seller_name=rng.choice(SELLERS),
        seller_tax_id=uscc(rng, "110108"),
        items=make_items(rng, items, red),
    )
    if kind == "vat_e_general":
        invoice.code = f"0110023{rng.randint(0, 9)}0011"  # 0 + 1100 (Beijing) + 23 (year) + batch + 11
        invoice.code = invoice.code[:12]
        invoice.number = f"{rng.randint(0, 99999999):08d}"
        invoice.check_code = "".join(str(rng.randint(0, 9)) for _ in range(20))
        invoice.machine_no = "".join(str(rng.randint(0, 9)) for _ in range(12))
        if red:
            original = (invoice.code, f"{rng.randint(0, 99999999):08d}")
            invoice.original = original
            invoice.remarks = f"对应正数发票代码:{original[0]}号码:{original[1]}"
    else:
        invoice.number = f"{year % 100}11{rng.randint(2, 3)}" + "".join(
            str(rng.randint(0, 9)) for _ in range(15)
        )
        if red:
            original = f"{year % 100}112" + "".join(str(rng.randint(0, 9)) for _ in range(15))
            invoice.original = (None, original)
            invoice.remarks = (
                f"被红冲蓝字数电发票号码：{original} 红字发票信息确认单编号：{rng.randint(10**14, 10**15)}"
            )
    return invoice


# ---- XML -------------------------------------------------------------------------------------


def fp_xml(inv: Invoice) -> bytes:
    """The older e-invoice XML (also the OFD attachment original_invoice.xml)."""

    def tag(name: str, value: str | None) -> str:
        return f"<fp:{name}>{escape(value or '')}</fp:{name}>"

    goods = "".join(
        "<fp:GoodsInfo>"
        + tag("Item", i["name"])
        + tag("Specification", i["spec"])
        + tag("MeasurementDimension", i["unit"])
        + tag("Price", i["unit_price"])
        + tag("Quantity", i["quantity"])
        + tag("Amount", i["amount"])
        + tag("TaxScheme", i["tax_rate"])
        + tag("TaxAmount", i["tax_amount"])
        + "</fp:GoodsInfo>"
        for i in inv.items
    )
    original = ""
    if inv.original:
        original = tag("OriginalInvoiceCode", inv.original[0]) + tag("OriginalInvoiceNo", inv.original[1])
    y, m, d = inv.issue_date.split("-")
    body = (
        tag("DocID", "01")
        + tag("InvoiceCode", inv.code)
        + tag("InvoiceNo", inv.number)
        + tag("TypeCode", "1" if inv.red else "0")
        + tag("IssueDate", f"{y}年{m}月{d}日")
        + tag("InvoiceCheckCode", inv.check_code)
        + tag("MachineNo", inv.machine_no)
        + "<fp:Buyer>"
        + tag("BuyerName", inv.buyer_name)
        + tag("BuyerTaxID", inv.buyer_tax_id)
        + "</fp:Buyer><fp:Seller>"
        + tag("SellerName", inv.seller_name)
        + tag("SellerTaxID", inv.seller_tax_id)
        + "</fp:Seller>"
        + tag("TaxInclusiveTotalAmount", f"{inv.total:.2f}")
        + tag("Note", inv.remarks)
        + original
        + tag("TaxTotalAmount", f"{inv.tax:.2f}")
        + tag("TaxExclusiveTotalAmount", f"{inv.excl:.2f}")
        + f"<fp:GoodsInfos>{goods}</fp:GoodsInfos>"
    )
    return f'<?xml version="1.0" encoding="utf-8"?><eInvoice xmlns:fp="{FP}" Version="1.0">{body}</eInvoice>'.encode()


def digital_xml(inv: Invoice) -> bytes:
    """数电票 XML (root EInvoice)."""

    def tag(name: str, value: str | None) -> str:
        return f"<{name}>{escape(value or '')}</{name}>"

    lines = "".join(
        "<IssuItemInformation>"
        + tag("ItemName", i["name"])
        + tag("SpecMod", i["spec"])
        + tag("MeaUnits", i["unit"])
        + tag("Quantity", i["quantity"])
        + tag("UnPrice", i["unit_price"])
        + tag("Amount", i["amount"])
        + tag("TaxRate", str(Decimal(i["tax_rate"].rstrip("%")) / 100))
        + tag("ComTaxAm", i["tax_amount"])
        # The line's total incl. tax: a different field from the invoice's TotalTax-includedAmount.
        + tag("TotaltaxIncludedAmount", f"{Decimal(i['amount']) + Decimal(i['tax_amount']):.2f}")
        + "</IssuItemInformation>"
        for i in inv.items
    )
    special = inv.kind == "fully_digital_special"
    header = (
        "<Header><EIid>"
        + inv.number
        + "</EIid><EInvoiceTag>SWEI3200</EInvoiceTag><Version>0.1</Version><InherentLabel>"
        + "<EInvoiceType><LabelCode>"
        + ("01" if special else "02")
        + "</LabelCode><LabelName>"
        + ("增值税专用发票" if special else "普通发票")
        + "</LabelName></EInvoiceType></InherentLabel></Header>"
    )
    data = (
        "<EInvoiceData><SellerInformation>"
        + tag("SellerIdNum", inv.seller_tax_id)
        + tag("SellerName", inv.seller_name)
        + "</SellerInformation><BuyerInformation>"
        + tag("BuyerIdNum", inv.buyer_tax_id)
        + tag("BuyerName", inv.buyer_name)
        + "</BuyerInformation><BasicInformation>"
        + tag("TotalAmWithoutTax", f"{inv.excl:.2f}")
        + tag("TotalTaxAm", f"{inv.tax:.2f}")
        + tag("TotalTax-includedAmount", f"{inv.total:.2f}")
        + tag("TotalTax-includedAmountInChinese", inv.words)
        + tag("Drawer", "王芳")
        + "</BasicInformation>"
        + lines
        + "<AdditionalInformation>"
        + tag("Remark", inv.remarks)
        + "</AdditionalInformation></EInvoiceData>"
    )
    supervision = (
        "<TaxSupervisionInfo>"
        + tag("InvoiceNumber", inv.number)
        + tag("IssueTime", f"{inv.issue_date} 10:{len(inv.items):02d}:00")
        + tag("TaxBureauCode", "11100000000")
        + "</TaxSupervisionInfo>"
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><EInvoice>{header}{data}{supervision}</EInvoice>'.encode()


# ---- OFD -------------------------------------------------------------------------------------


class OfdPage:
    """Text objects and frame paths of one page, with IDs the CustomTag file can point at."""

    def __init__(self, first_id: int) -> None:
        self.next_id = first_id
        self.objects: list[str] = []

    def text(self, x: float, y: float, value: str, size: float = 3.175, color: str = "0 0 0") -> int:
        object_id = self.next_id
        self.next_id += 1
        advances = [size if ord(ch) >= 0x2E80 else size / 2 for ch in value]
        width = sum(advances) + 1
        delta = " ".join(f"{a:g}" for a in advances[:-1])
        self.objects.append(
            f'<ofd:TextObject ID="{object_id}" Boundary="{x:g} {y:g} {width:g} {size * 1.4:g}" Font="3" Size="{size:g}">'
            f'<ofd:FillColor Value="{color}"/><ofd:TextCode X="0" Y="{size:g}" DeltaX="{delta}">{escape(value)}'
            "</ofd:TextCode></ofd:TextObject>"
        )
        return object_id

    def line(self, x: float, y: float, w: float, h: float) -> None:
        object_id = self.next_id
        self.next_id += 1
        self.objects.append(
            f'<ofd:PathObject ID="{object_id}" Boundary="{x:g} {y:g} {max(w, 0.3):g} {max(h, 0.3):g}" LineWidth="0.25">'
            f'<ofd:StrokeColor Value="156 82 35"/><ofd:AbbreviatedData>M 0 0 L {w:g} {h:g}</ofd:AbbreviatedData>'
            "</ofd:PathObject>"
        )

    def xml(self, template: bool = False) -> str:
        head = "" if template else '<ofd:Template TemplateID="2" ZOrder="Background"/>'
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page xmlns:ofd="{OFD_NS}">{head}<ofd:Content>'
            f'<ofd:Layer ID="{self.next_id}">{"".join(self.objects)}</ofd:Layer></ofd:Content></ofd:Page>'
        )


def ofd_file(inv: Invoice, with_attachment: bool) -> bytes:
    brown = "156 82 35"
    template = OfdPage(10)
    page = OfdPage(100)
    refs: dict[str, list[int]] = {}
    template.text(70, 6, inv.title, 6.0, brown)
    y = 6.0
    head = [("发票号码：", "InvoiceNo", inv.number)]
    if inv.code:
        head.insert(0, ("发票代码：", "InvoiceCode", inv.code))
    y_date = inv.issue_date.split("-")
    head.append(("开票日期：", "IssueDate", f"{y_date[0]}年{y_date[1]}月{y_date[2]}日"))
    if inv.check_code:
        cc = inv.check_code
        head.append(("校验码：", "InvoiceCheckCode", " ".join(cc[i : i + 5] for i in range(0, 20, 5))))
    for label, tag_name, value in head:
        template.text(138, y, label, 3.175, brown)
        refs[tag_name] = [page.text(160, y, value)]
        y += 5
    if inv.machine_no:
        template.text(8, 24, "机器编号：", 3.175, brown)
        refs["MachineNo"] = [page.text(26, 24, inv.machine_no)]
    for x0, y0, w, h in (
        (5, 30, 200, 0),
        (5, 30, 0, 92),
        (205, 30, 0, 92),
        (5, 122, 200, 0),
        (5, 53, 200, 0),
        (5, 100, 200, 0),
    ):
        template.line(x0, y0, w, h)
    for side, top in (("Buyer", 33), ("Seller", 104)):
        who = "购买方" if side == "Buyer" else "销售方"
        template.text(8, top, f"{who}名称：", 3.175, brown)
        template.text(8, top + 6, "纳税人识别号：", 3.175, brown)
        name = inv.buyer_name if side == "Buyer" else inv.seller_name
        tax_id = inv.buyer_tax_id if side == "Buyer" else inv.seller_tax_id
        refs[f"{side}/{side}Name"] = [page.text(34, top, name)]
        refs[f"{side}/{side}TaxID"] = [page.text(34, top + 6, tax_id, 3.6)]
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
        template.text(x, 55, label, 3.175, brown)
    keys = ("name", "spec", "unit", "quantity", "unit_price", "amount", "tax_rate", "tax_amount")
    goods: list[dict[str, int]] = []
    for row, item in enumerate(inv.items):
        ids = {}
        for (x, _), key in zip(columns, keys, strict=True):
            if item[key]:
                ids[key] = page.text(x, 61 + row * 5, item[key], 2.8)
        goods.append(ids)
    template.text(8, 92, "合计", 3.175, brown)
    refs["TaxExclusiveTotalAmount"] = [page.text(134, 92, "¥"), page.text(137, 92, f"{inv.excl:.2f}")]
    refs["TaxTotalAmount"] = [page.text(176, 92, "¥"), page.text(179, 92, f"{inv.tax:.2f}")]
    template.text(8, 96, "价税合计（大写）", 3.175, brown)
    page.text(40, 96, inv.words)
    template.text(134, 96, "（小写）", 3.175, brown)
    refs["TaxInclusiveTotalAmount"] = [page.text(150, 96, "¥"), page.text(153, 96, f"{inv.total:.2f}")]
    if inv.remarks:
        template.text(120, 104, "备注", 3.175, brown)
        page.text(128, 110, inv.remarks[:30], 2.5)
        if len(inv.remarks) > 30:
            page.text(128, 114, inv.remarks[30:], 2.5)

    def ref(ids: list[int]) -> str:
        return "".join(f'<ofd:ObjectRef PageRef="1">{i}</ofd:ObjectRef>' for i in ids)

    tags = ""
    for tag_name in ("InvoiceCode", "InvoiceNo", "IssueDate", "InvoiceCheckCode", "MachineNo"):
        if tag_name in refs:
            tags += f"<{tag_name}>{ref(refs[tag_name])}</{tag_name}>"
    for side in ("Buyer", "Seller"):
        tags += f"<{side}><{side}Name>{ref(refs[f'{side}/{side}Name'])}</{side}Name><{side}TaxID>{ref(refs[f'{side}/{side}TaxID'])}</{side}TaxID></{side}>"
    for tag_name in ("TaxExclusiveTotalAmount", "TaxTotalAmount", "TaxInclusiveTotalAmount"):
        tags += f"<{tag_name}>{ref(refs[tag_name])}</{tag_name}>"
    tag_keys = {
        "name": "Item",
        "spec": "Specification",
        "unit": "MeasurementDimension",
        "quantity": "Quantity",
        "unit_price": "Price",
        "amount": "Amount",
        "tax_rate": "TaxScheme",
        "tax_amount": "TaxAmount",
    }
    tags += (
        "<GoodsInfos>"
        + "".join(
            "<GoodsInfo>"
            + "".join(f"<{tag_keys[k]}>{ref([v])}</{tag_keys[k]}>" for k, v in ids.items())
            + "</GoodsInfo>"
            for ids in goods
        )
        + "</GoodsInfos>"
    )
    custom_tag = f'<?xml version="1.0" encoding="UTF-8"?><eInvoice xmlns:ofd="{OFD_NS}">{tags}</eInvoice>'
    y, m, d = inv.issue_date.split("-")
    custom = {
        "发票代码": inv.code,
        "发票号码": inv.number,
        "开票日期": f"{y}年{m}月{d}日",
        "校验码": inv.check_code,
        "购买方纳税人识别号": inv.buyer_tax_id,
        "销售方纳税人识别号": inv.seller_tax_id,
        "合计金额": f"{inv.excl:.2f}",
        "合计税额": f"{inv.tax:.2f}",
    }
    custom_datas = "".join(
        f'<ofd:CustomData Name="{k}">{escape(v)}</ofd:CustomData>' for k, v in custom.items() if v
    )
    ofd_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="{OFD_NS}" DocType="OFD" Version="1.1">'
        f"<ofd:DocBody><ofd:DocInfo><ofd:DocID>{inv.number}</ofd:DocID><ofd:Author>make_einvoice_samples</ofd:Author>"
        f"<ofd:CustomDatas>{custom_datas}</ofd:CustomDatas></ofd:DocInfo>"
        "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    attachments = "<ofd:Attachments>Attachs/Attachments.xml</ofd:Attachments>" if with_attachment else ""
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="{OFD_NS}"><ofd:CommonData>'
        "<ofd:MaxUnitID>999</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 140</ofd:PhysicalBox></ofd:PageArea>"
        '<ofd:PublicRes>PublicRes.xml</ofd:PublicRes><ofd:TemplatePage ID="2" BaseLoc="Tpls/Tpl_0/Content.xml"/>'
        '</ofd:CommonData><ofd:Pages><ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages>'
        f"{attachments}<ofd:CustomTags>Tags/CustomTags.xml</ofd:CustomTags></ofd:Document>"
    )
    public_res = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Res xmlns:ofd="{OFD_NS}" BaseLoc="Res"><ofd:Fonts>'
        '<ofd:Font ID="3" FontName="宋体" FamilyName="宋体"/></ofd:Fonts></ofd:Res>'
    )
    custom_tags = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:CustomTags xmlns:ofd="{OFD_NS}"><ofd:CustomTag TypeID="">'
        "<ofd:FileLoc>CustomTag.xml</ofd:FileLoc></ofd:CustomTag></ofd:CustomTags>"
    )
    members = {
        "OFD.xml": ofd_xml,
        "Doc_0/Document.xml": document,
        "Doc_0/PublicRes.xml": public_res,
        "Doc_0/Tpls/Tpl_0/Content.xml": template.xml(template=True),
        "Doc_0/Pages/Page_0/Content.xml": page.xml(),
        "Doc_0/Tags/CustomTags.xml": custom_tags,
        "Doc_0/Tags/CustomTag.xml": custom_tag,
    }
    if with_attachment:
        members["Doc_0/Attachs/Attachments.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?><ofd:Attachments xmlns:ofd="{OFD_NS}">'
            '<ofd:Attachment ID="1" Name="original_invoice" Format="xml"><ofd:FileLoc>original_invoice.xml</ofd:FileLoc>'
            "</ofd:Attachment></ofd:Attachments>"
        )
        members["Doc_0/Attachs/original_invoice.xml"] = fp_xml(inv).decode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 6, 1, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


# ---- cases -----------------------------------------------------------------------------------

SAMPLE_CASES = {
    "vat_e_general_blue": ("vat_e_general", False, 2, "ofd", True, 1401),
    "fully_digital_red": ("fully_digital_general", True, 2, "ofd", False, 1402),
    "fully_digital_special_blue": ("fully_digital_special", False, 3, "xml", False, 1403),
    "vat_e_general_red": ("vat_e_general", True, 2, "xml", False, 1404),
}


def make_case(
    case: str, kind: str, red: bool, items: int, fmt: str, attachment: bool, seed: int
) -> tuple[bytes, dict[str, Any]]:
    inv = random_invoice(random.Random(seed), case, kind, red, items)
    if fmt == "ofd":
        data = ofd_file(inv, with_attachment=attachment)
        variant = "ofd_" + ("attachment_customtag_customdatas" if attachment else "customtag_customdatas")
    else:
        data = fp_xml(inv) if kind == "vat_e_general" else digital_xml(inv)
        variant = "xml_fp_einvoice" if kind == "vat_e_general" else "xml_digital_einvoice"
    return data, inv.truth([f"{case}.{fmt}"], variant)


def write(out: Path, case: str, data: bytes, truth: dict[str, Any]) -> None:
    (out / truth["files"][0]).write_bytes(data)
    (out / f"{case}.expected.json").write_text(
        json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=None, help=f"folder (default {OUT.relative_to(REPO)}/)")
    parser.add_argument(
        "--count", type=int, default=0, help="write N random e-invoices instead of the committed set"
    )
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--list", action="store_true", help="print the committed cases")
    args = parser.parse_args(argv)
    if args.list:
        for name, spec in SAMPLE_CASES.items():
            print(name, *spec[:4])
        return 0
    out = args.out or OUT
    out.mkdir(parents=True, exist_ok=True)
    if args.count:
        rng = random.Random(args.seed)
        kinds = ("vat_e_general", "fully_digital_general", "fully_digital_special")
        for n in range(args.count):
            kind, red, fmt = rng.choice(kinds), rng.random() < 0.3, rng.choice(("ofd", "xml"))
            data, truth = make_case(
                f"einvoice_{n:04d}",
                kind,
                red,
                rng.randint(1, 4),
                fmt,
                rng.random() < 0.5,
                rng.randint(0, 10**9),
            )
            write(out, truth["case"], data, truth)
        print(f"wrote {args.count} e-invoices to {out}")
        return 0
    for case, spec in SAMPLE_CASES.items():
        data, truth = make_case(case, *spec)
        write(out, case, data, truth)
        print(f"wrote {truth['files'][0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
