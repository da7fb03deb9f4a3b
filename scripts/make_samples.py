#!/usr/bin/env python3
"""Generate realistic sample invoices with exact ground truth (deterministic, seeded).

Two modes:

* ``python scripts/make_samples.py`` (re)writes the committed sample set in ``samples/``;
  ``--case NAME`` limits it to some cases, ``--list`` prints them.
* ``python scripts/make_samples.py --out DIR --count N [--seed S] [--pdf]`` writes N random
  invoices (random kind, random degradations) into DIR for benchmarks.

Every document ``<case>.<ext>`` comes with ``<case>.expected.json``::

    {"case": ..., "doc_type": "vat_special_paper" | "vat_general_paper" | "vat_e_invoice_general"
                              | "fully_digital_general" | "fully_digital_special" | "generic_invoice",
     "variant": "...", "files": [document file names],
     "fields": {title, invoice_code, invoice_number, issue_date, check_code, machine_no,
                buyer_name, buyer_tax_id, seller_name, seller_tax_id, amount_excl_tax,
                tax_amount, total_amount, total_amount_words, tax_rates},
     "items": [{name, spec, unit, quantity, unit_price, amount, tax_rate, tax_amount}],
     "qr_payload": "01,..." | null,
     "degradations": [{"op": ..., ...}], "image": {...} | null, "generator": {...}}

English invoices (``generic_invoice``) have the fields vendor_name, invoice_number, issue_date,
total_amount, amount_excl_tax, tax_amount, currency, vendor_tax_id.  Amounts are strings with
two decimals, dates ISO (YYYY-MM-DD), null where the kind of invoice has no such field.

The committed set (``samples/``, at most 26 files and 5 MB):

=====================================  ======================================================
vat_special_clean.png                  paper 增值税专用发票, clean 200 dpi scan (240x146 mm)
vat_general_photo.jpg                  paper 增值税普通发票, phone photo: perspective, darker
                                       textured table, uneven light and a shadow
vat_e_general.pdf                      增值税电子普通发票, born-digital PDF with a text layer
fully_digital_general.pdf              全电 电子发票（普通发票）, born-digital PDF with a text layer
fully_digital_special_rot90.png        全电 电子发票（增值税专用发票）, image rotated 90°
vat_special_seal_rot180.jpg            paper 专票 rotated 180°, the seal over the seller's name
vat_general_degraded.jpg               paper 普票 rotated 3°, blurred, noisy, heavy JPEG artefacts
vat_e_general_skew.png                 电子普通发票 image rotated a few degrees, uneven light
en_invoice.png / en_invoice.pdf        one English invoice as a 200 dpi image and as a PDF with
                                       a text layer (one expected.json for both)
vat_e_general_private.pdf              电子普通发票 PDF whose buyer is 个人: no buyer ID printed
fully_digital_general_private.jpg      全电 普通发票 image whose buyer is a person's name, ID empty
vat_general_private_scan.jpg           paper 普票 scan, a person as buyer: ID, address, bank empty
corrupt_truncated.jpg                  the first third of a real JPEG: must fail with a clear
                                       error (no expected.json)
=====================================  ======================================================

Ground truth is exact by construction: each line's tax = round(amount x rate, 2) (half up),
totals are sums, ``total_amount_words`` comes from :func:`amount_in_words` (元 on paper and
provincial e-invoices, 圆 on 全电 invoices, as printed on real ones), taxpayer IDs are valid
GB 32100-2015 unified social credit codes, invoice codes follow docs FAPIAO.md (region 1100 =
Beijing, year = the issue year: 10-digit ``1100YYB130`` on 专票, 12-digit ``01100YYBBB04`` on
普票, ``...11`` on 电子普票; 全电 have a 20-digit number ``YY11`` + channel + sequence and no
code).  QR payload: ``01,<type>,<code>,<number>,<amount>,<YYYYMMDD>,<check code>,<4 hex>``:
types 01 专票 / 04 普票 / 10 电子普票 carry the amount excluding tax and a trailing comma;
全电 use types 31 (专票) / 32 (普票), an empty code and the total including tax, as real ones do.

Layout follows real invoices (QR top left, centred title with the red 监制章, code / number /
date / check code top right, buyer and seller blocks, 密码区, items table, 价税合计, 备注,
收款人 / 复核 / 开票人, the seller's red oval 发票专用章 with its tax ID).  Form print is the
brownish red of real forms, values black (blue-black and slightly shifted on paper).  Values
are at least 3.4 mm high (27 px at 200 dpi).  Needs the WenQuanYi fonts (``apt-get install
fonts-wqy-microhei``) and DejaVu; PDFs need ``fpdf2`` (fonts are embedded as subsets).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import random
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import zxingcpp
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "samples"
DEFAULT_SEED = 20240611
DPI = 200
PPM = DPI / 25.4  # pixels per millimetre

# --------------------------------------------------------------------------------------------
# Money, words, IDs
# --------------------------------------------------------------------------------------------

CENT = Decimal("0.01")
CN_DIGITS = "零壹贰叁肆伍陆柒捌玖"


def q2(value: Decimal | int | float | str) -> Decimal:
    """Round to the fen, half up (how invoicing software rounds)."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> str:
    return f"{q2(value):.2f}"


def _integer_words(n: int) -> str:
    units = ("仟", "佰", "拾", "")
    bigs = ("", "万", "亿", "万亿")
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out = ""
    zero_pending = False
    for gi in range(len(groups) - 1, -1, -1):
        g = groups[gi]
        if g == 0:
            zero_pending = bool(out)
            continue
        for pos, ch in enumerate(f"{g:04d}"):
            digit = int(ch)
            if digit == 0:
                zero_pending = zero_pending or bool(out)
                continue
            if zero_pending:
                out += "零"
                zero_pending = False
            out += CN_DIGITS[digit] + units[pos]
        out += bigs[gi]
        zero_pending = False
    return out


def amount_in_words(value: Decimal | str | float, yuan: str = "元") -> str:
    """Standard capital form of an amount: 600.20 -> 陆佰元零贰角, 7018.83 -> 柒仟零壹拾捌元捌角叁分,
    1500.00 -> 壹仟伍佰元整, 0.05 -> 伍分.  ``yuan`` is 元 or 圆 (both occur on real invoices)."""
    amount = q2(value)
    if amount < 0:
        return "负" + amount_in_words(-amount, yuan)
    cents = int(amount * 100)
    integer, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    out = _integer_words(integer) + yuan if integer else ""
    if jiao == 0 and fen == 0:
        return (out or "零" + yuan) + "整"
    if jiao:
        if integer and integer % 10 == 0:
            out += "零"
        out += CN_DIGITS[jiao] + "角"
    elif integer:
        out += "零"
    if fen:
        out += CN_DIGITS[fen] + "分"
    return out


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def uscc_check_char(body17: str) -> str:
    """GB 32100-2015 check character of the first 17 characters of a credit code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_is_valid(code: str) -> bool:
    return (
        len(code) == 18 and all(c in USCC_ALPHABET for c in code) and uscc_check_char(code[:17]) == code[17]
    )


def _org_code(rng: random.Random) -> str:
    """9-character organisation code (GB 11714) with its own check character."""
    if rng.random() < 0.5:
        body = "MA" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, weights, strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def make_uscc(rng: random.Random, region: str) -> str:
    """A valid 18-character unified social credit code for an enterprise (91...) in ``region``."""
    body = "91" + region + _org_code(rng)
    return body + uscc_check_char(body)


# --------------------------------------------------------------------------------------------
# Random but plausible data
# --------------------------------------------------------------------------------------------

BEIJING_DISTRICTS = {
    "110101": ("东城区", ["东直门南大街", "建国门内大街", "王府井大街"]),
    "110102": ("西城区", ["金融大街", "西直门外大街", "宣武门西大街"]),
    "110105": ("朝阳区", ["建国路", "望京街", "酒仙桥路", "东三环中路"]),
    "110106": ("丰台区", ["南四环西路", "丽泽路"]),
    "110108": ("海淀区", ["中关村大街", "知春路", "上地十街", "学院路"]),
    "110114": ("昌平区", ["回龙观西大街", "科技园区超前路"]),
    "110115": ("大兴区", ["经济技术开发区科创十三街", "兴华大街"]),
}
OTHER_CITIES = {
    "310115": ("上海", "上海市浦东新区", ["张江路", "世纪大道", "陆家嘴环路"], "021"),
    "440305": ("深圳", "深圳市南山区", ["科技园南区高新南七道", "深南大道"], "0755"),
    "440106": ("广州", "广州市天河区", ["天河路", "珠江新城华夏路"], "020"),
    "330106": ("杭州", "杭州市西湖区", ["文三路", "古墩路"], "0571"),
    "120116": ("天津", "天津市滨海新区", ["洞庭路", "第三大街"], "022"),
    "510107": ("成都", "成都市武侯区", ["天府大道", "科华北路"], "028"),
}
NAME_CORES = [
    "华信", "中联", "博远", "同创", "瑞达", "天润", "鼎盛", "金桥", "蓝海", "京华", "恒通", "云帆",
    "星河", "启明", "海纳", "智源", "凯德", "远景", "汇丰源", "长城", "新纪元", "众合", "安泰", "宏图",
]  # fmt: skip
NAME_TRADES = [
    "科技", "信息技术", "网络科技", "软件", "商贸", "文化传媒", "物流", "餐饮管理", "建筑工程",
    "咨询", "电子", "医疗器械", "数据服务", "广告", "酒店管理", "教育科技",
]  # fmt: skip
NAME_SUFFIXES = ["有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司"]
PEOPLE = [
    "王磊", "李文莉", "张伟", "刘洋", "陈静", "杨帆", "赵敏", "黄丽红", "周杰", "吴芳", "孙浩", "马丽",
    "朱琳", "胡军", "郭涛", "何雪", "林峰", "高洁", "罗刚", "梁婷",
]  # fmt: skip
BANKS = ["中国工商银行", "中国建设银行", "招商银行", "中国银行", "交通银行", "中国民生银行", "北京银行"]
BRANCHES = ["营业部", "高新区支行", "开发区支行", "科技园支行", "城东支行", "中心支行", "分行营业部"]

# name, spec choices, unit choices, rate choices (percent), goods?
ITEM_CATALOG: list[tuple[str, list[str], list[str], list[int], bool]] = [
    ("*信息技术服务*软件开发费", [""], ["项", "次", ""], [6], False),
    ("*信息技术服务*技术服务费", [""], ["项", "次"], [6], False),
    ("*现代服务*技术咨询费", [""], ["次", "项"], [6], False),
    ("*现代服务*会议服务费", [""], ["次"], [6], False),
    ("*经纪代理服务*服务费", [""], ["次", ""], [6], False),
    ("*餐饮服务*餐饮服务", [""], ["次", ""], [6, 1], False),
    ("*住宿服务*住宿费", [""], ["天", "间"], [6], False),
    ("*运输服务*客运服务费", [""], ["次"], [9, 3], False),
    ("*物流辅助服务*收派服务费", [""], ["票", "次"], [6], False),
    ("*广告服务*广告发布费", [""], ["项"], [6], False),
    ("*电信服务*基础电信服务", [""], ["月"], [9], False),
    ("*计算机配套产品*硒鼓", ["CF280A", "HP88A", "TN-2325"], ["个", "支"], [13], True),
    ("*纸制品*复印纸", ["A4 70g", "A4 80g", "A3 80g"], ["箱", "包"], [13], True),
    ("*计算机外部设备*激光打印机", ["M403d", "LBP2900", "P1108"], ["台"], [13], True),
    ("*电子计算机*笔记本电脑", ["ThinkPad E14", "MateBook 14", "X13"], ["台"], [13], True),
    ("*办公设备*投影仪", ["CB-X06", "H6510BD"], ["台"], [13], True),
    ("*文具*中性笔", ["0.5mm", "0.38mm"], ["盒"], [13], True),
    ("*日用杂品*办公用品", [""], ["批"], [13], True),
]

TITLES = {
    "vat_special_paper": "北京增值税专用发票",
    "vat_general_paper": "北京增值税普通发票",
    "vat_e_invoice_general": "北京增值税电子普通发票",
    "fully_digital_general": "电子发票（普通发票）",
    "fully_digital_special": "电子发票（增值税专用发票）",
}
QR_TYPES = {
    "vat_special_paper": "01",
    "vat_general_paper": "04",
    "vat_e_invoice_general": "10",
    "fully_digital_special": "31",
    "fully_digital_general": "32",
}
CN_DOC_TYPES = tuple(TITLES)
FULLY_DIGITAL = ("fully_digital_general", "fully_digital_special")


@dataclass
class Party:
    name: str
    tax_id: str
    address_phone: str
    bank_account: str


@dataclass
class Item:
    name: str
    spec: str
    unit: str
    quantity: str | None
    unit_price: str | None
    amount: Decimal
    rate: int
    tax: Decimal

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.spec or None,
            "unit": self.unit or None,
            "quantity": self.quantity,
            "unit_price": self.unit_price,
            "amount": money(self.amount),
            "tax_rate": f"{self.rate}%",
            "tax_amount": money(self.tax),
        }


@dataclass
class CnInvoice:
    doc_type: str
    title: str
    code: str | None
    number: str
    date: dt.date
    check_code: str | None
    machine_no: str | None
    buyer: Party
    seller: Party
    items: list[Item]
    payee: str
    reviewer: str
    drawer: str
    cipher: list[str]
    qr_random: str
    remark: list[str] = field(default_factory=list)

    @property
    def amount(self) -> Decimal:
        return sum((i.amount for i in self.items), Decimal("0.00"))

    @property
    def tax(self) -> Decimal:
        return sum((i.tax for i in self.items), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.amount + self.tax

    @property
    def yuan(self) -> str:
        return "圆" if self.doc_type in FULLY_DIGITAL else "元"

    @property
    def words(self) -> str:
        return amount_in_words(self.total, self.yuan)

    @property
    def qr_payload(self) -> str:
        fully = self.doc_type in FULLY_DIGITAL
        parts = [
            "01",
            QR_TYPES[self.doc_type],
            self.code or "",
            self.number,
            money(self.total if fully else self.amount),
            self.date.strftime("%Y%m%d"),
            self.check_code or "",
            self.qr_random,
        ]
        return ",".join(parts) + ("" if fully else ",")

    def truth(self) -> dict[str, Any]:
        rates: list[str] = []
        for it in self.items:
            if f"{it.rate}%" not in rates:
                rates.append(f"{it.rate}%")
        return {
            "fields": {
                "title": self.title,
                "invoice_code": self.code,
                "invoice_number": self.number,
                "issue_date": self.date.isoformat(),
                "check_code": self.check_code,
                "machine_no": self.machine_no,
                "buyer_name": self.buyer.name,
                "buyer_tax_id": self.buyer.tax_id or None,  # a private buyer prints no ID
                "seller_name": self.seller.name,
                "seller_tax_id": self.seller.tax_id,
                "amount_excl_tax": money(self.amount),
                "tax_amount": money(self.tax),
                "total_amount": money(self.total),
                "total_amount_words": self.words,
                "tax_rates": rates,
            },
            "items": [it.to_json() for it in self.items],
            "qr_payload": self.qr_payload,
        }


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _company(rng: random.Random, city: str, beijing: bool) -> str:
    core, trade, suffix = rng.choice(NAME_CORES), rng.choice(NAME_TRADES), rng.choice(NAME_SUFFIXES)
    if rng.random() < 0.3:
        return f"{core}（{city}）{trade}{suffix}"
    if beijing or rng.random() < 0.8:
        return f"{city}{core}{trade}{suffix}"
    return f"{core}{trade}{suffix}"


def make_party(rng: random.Random, beijing: bool) -> Party:
    if beijing:
        region = rng.choice(sorted(BEIJING_DISTRICTS))
        district, streets = BEIJING_DISTRICTS[region]
        city, place, phone_area = "北京", "北京市" + district, "010"
    else:
        region = rng.choice(sorted(OTHER_CITIES))
        city, place, streets, phone_area = OTHER_CITIES[region]
    address = f"{place}{rng.choice(streets)}{rng.randint(1, 199)}号"
    if rng.random() < 0.5:
        address += f"{rng.randint(1, 12)}层{rng.randint(1, 30):02d}室"
    phone = f"{phone_area}-{rng.randint(5, 8)}{_digits(rng, 7)}"
    bank = f"{rng.choice(BANKS)}{city}{rng.choice(BRANCHES)} {_digits(rng, rng.choice((12, 16, 19)))}"
    return Party(_company(rng, city, beijing), make_uscc(rng, region), f"{address} {phone}", bank)


PRIVATE_BUYERS = ("个人", "person")


def private_buyer(rng: random.Random, kind: str) -> Party:
    """A private person as buyer (ride-hailing, phone, shops): the ID, address and bank cells stay empty.

    ``kind`` is ``个人`` (printed as is) or ``person`` (a person's name).
    """
    name = "个人" if kind == "个人" else rng.choice(PEOPLE)
    return Party(name, "", "", "")


def _price_str(amount: Decimal, qty: int) -> str:
    price = (amount / qty).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP)
    text = f"{price:f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def make_items(rng: random.Random, fully_digital: bool) -> list[Item]:
    n = rng.choices((1, 2, 3), weights=(5, 3, 2))[0]
    items: list[Item] = []
    for entry in rng.sample(ITEM_CATALOG, n):
        name, specs, units, rates, goods = entry
        rate = rng.choice(rates)
        qty = rng.randint(1, 20) if goods else rng.choice((1, 1, 1, 2, 3))
        amount = q2(
            Decimal(rng.randint(900, 1_200_000)) / 100 if goods else rng.randint(2_000, 2_500_000) / 100
        )
        if n == 1 and rng.random() < 0.5:
            amount = _amount_for_round_total(rng, rate) or amount
        unit = rng.choice(units)
        quantity: str | None = str(qty)
        price: str | None = _price_str(amount, qty)
        if fully_digital and not goods and rng.random() < 0.5:
            quantity = price = None
            unit = ""
        items.append(
            Item(name, rng.choice(specs), unit, quantity, price, amount, rate, q2(amount * rate / 100))
        )
    return items


def _amount_for_round_total(rng: random.Random, rate: int) -> Decimal | None:
    """An amount whose amount + round(amount*rate) is a round total (as when a price includes tax)."""
    total = Decimal(rng.choice((rng.randint(2, 600) * 5, rng.randint(10, 3000)))) * (
        Decimal("0.1") if rng.random() < 0.2 else 1
    )
    base = q2(total / (1 + Decimal(rate) / 100))
    for candidate in (base, base - CENT, base + CENT):
        if candidate > 0 and candidate + q2(candidate * rate / 100) == total:
            return candidate
    return None


def random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, (end - start).days))


def make_cn_invoice(rng: random.Random, doc_type: str) -> CnInvoice:
    fully = doc_type in FULLY_DIGITAL
    if fully:
        date = random_date(rng, dt.date(2023, 1, 1), dt.date(2025, 12, 31))
    else:
        date = random_date(rng, dt.date(2019, 4, 1), dt.date(2024, 12, 31))
    yy = f"{date.year % 100:02d}"
    code: str | None
    if doc_type == "vat_special_paper":
        code = f"1100{yy}{rng.randint(1, 4)}130"
    elif doc_type == "vat_general_paper":
        code = f"01100{yy}{rng.randint(1, 9):03d}04"
    elif doc_type == "vat_e_invoice_general":
        code = f"01100{yy}{rng.randint(1, 9):03d}11"
    else:
        code = None
    number = f"{yy}11{rng.choice('27')}{rng.randint(0, 10**11):015d}" if fully else _digits(rng, 8)
    check = _digits(rng, 20) if doc_type in ("vat_general_paper", "vat_e_invoice_general") else None
    machine = _digits(rng, 12) if doc_type in ("vat_general_paper", "vat_e_invoice_general") else None
    buyer = make_party(rng, beijing=rng.random() < 0.6)
    seller = make_party(rng, beijing=True)
    while seller.name == buyer.name:
        seller = make_party(rng, beijing=True)
    items = make_items(rng, fully)
    people = rng.sample(PEOPLE, 3)
    cipher = ["".join(rng.choice("0123456789+-*/<>") for _ in range(28)) for _ in range(4)]
    inv = CnInvoice(
        doc_type=doc_type,
        title=TITLES[doc_type],
        code=code,
        number=number,
        date=date,
        check_code=check,
        machine_no=machine,
        buyer=buyer,
        seller=seller,
        items=items,
        payee=people[0],
        reviewer=people[1],
        drawer=people[2],
        cipher=cipher,
        qr_random=f"{rng.randrange(16**4):04X}",
    )
    if doc_type == "fully_digital_special":
        inv.remark = [
            f"购方开户银行:{buyer.bank_account.split()[0]};  银行账号:{buyer.bank_account.split()[1]};",
            f"销方开户银行:{seller.bank_account.split()[0]};  银行账号:{seller.bank_account.split()[1]};",
        ]
    elif rng.random() < 0.4:
        inv.remark = [f"合同编号：HT{date.year}{_digits(rng, 5)}"]
    return inv


# English ------------------------------------------------------------------------------------

EN_VENDORS = [
    {
        "name": "Northwind Traders Ltd.",
        "address": ["14 Bishopsgate Yard", "London EC2N 4AJ", "United Kingdom"],
        "currency": "GBP",
        "symbol": "£",
        "tax_label": "VAT",
        "rate": Decimal("20"),
        "tax_id_label": "VAT Reg. No.",
        "tax_id": lambda r: "GB" + _digits(r, 9),
        "date_fmt": "%d %B %Y",
    },
    {
        "name": "Blauwal Software GmbH",
        "address": ["Torstraße 118", "10119 Berlin", "Germany"],
        "currency": "EUR",
        "symbol": "€",
        "tax_label": "VAT",
        "rate": Decimal("19"),
        "tax_id_label": "VAT ID",
        "tax_id": lambda r: "DE" + _digits(r, 9),
        "date_fmt": "%d.%m.%Y",
    },
    {
        "name": "Acme Office Supplies Inc.",
        "address": ["350 Hudson Street, Suite 900", "New York, NY 10014", "USA"],
        "currency": "USD",
        "symbol": "$",
        "tax_label": "Sales Tax",
        "rate": Decimal("8.875"),
        "tax_id_label": "EIN",
        "tax_id": lambda r: f"{_digits(r, 2)}-{_digits(r, 7)}",
        "date_fmt": "%m/%d/%Y",
    },
    {
        "name": "Brightline Logistics B.V.",
        "address": ["Keizersgracht 241", "1016 EA Amsterdam", "The Netherlands"],
        "currency": "EUR",
        "symbol": "€",
        "tax_label": "VAT",
        "rate": Decimal("21"),
        "tax_id_label": "VAT No.",
        "tax_id": lambda r: f"NL{_digits(r, 9)}B01",
        "date_fmt": "%Y-%m-%d",
    },
]
EN_CUSTOMERS = [
    ("Harbour & Finch Architects", ["22 Quay Street", "Manchester M3 3JE", "United Kingdom"]),
    ("Solvay Digital Media SARL", ["8 Rue de la Paix", "75002 Paris", "France"]),
    ("Pinecrest Dental Group", ["1200 Market Street", "San Francisco, CA 94102", "USA"]),
    ("Kowalski Engineering Sp. z o.o.", ["ul. Prosta 51", "00-838 Warszawa", "Poland"]),
]
EN_ITEMS = [
    ("Consulting services (hours)", (40, 180)),
    ("Annual software licence", (200, 2400)),
    ("Cloud hosting - monthly plan", (20, 400)),
    ("Ergonomic office chair", (90, 450)),
    ("Laser printer toner cartridge", (25, 120)),
    ("Freight charges", (30, 300)),
    ("On-site installation", (150, 900)),
    ("Premium support package", (99, 999)),
]


@dataclass
class EnInvoice:
    vendor: dict[str, Any]
    vendor_tax_id: str
    number: str
    date: dt.date
    due: dt.date
    customer: tuple[str, list[str]]
    lines: list[tuple[str, int, Decimal, Decimal]]  # description, qty, unit price, amount

    @property
    def subtotal(self) -> Decimal:
        return sum((ln[3] for ln in self.lines), Decimal("0.00"))

    @property
    def tax(self) -> Decimal:
        return q2(self.subtotal * self.vendor["rate"] / 100)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax

    def truth(self) -> dict[str, Any]:
        return {
            "fields": {
                "vendor_name": self.vendor["name"],
                "invoice_number": self.number,
                "issue_date": self.date.isoformat(),
                "total_amount": money(self.total),
                "amount_excl_tax": money(self.subtotal),
                "tax_amount": money(self.tax),
                "currency": self.vendor["currency"],
                "vendor_tax_id": self.vendor_tax_id,
            },
            "items": [
                {"description": d, "quantity": str(q), "unit_price": money(p), "amount": money(a)}
                for d, q, p, a in self.lines
            ],
            "qr_payload": None,
        }


def make_en_invoice(rng: random.Random) -> EnInvoice:
    vendor = rng.choice(EN_VENDORS)
    date = random_date(rng, dt.date(2019, 1, 1), dt.date(2025, 12, 31))
    lines = []
    for desc, (lo, hi) in rng.sample(EN_ITEMS, rng.randint(2, 4)):
        qty = rng.randint(1, 12)
        price = q2(Decimal(rng.randint(lo * 100, hi * 100)) / 100)
        lines.append((desc, qty, price, q2(price * qty)))
    number = rng.choice(
        (
            f"INV-{date.year}-{rng.randint(1, 9999):04d}",
            f"{rng.randint(10000, 99999)}",
            f"NT{_digits(rng, 6)}",
        )
    )
    return EnInvoice(
        vendor=vendor,
        vendor_tax_id=vendor["tax_id"](rng),
        number=number,
        date=date,
        due=date + dt.timedelta(days=rng.choice((14, 30, 45))),
        customer=rng.choice(EN_CUSTOMERS),
        lines=lines,
    )


# --------------------------------------------------------------------------------------------
# Fonts and canvases (layout is in millimetres; one raster and one PDF back end)
# --------------------------------------------------------------------------------------------

FONT_CANDIDATES: dict[str, list[tuple[str, int]]] = {
    "cjk": [
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ],
    "mono": [
        ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 1),
    ],
    "sans": [
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ],
    "sans_bold": [
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 0),
        ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ],
}


def font_file(key: str) -> tuple[str, int]:
    for path, index in FONT_CANDIDATES[key]:
        if Path(path).exists():
            return path, index
    raise SystemExit(
        f"make_samples: no font for {key!r}; install fonts-wqy-microhei and fonts-dejavu-core "
        "(apt-get install -y fonts-wqy-microhei fonts-wqy-zenhei fonts-dejavu-core)"
    )


RGB = tuple[int, int, int]


class Canvas:
    """Drawing surface in millimetres. Text anchors: l/m/r + m (middle) or s (baseline)."""

    def measure(self, s: str, size: float, font: str) -> float:
        raise NotImplementedError

    def _text(self, x: float, y: float, s: str, size: float, color: RGB, font: str, anchor: str) -> None:
        raise NotImplementedError

    def line(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float = 0.25) -> None:
        raise NotImplementedError

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: RGB | None,
        width: float = 0.3,
        fill: RGB | None = None,
    ) -> None:
        raise NotImplementedError

    def image(self, x: float, y: float, w: float, h: float, img: Image.Image, multiply: bool = False) -> None:
        raise NotImplementedError

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float) -> None:
        raise NotImplementedError

    # helpers shared by both back ends
    def text(
        self,
        x: float,
        y: float,
        s: str,
        size: float,
        color: RGB,
        font: str = "cjk",
        anchor: str = "lm",
        max_width: float | None = None,
        min_size: float | None = None,
    ) -> float:
        """Draw ``s``; shrink it (down to ``min_size``) to fit ``max_width``. Returns the width."""
        if max_width is not None:
            floor = min_size if min_size is not None else size * 0.7
            while size > floor and self.measure(s, size, font) > max_width:
                size = max(floor, size - 0.1)
        self._text(x, y, s, size, color, font, anchor)
        return self.measure(s, size, font)

    def spread(
        self, x0: float, x1: float, y: float, s: str, size: float, color: RGB, font: str = "cjk"
    ) -> None:
        """Characters spaced evenly from x0 to x1 (labels like 名    称, 校 验 码)."""
        if len(s) == 1:
            self._text(x0, y, s, size, color, font, "lm")
            return
        last_w = self.measure(s[-1], size, font)
        step = (x1 - x0 - last_w) / (len(s) - 1)
        for i, ch in enumerate(s):
            self._text(x0 + i * step, y, ch, size, color, font, "lm")

    def vtext(
        self, xc: float, y0: float, y1: float, s: str, size: float, color: RGB, font: str = "cjk"
    ) -> None:
        """Vertical label: characters stacked and centred between y0 and y1."""
        step = (y1 - y0) / len(s)
        for i, ch in enumerate(s):
            self._text(xc, y0 + step * (i + 0.5), ch, size, color, font, "mm")


class RasterCanvas(Canvas):
    def __init__(self, w_mm: float, h_mm: float, ppm: float = PPM, bg: RGB = (255, 255, 255)) -> None:
        self.ppm = ppm
        self.w_mm, self.h_mm = w_mm, h_mm
        self.img = Image.new("RGB", (round(w_mm * ppm), round(h_mm * ppm)), bg)
        self.draw = ImageDraw.Draw(self.img)
        self._fonts: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}

    def font(self, key: str, size: float) -> ImageFont.FreeTypeFont:
        px = max(6, round(size * self.ppm))
        if (key, px) not in self._fonts:
            path, index = font_file(key)
            self._fonts[key, px] = ImageFont.truetype(path, px, index=index)
        return self._fonts[key, px]

    def measure(self, s: str, size: float, font: str) -> float:
        return self.font(font, size).getlength(s) / self.ppm

    def _text(self, x: float, y: float, s: str, size: float, color: RGB, font: str, anchor: str) -> None:
        self.draw.text((x * self.ppm, y * self.ppm), s, font=self.font(font, size), fill=color, anchor=anchor)

    def _w(self, width: float) -> int:
        return max(1, round(width * self.ppm))

    def line(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float = 0.25) -> None:
        p = self.ppm
        self.draw.line([(x0 * p, y0 * p), (x1 * p, y1 * p)], fill=color, width=self._w(width))

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: RGB | None,
        width: float = 0.3,
        fill: RGB | None = None,
    ) -> None:
        p = self.ppm
        self.draw.rectangle(
            [x0 * p, y0 * p, x1 * p, y1 * p], outline=color, width=self._w(width) if color else 0, fill=fill
        )

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float) -> None:
        p = self.ppm
        self.draw.ellipse([x0 * p, y0 * p, x1 * p, y1 * p], outline=color, width=self._w(width))

    def image(self, x: float, y: float, w: float, h: float, img: Image.Image, multiply: bool = False) -> None:
        p = self.ppm
        size = (max(1, round(w * p)), max(1, round(h * p)))
        box = (round(x * p), round(y * p))
        if img.mode == "1" or getattr(img, "is_qr", False):
            scaled = img.convert("L").resize(size, Image.Resampling.NEAREST).convert("RGB")
            self.img.paste(scaled, box)
            return
        scaled = img.convert("RGBA").resize(size, Image.Resampling.LANCZOS)
        if not multiply:
            self.img.paste(scaled, box, scaled)
            return
        region = (box[0], box[1], box[0] + size[0], box[1] + size[1])
        base = np.asarray(self.img.crop(region), dtype=np.float32)
        over = np.asarray(scaled, dtype=np.float32)
        alpha = over[..., 3:4] / 255.0
        out = base * (1.0 - alpha + alpha * over[..., :3] / 255.0)
        self.img.paste(Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8)), box[:2])


class PdfCanvas(Canvas):
    def __init__(self, w_mm: float, h_mm: float, title: str) -> None:
        try:
            from fpdf import FPDF
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise SystemExit("make_samples: PDF output needs fpdf2 (pip install fpdf2)") from exc
        orientation = "L" if w_mm > h_mm else "P"
        fmt = (h_mm, w_mm) if orientation == "L" else (w_mm, h_mm)
        self.pdf = FPDF(orientation=orientation, unit="mm", format=fmt)
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(0, 0, 0)
        self.pdf.set_creation_date(dt.datetime(2024, 6, 1, tzinfo=dt.UTC))
        self.pdf.set_creator("scripts/make_samples.py")
        self.pdf.set_title(title)
        self.pdf.add_page()
        self._loaded: set[str] = set()
        self._cur: tuple[str, float] | None = None

    def _font(self, key: str, size: float) -> None:
        if key not in self._loaded:
            path, index = font_file(key)
            self.pdf.add_font(key, fname=path, collection_font_number=index)
            self._loaded.add(key)
        if self._cur != (key, size):
            self.pdf.set_font(key, size=size * 72 / 25.4)
            self._cur = (key, size)

    def measure(self, s: str, size: float, font: str) -> float:
        self._font(font, size)
        return float(self.pdf.get_string_width(s))

    def _text(self, x: float, y: float, s: str, size: float, color: RGB, font: str, anchor: str) -> None:
        self._font(font, size)
        width = self.pdf.get_string_width(s)
        if anchor[0] == "m":
            x -= width / 2
        elif anchor[0] == "r":
            x -= width
        if anchor[1] == "m":
            desc = self.pdf.current_font.desc
            y += (desc.ascent + desc.descent) / 2000 * size
        self.pdf.set_text_color(*color)
        self.pdf.text(x, y, s)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float = 0.25) -> None:
        self.pdf.set_draw_color(*color)
        self.pdf.set_line_width(width)
        self.pdf.line(x0, y0, x1, y1)

    def rect(
        self,
        x0: float,
        y0: float,
        x1: float,
        y1: float,
        color: RGB | None,
        width: float = 0.3,
        fill: RGB | None = None,
    ) -> None:
        style = ("F" if fill else "") + ("D" if color else "")
        if fill:
            self.pdf.set_fill_color(*fill)
        if color:
            self.pdf.set_draw_color(*color)
            self.pdf.set_line_width(width)
        self.pdf.rect(x0, y0, x1 - x0, y1 - y0, style=style)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, color: RGB, width: float) -> None:
        self.pdf.set_draw_color(*color)
        self.pdf.set_line_width(width)
        self.pdf.ellipse(x0, y0, x1 - x0, y1 - y0)

    def image(self, x: float, y: float, w: float, h: float, img: Image.Image, multiply: bool = False) -> None:
        if multiply:
            with self.pdf.local_context(blend_mode="Multiply"):
                self.pdf.image(img, x, y, w, h)
        else:
            self.pdf.image(img, x, y, w, h)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


# --------------------------------------------------------------------------------------------
# QR code and seals
# --------------------------------------------------------------------------------------------


def qr_image(payload: str, module_px: int = 1) -> Image.Image:
    barcode = zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    arr = np.asarray(barcode.to_image(scale=1, add_quiet_zones=False), dtype=np.uint8)
    if module_px > 1:
        arr = np.kron(arr, np.ones((module_px, module_px), dtype=np.uint8))
    img = Image.fromarray(arr, "L")
    img.is_qr = True  # type: ignore[attr-defined]
    return img


def draw_qr(canvas: Canvas, x: float, y: float, size: float, payload: str) -> None:
    img = qr_image(payload, 1 if isinstance(canvas, RasterCanvas) else 8)
    if isinstance(canvas, RasterCanvas):
        modules = np.asarray(img).shape[0]
        module_mm = math.floor(size * canvas.ppm / modules) / canvas.ppm
        size = module_mm * modules
    canvas.image(x, y, size, size, img)


def render_seal(
    w_mm: float,
    h_mm: float,
    arc_text: str,
    middle: str,
    bottom: str,
    rng: random.Random,
    ppm: float = PPM,
    color: RGB = (222, 38, 48),
    middle_font: str = "mono",
    ring_mm: float = 1.0,
    angle: float = 0.0,
    ink: float = 0.9,
) -> Image.Image:
    """A red oval stamp as an RGBA image: text along the top arc, a middle line, a bottom line."""
    scale = 3  # render large, then downsample (smooth edges)
    px = ppm * scale
    w, h = round(w_mm * px), round(h_mm * px)
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    ring = max(2, round(ring_mm * px))
    draw.ellipse([ring // 2, ring // 2, w - 1 - ring // 2, h - 1 - ring // 2], outline=255, width=ring)
    cjk_path, cjk_index = font_file("cjk")
    # arc text
    n = len(arc_text)
    span = math.radians(min(250.0, 24.0 * n))
    char_h = h_mm * 0.17
    for _ in range(3):  # shrink the glyphs until the name fits on the arc without overlaps
        a = w / 2 - ring - char_h * px * 0.75
        b = h / 2 - ring - char_h * px * 0.75
        char_h = min(h_mm * 0.17, span * (a + b) / 2 / n / px * 0.92)
    a = w / 2 - ring - char_h * px * 0.75
    b = h / 2 - ring - char_h * px * 0.75
    font = ImageFont.truetype(cjk_path, round(char_h * px), index=cjk_index)
    for i, ch in enumerate(arc_text):
        t = -math.pi / 2 - span / 2 + span * (i + 0.5) / n
        cx, cy = w / 2 + a * math.cos(t), h / 2 + b * math.sin(t)
        # normal of the ellipse at t gives the glyph's "up" direction
        nx, ny = math.cos(t) / a, math.sin(t) / b
        rot = -math.degrees(math.atan2(ny, nx)) - 90
        size = round(char_h * px * 1.6)
        glyph = Image.new("L", (size, size), 0)
        ImageDraw.Draw(glyph).text((size / 2, size / 2), ch, font=font, fill=255, anchor="mm")
        glyph = glyph.rotate(rot, resample=Image.Resampling.BICUBIC)
        mask.paste(ImageChops.lighter(mask.crop((round(cx - size / 2), round(cy - size / 2),
                                                  round(cx - size / 2) + size, round(cy - size / 2) + size)), glyph),
                   (round(cx - size / 2), round(cy - size / 2)))  # fmt: skip
    # middle line (tax ID), condensed to fit
    if middle:
        path, index = font_file(middle_font)
        mfont = ImageFont.truetype(path, round(h_mm * 0.14 * px), index=index)
        tw = round(mfont.getlength(middle)) + 4
        th = round(h_mm * 0.2 * px)
        tmp = Image.new("L", (tw, th), 0)
        ImageDraw.Draw(tmp).text((tw / 2, th / 2), middle, font=mfont, fill=255, anchor="mm")
        target_w = min(tw, round(w * 0.74))
        tmp = tmp.resize((target_w, th), Image.Resampling.LANCZOS)
        mask.paste(ImageChops.lighter(mask.crop((w // 2 - target_w // 2, h // 2 - th // 2,
                                                 w // 2 - target_w // 2 + target_w, h // 2 - th // 2 + th)), tmp),
                   (w // 2 - target_w // 2, h // 2 - th // 2))  # fmt: skip
    if bottom:
        bfont = ImageFont.truetype(cjk_path, round(h_mm * 0.15 * px), index=cjk_index)
        draw.text((w / 2, h * 0.76), bottom, font=bfont, fill=255, anchor="mm")
    # ink texture: uneven pressure, small voids
    nrng = np.random.default_rng(rng.randrange(2**32))
    low = cv2.resize(nrng.random((8, 12), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = nrng.random((h, w), dtype=np.float32)
    tex = np.clip(0.75 + 0.35 * low, 0.55, 1.0) * np.where(grain < 0.04, 0.35, 1.0)
    alpha = np.asarray(mask, dtype=np.float32) * tex * ink
    mask = Image.fromarray(np.clip(alpha, 0, 255).astype(np.uint8), "L")
    if angle:
        mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC)
    mask = mask.filter(ImageFilter.GaussianBlur(scale * 0.4)).resize(
        (round(w_mm * ppm), round(h_mm * ppm)), Image.Resampling.LANCZOS
    )
    seal = Image.new("RGBA", mask.size, (*color, 0))
    seal.putalpha(mask)
    return seal


def draw_seal(canvas: Canvas, xc: float, yc: float, seal: Image.Image, ppm: float = PPM) -> None:
    w, h = seal.size[0] / ppm, seal.size[1] / ppm
    canvas.image(xc - w / 2, yc - h / 2, w, h, seal, multiply=True)


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------

FORM_BROWN: RGB = (166, 84, 46)
FORM_RED: RGB = (150, 24, 24)
INK_BLACK: RGB = (20, 20, 20)
INK_BLUE: RGB = (30, 42, 112)
VALUE = 3.4  # mm: value text height (27 px at 200 dpi)
LABEL = 3.3


@dataclass
class Style:
    """How one invoice is drawn (varies per sample)."""

    paper: bool = False
    ink: RGB = INK_BLACK
    offset: tuple[float, float] = (0.0, 0.0)  # dot-matrix misalignment of all printed values (mm)
    seal_at: str = "remark"  # remark | seller_name | words
    seal_angle: float = 0.0
    copy_label: str = "发票联"
    holes: bool = False


def page_size(doc_type: str) -> tuple[float, float]:
    if doc_type in ("vat_special_paper", "vat_general_paper"):
        return 240.0, 146.0
    if doc_type == "vat_e_invoice_general":
        return 216.0, 140.0
    if doc_type in FULLY_DIGITAL:
        return 210.0, 140.0
    return 210.0, 297.0


def _fmt_date_cn(d: dt.date) -> str:
    return f"{d.year}年{d.month:02d}月{d.day:02d}日"


def _grouped(check: str) -> str:
    return " ".join(check[i : i + 5] for i in range(0, 20, 5))


def supervision_seal(rng: random.Random, fully: bool) -> Image.Image:
    return render_seal(
        27 if fully else 30,
        18 if fully else 20,
        "全国统一发票监制章",
        "国家税务总局",
        "北京市税务局",
        rng,
        color=(226, 40, 50),
        middle_font="cjk",
        ring_mm=0.9 if fully else 0.7,
        ink=0.75,
    )


def seller_seal(inv: CnInvoice, rng: random.Random, angle: float) -> Image.Image:
    return render_seal(40, 28, inv.seller.name, inv.seller.tax_id, "发票专用章", rng, angle=angle, ink=0.85)


def layout_old_style(canvas: Canvas, inv: CnInvoice, style: Style, rng: random.Random) -> None:
    """Paper 专票/普票 and provincial 电子普通发票 (cn_034, cn_044, cn_045 style)."""
    W, H = page_size(inv.doc_type)
    paper = inv.doc_type != "vat_e_invoice_general"
    L, R = (14.0, 226.0) if paper else (7.7, 209.0)
    dy = 5.0 if paper else 0.0

    def X(v: float) -> float:  # map the 7.7..209 reference frame onto this page
        return L + (v - 7.7) * (R - L) / (209.0 - 7.7)

    def Y(v: float) -> float:
        return v + dy

    c = FORM_BROWN
    ink = style.ink
    ox, oy = style.offset

    def val(
        x: float, y: float, s: str, size: float = VALUE, font: str = "cjk", anchor: str = "lm", **kw: Any
    ):
        return canvas.text(x + ox, y + oy, s, size, ink, font, anchor, **kw)

    # paper furniture: sprocket holes, perforations, printer's imprint, copy label
    if style.holes:
        for y in np.arange(6.0, H - 3, 12.7):
            for x in (5.0, W - 5.0):
                canvas.rect(x - 2, y - 2, x + 2, y + 2, None, fill=(236, 236, 232))
                canvas.ellipse(x - 2, y - 2, x + 2, y + 2, (200, 200, 196), 0.2)
        for x in (10.0, W - 10.0):
            for y in np.arange(0, H, 3.0):
                canvas.line(x, y, x, y + 1.5, (190, 190, 186), 0.2)
    if paper:
        canvas.vtext(11.8, Y(36), Y(118), "税总函〔2019〕102号北京印钞有限公司", 2.6, c)
        copy_side = (
            "第三联：发票联  购买方记账凭证"
            if style.copy_label == "发票联"
            else "第二联：抵扣联  购买方扣税凭证"
        )
        canvas.vtext(W - 11.6, Y(36), Y(118), copy_side, 2.6, c)

    # header
    qr_x, qr_y, qr_size = (X(10.5), 4.0, 19.0) if paper else (11.3, 3.1, 20.0)
    draw_qr(canvas, qr_x, qr_y, qr_size, inv.qr_payload)
    canvas.text(W / 2, Y(11.3), inv.title, 7.4, c, anchor="mm")
    canvas.line(X(71.4), Y(18.0), X(144.7), Y(18.0), c, 0.35)
    canvas.line(X(71.4), Y(18.8), X(144.7), Y(18.8), c, 0.35)
    if paper:
        canvas.spread(W / 2 - 8, W / 2 + 8, Y(23.5), style.copy_label, 4.6, c)
        canvas.text(qr_x + qr_size + 3, 11.5, inv.code or "", 5.2, INK_BLACK, "mono")
        canvas.text(X(147.5), 11.5, "№", 5.2, c, "cjk")
        canvas.text(X(147.5) + 6.5, 11.5, inv.number, 5.6, INK_BLUE, "mono")
        # the small code/number printed by the tax software at the far right
        val(X(181.5), 8.8, inv.code or "", VALUE, "mono")
        val(X(181.5), 13.3, inv.number, VALUE, "mono")
        canvas.spread(X(150.5), X(164.5), Y(19.6), "开票日期", LABEL, c)
        canvas.text(X(164.8), Y(19.6), "：", LABEL, c)
        val(X(169.0), Y(19.6), _fmt_date_cn(inv.date))
        if inv.check_code:
            canvas.spread(X(150.5), X(164.5), Y(24.6), "校验码", LABEL, c)
            canvas.text(X(164.8), Y(24.6), "：", LABEL, c)
            val(X(169.0), Y(24.6), _grouped(inv.check_code), VALUE, "mono", max_width=R - X(169.0) + 2)
        if inv.machine_no:
            canvas.text(qr_x, qr_y + qr_size + 3.2, "机器编号：", LABEL, c)
            val(qr_x + 17, qr_y + qr_size + 3.2, inv.machine_no, VALUE, "mono")
    else:
        rows = [("发票代码", inv.code or ""), ("发票号码", inv.number), ("开票日期", _fmt_date_cn(inv.date))]
        if inv.check_code:
            rows.append(("校验码", _grouped(inv.check_code)))
        for i, (label, value) in enumerate(rows):
            y = 9.4 + 5.05 * i
            canvas.spread(149.5, 161.2, y, label, LABEL, c)
            canvas.text(161.4, y, "：", LABEL, c)
            font = "cjk" if "年" in value else "mono"
            val(164.4, y, value, VALUE, font, max_width=W - 164.6)
        if inv.machine_no:
            canvas.spread(8.6, 21.0, 25.9, "机器编号", LABEL, c)
            canvas.text(21.2, 25.9, "：", LABEL, c)
            val(24.5, 25.9, inv.machine_no, VALUE, "mono")

    # table frame
    top, buyer_b, items_b, sum_b, seller_b = Y(29.0), Y(51.0), Y(94.9), Y(103.1), Y(123.5)
    lw = 0.35
    canvas.rect(L, top, R, seller_b, c, 0.45)
    for y in (buyer_b, items_b, sum_b):
        canvas.line(L, y, R, y, c, lw)
    canvas.line(X(15.4), top, X(15.4), buyer_b, c, lw)
    canvas.line(X(15.4), sum_b, X(15.4), seller_b, c, lw)
    for x in (X(122.8), X(127.4)):
        canvas.line(x, top, x, buyer_b, c, lw)
        canvas.line(x, sum_b, x, seller_b, c, lw)
    cols = [X(v) for v in (59.6, 85.7, 97.6, 117.5, 137.6, 167.4, 178.5)]
    for x in cols:
        canvas.line(x, buyer_b, x, items_b, c, lw)
    canvas.line(cols[0], items_b, cols[0], sum_b, c, lw)

    def party(block_top: float, label: str, p: Party, rows_y: Sequence[float]) -> None:
        canvas.vtext((L + X(15.4)) / 2, block_top + 1.5, block_top + 20.5, label, LABEL, c)
        labels = [("名称", p.name, VALUE), ("纳税人识别号", p.tax_id, VALUE + 0.2)]
        labels += [("地址、电话", p.address_phone, 2.9), ("开户行及账号", p.bank_account, 2.9)]
        for (lab, value, size), y in zip(labels, rows_y, strict=True):
            canvas.spread(X(17.3), X(17.3) + 19.5, y, lab, LABEL, c)
            canvas.text(X(17.3) + 19.7, y, "：", LABEL, c)
            font = "mono" if lab == "纳税人识别号" else "cjk"
            val(X(17.3) + 23.5, y, value, size, font, max_width=X(122.3) - X(17.3) - 24, min_size=2.6)

    party(top, "购买方", inv.buyer, [Y(v) for v in (31.9, 37.2, 42.4, 47.6)])
    canvas.vtext((X(122.8) + X(127.4)) / 2, top + 2, buyer_b - 2, "密码区", LABEL, c)
    for i, line in enumerate(inv.cipher):
        y = Y(32.3 + 5.0 * i)
        x0, x1 = X(129.6) + ox, R - 1.8 + ox
        step = (x1 - x0) / len(line)
        for j, ch in enumerate(line):
            canvas.text(x0 + step * (j + 0.5), y + oy, ch, 3.6, ink, "mono", "mm")

    # items
    heads = ["货物或应税劳务、服务名称", "规格型号", "单位", "数量", "单价", "金额", "税率", "税额"]
    edges = [L, *cols, R]
    for i, head in enumerate(heads):
        x0, x1 = edges[i], edges[i + 1]
        if len(head) <= 2 and x1 - x0 > 14:
            gap = min(6.0, (x1 - x0) / 3)
            canvas.spread((x0 + x1) / 2 - gap - LABEL / 2, (x0 + x1) / 2 + gap, Y(53.8), head, LABEL, c)
        else:
            canvas.text((x0 + x1) / 2, Y(53.8), head, LABEL, c, anchor="mm", max_width=x1 - x0 - 1)
    for i, it in enumerate(inv.items):
        y = Y(58.6 + 5.2 * i)
        val(L + 0.8, y, it.name, VALUE, max_width=cols[0] - L - 1.5, min_size=2.9)
        val(cols[0] + 1.5, y, it.spec, VALUE - 0.2, "cjk", max_width=cols[1] - cols[0] - 2, min_size=2.6)
        val((cols[1] + cols[2]) / 2, y, it.unit, VALUE, anchor="mm")
        val(cols[3] - 1, y, it.quantity or "", VALUE, "mono", anchor="rm")
        val(
            cols[4] - 1, y, it.unit_price or "", VALUE, "mono", anchor="rm", max_width=cols[4] - cols[3] - 1.5
        )
        val(cols[5] - 1, y, money(it.amount), VALUE, "mono", anchor="rm")
        val((cols[5] + cols[6]) / 2, y, f"{it.rate}%", VALUE, "mono", anchor="mm")
        val(R - 1, y, money(it.tax), VALUE, "mono", anchor="rm")
    canvas.spread(X(24.0), X(48.0), Y(92.6), "合计", LABEL, c)
    val(cols[5] - 1, Y(92.6), f"¥{money(inv.amount)}", VALUE, "mono", anchor="rm")
    val(R - 1, Y(92.6), f"¥{money(inv.tax)}", VALUE, "mono", anchor="rm")

    # total row
    ty = Y(98.9)
    canvas.text((L + cols[0]) / 2, ty, "价税合计（大写）", LABEL, c, anchor="mm")
    val(cols[0] + 1.5, ty, "⊗", 4.0)
    val(cols[0] + 6.0, ty, inv.words, VALUE + 0.2)
    canvas.text(X(163.5), ty, "（小写）", LABEL, c)
    val(X(163.5) + 14.0, ty, f"¥{money(inv.total)}", VALUE + 0.2, "mono")

    party(sum_b, "销售方", inv.seller, [Y(v) for v in (106.2, 110.9, 115.7, 120.4)])
    canvas.vtext((X(122.8) + X(127.4)) / 2, sum_b + 3, seller_b - 3, "备注", LABEL, c)
    for i, line in enumerate(inv.remark):
        val(X(129.0), sum_b + 3.2 + 4.5 * i, line, 2.9, max_width=R - X(129.0) - 1)

    # signatures
    by = Y(126.6)
    for label, name, x_lab, x_val in (
        ("收款人", inv.payee, 11.0, 28.2),
        ("复核", inv.reviewer, 69.8, 81.6),
        ("开票人", inv.drawer, 112.2, 129.4),
    ):
        canvas.spread(X(x_lab), X(x_lab) + (13 if len(label) == 3 else 8), by, label, LABEL, c)
        canvas.text(X(x_lab) + (13.2 if len(label) == 3 else 8.2), by, "：", LABEL, c)
        val(X(x_val), by, name)
    canvas.spread(X(156.1), X(156.1) + 13, by, "销售方", LABEL, c)
    canvas.text(X(156.1) + 13.2, by, "：（章）", LABEL, c)

    # stamps
    draw_seal(canvas, W / 2 + 1, Y(17.0), supervision_seal(rng, False))
    seal = seller_seal(inv, rng, style.seal_angle)
    if style.seal_at == "seller_name":
        draw_seal(canvas, X(17.3) + 23.5 + 28, Y(114.5), seal)
    elif style.seal_at == "words":
        draw_seal(canvas, cols[0] + 30, Y(99.0), seal)
    else:
        draw_seal(canvas, X(188.3), Y(121.5), seal)


def layout_fully_digital(canvas: Canvas, inv: CnInvoice, style: Style, rng: random.Random) -> None:
    """全电 电子发票（普通发票） / 电子发票（增值税专用发票） (cn_037, cn_055 style)."""
    W, _H = page_size(inv.doc_type)
    c = FORM_RED
    ink = style.ink
    L, R = 4.4, 205.5

    def val(
        x: float, y: float, s: str, size: float = VALUE, font: str = "cjk", anchor: str = "lm", **kw: Any
    ):
        return canvas.text(x, y, s, size, ink, font, anchor, **kw)

    draw_qr(canvas, 6.3, 5.9, 20.0, inv.qr_payload)
    canvas.text(W / 2 - 2.6, 11.3, inv.title, 7.2, c, anchor="mm")
    canvas.line(65.6, 18.1, 138.3, 18.1, c, 0.3)
    canvas.line(65.6, 19.0, 138.3, 19.0, c, 0.3)
    canvas.text(154.7, 12.8, "发票号码：", LABEL, c)
    val(170.4, 12.8, inv.number, VALUE, "mono", max_width=W - 171)
    canvas.text(154.7, 18.8, "开票日期：", LABEL, c)
    val(170.4, 18.8, _fmt_date_cn(inv.date))

    top, party_b, items_b, sum_b, remark_b = 30.0, 51.9, 95.8, 103.8, 123.8
    canvas.rect(L, top, R, remark_b, c, 0.4)
    for y in (party_b, items_b, sum_b):
        canvas.line(L, y, R, y, c, 0.3)
    for x in (10.6, 105.0, 111.3):
        canvas.line(x, top, x, party_b, c, 0.3)
    canvas.line(56.6, items_b, 56.6, sum_b, c, 0.3)
    canvas.line(10.6, sum_b, 10.6, remark_b, c, 0.3)

    def party(x_vcol: float, x_lab: float, label: str, p: Party, right: float) -> None:
        canvas.vtext(x_vcol, top + 1.5, party_b - 1.5, label, LABEL - 0.2, c)
        canvas.text(x_lab, 35.3, "名称：", LABEL, c)
        val(x_lab + 10.2, 35.3, p.name, VALUE, max_width=right - x_lab - 11)
        w = canvas.text(x_lab, 46.0, "统一社会信用代码/纳税人识别号：", 2.9, c)
        val(x_lab + w + 0.3, 46.0, p.tax_id, 4.0, "mono", max_width=right - x_lab - w - 1, min_size=3.4)

    party((L + 10.6) / 2, 11.7, "购买方信息", inv.buyer, 104.5)
    party((105.0 + 111.3) / 2, 112.1, "销售方信息", inv.seller, R - 0.5)

    heads = [("项目名称", 21.9), ("规格型号", 48.1), ("单位", 71.6), ("数量", 97.7), ("单价", 122.4),
             ("金额", 148.2), ("税率/征收率", 166.1), ("税额", 198.5)]  # fmt: skip
    for head, x in heads:
        if len(head) == 2:
            canvas.spread(x - 4.5, x + 4.5, 54.7, head, LABEL, c)
        else:
            canvas.text(x, 54.7, head, LABEL, c, anchor="mm")
    for i, it in enumerate(inv.items):
        y = 58.9 + 5.0 * i
        val(L + 0.4, y, it.name, VALUE, max_width=40.0, min_size=2.9)
        val(41.0, y, it.spec, VALUE - 0.2, max_width=24, min_size=2.6)
        val(71.6, y, it.unit, VALUE, anchor="mm")
        val(102.4, y, it.quantity or "", VALUE, "mono", anchor="rm")
        val(105.5, y, it.unit_price or "", VALUE, "mono", max_width=33, min_size=2.6)
        val(153.5, y, money(it.amount), VALUE, "mono", anchor="rm")
        val(166.4, y, f"{it.rate}%", VALUE, "mono", anchor="mm")
        val(R - 0.6, y, money(it.tax), VALUE, "mono", anchor="rm")
    canvas.spread(20.8, 39.0, 93.3, "合计", LABEL, c)
    val(153.5, 93.3, f"¥{money(inv.amount)}", VALUE, "mono", anchor="rm")
    val(R - 0.6, 93.3, f"¥{money(inv.tax)}", VALUE, "mono", anchor="rm")

    canvas.text((L + 56.6) / 2, 99.8, "价税合计（大写）", LABEL, c, anchor="mm")
    val(59.9, 99.8, "⊗", 4.2)
    val(64.6, 99.8, inv.words, VALUE + 0.2)
    canvas.text(144.0, 99.8, "（小写）", LABEL, c)
    val(157.4, 99.8, f"¥{money(inv.total)}", VALUE + 0.4, "mono")

    canvas.vtext((L + 10.6) / 2, sum_b + 4, remark_b - 4, "备注", LABEL, c)
    for i, line in enumerate(inv.remark):
        val(11.6, sum_b + 3.4 + 4.4 * i, line, 2.9, max_width=R - 12.5)
    canvas.text(19.7, 131.0, "开票人：", LABEL, c)
    val(33.0, 131.0, inv.drawer)
    draw_seal(canvas, W / 2 - 2.6, 20.4, supervision_seal(rng, True))


def layout_english(canvas: Canvas, inv: EnInvoice) -> None:
    v = inv.vendor
    accent: RGB = (38, 70, 120)
    grey: RGB = (90, 90, 90)
    body = 3.8
    canvas.text(18, 24, v["name"], 6.0, accent, "sans_bold", "ls")
    for i, line in enumerate(v["address"]):
        canvas.text(18, 32 + 5.2 * i, line, body, INK_BLACK, "sans", "ls")
    canvas.text(18, 32 + 5.2 * 3, f"{v['tax_id_label']}: {inv.vendor_tax_id}", body, INK_BLACK, "sans", "ls")
    canvas.text(192, 24, "INVOICE", 9.0, accent, "sans_bold", "rs")
    fmt = v["date_fmt"]
    meta = [
        ("Invoice No:", inv.number),
        ("Invoice Date:", inv.date.strftime(fmt)),
        ("Due Date:", inv.due.strftime(fmt)),
        ("Currency:", v["currency"]),
    ]
    for i, (label, value) in enumerate(meta):
        y = 38 + 6.2 * i
        canvas.text(132, y, label, body, grey, "sans", "ls")
        canvas.text(192, y, value, body, INK_BLACK, "sans", "rs")
    canvas.text(18, 72, "Bill To", body, accent, "sans_bold", "ls")
    name, addr = inv.customer
    canvas.text(18, 78.5, name, body, INK_BLACK, "sans", "ls")
    for i, line in enumerate(addr):
        canvas.text(18, 84 + 5.2 * i, line, body, INK_BLACK, "sans", "ls")

    y0 = 112
    canvas.rect(16, y0 - 6.5, 194, y0 + 2.5, None, fill=(226, 232, 242))
    for label, x, anchor in (("Description", 18, "ls"), ("Qty", 120, "rs"), ("Unit Price", 156, "rs"),
                             ("Amount", 192, "rs")):  # fmt: skip
        canvas.text(x, y0, label, body, INK_BLACK, "sans_bold", anchor)
    sym = v["symbol"]
    y = y0
    for desc, qty, price, amount in inv.lines:
        y += 10
        canvas.text(18, y, desc, body, INK_BLACK, "sans", "ls")
        canvas.text(120, y, str(qty), body, INK_BLACK, "sans", "rs")
        canvas.text(156, y, f"{sym}{price:,.2f}", body, INK_BLACK, "sans", "rs")
        canvas.text(192, y, f"{sym}{amount:,.2f}", body, INK_BLACK, "sans", "rs")
        canvas.line(16, y + 3.5, 194, y + 3.5, (205, 205, 205), 0.2)
    y += 14
    rate = f"{v['rate'].normalize():f}"
    totals = [
        ("Subtotal", f"{sym}{inv.subtotal:,.2f}", "sans"),
        (f"{v['tax_label']} ({rate}%)", f"{sym}{inv.tax:,.2f}", "sans"),
        (f"Total ({v['currency']})", f"{sym}{inv.total:,.2f}", "sans_bold"),
    ]
    for i, (label, value, font) in enumerate(totals):
        yy = y + 7 * i + (2 if i == 2 else 0)
        if i == 2:
            canvas.line(120, yy - 6, 194, yy - 6, INK_BLACK, 0.35)
        canvas.text(124, yy, label, body, INK_BLACK, font, "ls")
        canvas.text(192, yy, value, body, INK_BLACK, font, "rs")
    fy = 250
    canvas.line(16, fy - 8, 194, fy - 8, (180, 180, 180), 0.3)
    canvas.text(18, fy, f"Payment terms: {(inv.due - inv.date).days} days net.", body, grey, "sans", "ls")
    canvas.text(18, fy + 6, "Thank you for your business.", body, grey, "sans", "ls")


# --------------------------------------------------------------------------------------------
# Degradations (deterministic with the rng handed in)
# --------------------------------------------------------------------------------------------


def to_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def rotate(arr: np.ndarray, angle: float, fill: RGB = (255, 255, 255)) -> np.ndarray:
    """Rotate counter-clockwise by ``angle`` degrees, growing the canvas (exact for multiples of 90)."""
    if angle % 90 == 0:
        return np.ascontiguousarray(np.rot90(arr, int(angle // 90) % 4))
    h, w = arr.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(arr, m, (nw, nh), flags=cv2.INTER_CUBIC, borderValue=fill)


def textured_background(rng: np.random.Generator, w: int, h: int, base: RGB = (96, 78, 62)) -> np.ndarray:
    """A darker table-top: low-frequency blotches plus wood-like streaks."""
    low = cv2.resize(rng.random((6, 8), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    streak = cv2.resize(rng.random((h // 4, 1), dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    streak = cv2.GaussianBlur(streak, (0, 0), 2.0)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2)
    factor = 0.8 + 0.25 * low + 0.12 * (streak - 0.5) + 0.03 * grain
    out = np.asarray(base, dtype=np.float32)[None, None, :] * factor[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def perspective_onto(
    arr: np.ndarray,
    background: np.ndarray,
    rng: np.random.Generator,
    fill_ratio: float = 0.8,
    jitter: float = 0.05,
) -> tuple[np.ndarray, list[list[float]]]:
    """Warp the document onto ``background`` as a phone would see it; returns image and corners."""
    h, w = arr.shape[:2]
    bh, bw = background.shape[:2]
    scale = min(bw * fill_ratio / w, bh * fill_ratio / h)
    dw, dh = w * scale, h * scale
    cx, cy = bw / 2 + rng.uniform(-0.04, 0.04) * bw, bh / 2 + rng.uniform(-0.04, 0.04) * bh
    base = np.array(
        [
            [cx - dw / 2, cy - dh / 2],
            [cx + dw / 2, cy - dh / 2],
            [cx + dw / 2, cy + dh / 2],
            [cx - dw / 2, cy + dh / 2],
        ]
    )
    dst = (base + rng.uniform(-jitter, jitter, (4, 2)) * np.array([dw, dh])).astype(np.float32)
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(arr, m, (bw, bh), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((h, w), 255, np.uint8), m, (bw, bh), flags=cv2.INTER_LINEAR)
    a = (mask.astype(np.float32) / 255.0)[..., None]
    # a soft drop shadow under the sheet
    shadow = cv2.GaussianBlur(mask, (0, 0), 12).astype(np.float32)[..., None] / 255.0
    shadow = np.roll(shadow, (10, 8), axis=(0, 1))
    bg = background.astype(np.float32) * (1 - 0.45 * shadow * (1 - a))
    out = warped.astype(np.float32) * a + bg * (1 - a)
    return np.clip(out, 0, 255).astype(np.uint8), dst.round(1).tolist()


def uneven_light(
    arr: np.ndarray, rng: np.random.Generator, strength: float = 0.35, shadow: bool = True
) -> np.ndarray:
    """Multiply by a lighting field: a linear gradient, a vignette and optionally a soft shadow."""
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, 2 * math.pi)
    grad = ((xx / w - 0.5) * math.cos(theta) + (yy / h - 0.5) * math.sin(theta)) + 0.5
    r = np.sqrt(((xx - w * rng.uniform(0.3, 0.7)) / w) ** 2 + ((yy - h * rng.uniform(0.3, 0.7)) / h) ** 2)
    field_ = 1.0 - strength * 0.6 * grad - strength * 0.5 * np.clip(r - 0.3, 0, None)
    if shadow:
        mask = np.zeros((h, w), np.float32)
        x0 = rng.uniform(0.55, 0.8) * w
        pts = np.array([[x0, 0], [w, 0], [w, h], [x0 + rng.uniform(-0.25, 0.1) * w, h]], np.int32)
        cv2.fillPoly(mask, [pts], 1.0)
        mask = cv2.GaussianBlur(mask, (0, 0), w * 0.03)
        field_ *= 1.0 - 0.28 * mask
    out = arr.astype(np.float32) * np.clip(field_, 0.35, 1.05)[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def blur(arr: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(arr, (0, 0), sigma)


def noise(arr: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    out = arr.astype(np.float32) + rng.normal(0, sigma, arr.shape[:2])[..., None].astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def paper_tone(
    arr: np.ndarray, rng: np.random.Generator, tint: RGB = (248, 246, 238), grain: float = 2.0
) -> np.ndarray:
    out = arr.astype(np.float32) * (np.asarray(tint, np.float32) / 255.0)
    if grain:
        out += cv2.GaussianBlur(rng.normal(0, grain, arr.shape[:2]).astype(np.float32), (0, 0), 0.8)[
            ..., None
        ]
    return np.clip(out, 0, 255).astype(np.uint8)


def jpeg_bytes(arr: np.ndarray, quality: int, subsampling: int = 2) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=quality, subsampling=subsampling, optimize=True)
    return buf.getvalue()


def jpeg_roundtrip(arr: np.ndarray, quality: int) -> np.ndarray:
    return to_array(Image.open(io.BytesIO(jpeg_bytes(arr, quality))))


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", optimize=True)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Rendering one document
# --------------------------------------------------------------------------------------------


def render_cn(inv: CnInvoice, style: Style, rng: random.Random, pdf: bool = False) -> np.ndarray | bytes:
    w, h = page_size(inv.doc_type)
    canvas: Canvas = PdfCanvas(w, h, inv.title) if pdf else RasterCanvas(w, h)
    if inv.doc_type in FULLY_DIGITAL:
        layout_fully_digital(canvas, inv, style, rng)
    else:
        layout_old_style(canvas, inv, style, rng)
    if isinstance(canvas, PdfCanvas):
        return canvas.output()
    assert isinstance(canvas, RasterCanvas)
    return to_array(canvas.img)


def render_en(inv: EnInvoice, pdf: bool = False) -> np.ndarray | bytes:
    canvas: Canvas = PdfCanvas(210, 297, f"Invoice {inv.number}") if pdf else RasterCanvas(210, 297)
    layout_english(canvas, inv)
    if isinstance(canvas, PdfCanvas):
        return canvas.output()
    assert isinstance(canvas, RasterCanvas)
    return to_array(canvas.img)


def paper_style(rng: random.Random, inv: CnInvoice, **kw: Any) -> Style:
    base = {
        "paper": True,
        "ink": rng.choice((INK_BLUE, INK_BLUE, INK_BLACK)),
        "offset": (round(rng.uniform(-0.8, 1.0), 2), round(rng.uniform(-0.4, 0.7), 2)),
        "seal_angle": round(rng.uniform(-12, 12), 1),
        "copy_label": "抵扣联" if inv.doc_type == "vat_special_paper" and rng.random() < 0.5 else "发票联",
    }
    base.update(kw)
    return Style(**base)


@dataclass
class Doc:
    """One generated document: files to write (name -> bytes) and its ground truth."""

    case: str
    doc_type: str
    variant: str
    files: dict[str, bytes]
    truth: dict[str, Any]
    degradations: list[dict[str, Any]]
    image: dict[str, Any] | None


def _image_info(arr: np.ndarray, rotation: float = 0.0) -> dict[str, Any]:
    return {"width": int(arr.shape[1]), "height": int(arr.shape[0]), "dpi": DPI, "rotation_ccw_deg": rotation}


def case_seed(seed: int, case: str) -> int:
    return zlib.crc32(f"{seed}:{case}".encode()) & 0x7FFFFFFF


# Each builder: (case name, rng seeded for it) -> Doc


def build_vat_special_clean(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_special_paper")
    style = paper_style(rng, inv, ink=INK_BLACK)
    arr = paper_tone(render_cn(inv, style, rng), nrng, (250, 249, 244), grain=0)  # type: ignore[arg-type]
    return Doc(
        case, inv.doc_type, "clean_scan_200dpi", {f"{case}.png": png_bytes(arr)}, inv.truth(),
        [{"op": "paper_tone"}], _image_info(arr),
    )  # fmt: skip


def build_vat_general_photo(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_general_paper")
    style = paper_style(rng, inv, holes=True)
    page = paper_tone(render_cn(inv, style, rng), nrng, (246, 244, 236), grain=1.5)  # type: ignore[arg-type]
    # the phone sees the page larger than 200 dpi: scale up so values stay >= 22 px after the warp
    page = cv2.resize(page, None, fx=1.25, fy=1.25, interpolation=cv2.INTER_CUBIC)
    bg = textured_background(nrng, 2600, 1950)
    arr, corners = perspective_onto(page, bg, nrng, fill_ratio=0.86, jitter=0.035)
    arr = uneven_light(arr, nrng, 0.4, shadow=True)
    arr = blur(arr, 0.7)
    arr = noise(arr, nrng, 2.5)
    data = jpeg_bytes(arr, 82)
    degr = [
        {"op": "paper_tone"},
        {"op": "scale", "factor": 1.25},
        {"op": "perspective", "corners": corners, "background": "textured_dark"},
        {"op": "uneven_light", "strength": 0.4, "shadow": True},
        {"op": "blur", "sigma": 0.7},
        {"op": "noise", "sigma": 2.5},
        {"op": "jpeg", "quality": 82},
    ]
    return Doc(case, inv.doc_type, "phone_photo", {f"{case}.jpg": data}, inv.truth(), degr, _image_info(arr))


def build_vat_e_general_pdf(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_e_invoice_general")
    data = render_cn(inv, Style(seal_angle=round(rng.uniform(-8, 8), 1)), rng, pdf=True)
    assert isinstance(data, bytes)
    return Doc(case, inv.doc_type, "born_digital_pdf", {f"{case}.pdf": data}, inv.truth(), [], None)


def build_fully_digital_general_pdf(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "fully_digital_general")
    data = render_cn(inv, Style(), rng, pdf=True)
    assert isinstance(data, bytes)
    return Doc(case, inv.doc_type, "born_digital_pdf", {f"{case}.pdf": data}, inv.truth(), [], None)


def build_fully_digital_special_rot90(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "fully_digital_special")
    arr = rotate(render_cn(inv, Style(), rng), 90)  # type: ignore[arg-type]
    return Doc(
        case, inv.doc_type, "rotated_90", {f"{case}.png": png_bytes(arr)}, inv.truth(),
        [{"op": "rotate", "angle_ccw": 90}], _image_info(arr, 90),
    )  # fmt: skip


def build_vat_special_seal_rot180(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_special_paper")
    style = paper_style(rng, inv, seal_at="seller_name", seal_angle=round(rng.uniform(-6, 6), 1))
    arr = paper_tone(render_cn(inv, style, rng), nrng, (247, 246, 240), grain=1.5)  # type: ignore[arg-type]
    arr = rotate(arr, 180)
    degr = [
        {"op": "seal_overlay", "over": "seller_name"},
        {"op": "rotate", "angle_ccw": 180},
        {"op": "jpeg", "quality": 85},
    ]
    return Doc(
        case, inv.doc_type, "rotated_180_seal_over_seller", {f"{case}.jpg": jpeg_bytes(arr, 85)}, inv.truth(),
        degr, _image_info(arr, 180),
    )  # fmt: skip


def build_vat_general_degraded(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_general_paper")
    style = paper_style(rng, inv)
    arr = paper_tone(render_cn(inv, style, rng), nrng, (244, 242, 232), grain=2.0)  # type: ignore[arg-type]
    angle = 3.0
    arr = rotate(arr, angle, fill=(244, 242, 232))
    arr = blur(arr, 0.9)
    arr = noise(arr, nrng, 7.0)
    arr = jpeg_roundtrip(arr, 30)
    data = jpeg_bytes(arr, 24)
    degr = [
        {"op": "rotate", "angle_ccw": angle},
        {"op": "blur", "sigma": 0.9},
        {"op": "noise", "sigma": 7.0},
        {"op": "jpeg", "quality": 30},
        {"op": "jpeg", "quality": 24},
    ]
    return Doc(
        case, inv.doc_type, "degraded", {f"{case}.jpg": data}, inv.truth(), degr, _image_info(arr, angle)
    )


def build_vat_e_general_skew(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_e_invoice_general")
    arr = render_cn(inv, Style(seal_angle=round(rng.uniform(-8, 8), 1)), rng)
    angle = round(rng.choice((-1, 1)) * rng.uniform(1.5, 4.5), 1)
    arr = rotate(arr, angle)  # type: ignore[arg-type]
    arr = uneven_light(arr, nrng, 0.3, shadow=False)
    degr = [{"op": "rotate", "angle_ccw": angle}, {"op": "uneven_light", "strength": 0.3, "shadow": False}]
    return Doc(
        case, inv.doc_type, "skewed_uneven_light", {f"{case}.png": png_bytes(arr)}, inv.truth(), degr,
        _image_info(arr, angle),
    )  # fmt: skip


def build_en_invoice(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_en_invoice(rng)
    pdf = render_en(inv, pdf=True)
    arr = render_en(inv)
    assert isinstance(pdf, bytes) and isinstance(arr, np.ndarray)
    gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    return Doc(
        case, "generic_invoice", "png_200dpi_and_pdf_text_layer",
        {f"{case}.png": png_bytes(gray), f"{case}.pdf": pdf}, inv.truth(), [], _image_info(gray),
    )  # fmt: skip


def build_vat_e_general_private_pdf(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_e_invoice_general")
    inv.buyer = private_buyer(rng, "个人")
    data = render_cn(inv, Style(seal_angle=round(rng.uniform(-8, 8), 1)), rng, pdf=True)
    assert isinstance(data, bytes)
    return Doc(
        case, inv.doc_type, "born_digital_pdf_buyer_个人", {f"{case}.pdf": data}, inv.truth(), [], None
    )


def build_fully_digital_general_private(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "fully_digital_general")
    inv.buyer = private_buyer(rng, "person")
    arr = render_cn(inv, Style(), rng)
    assert isinstance(arr, np.ndarray)
    return Doc(
        case, inv.doc_type, "image_200dpi_buyer_a_person", {f"{case}.jpg": jpeg_bytes(arr, 88)}, inv.truth(),
        [{"op": "jpeg", "quality": 88}], _image_info(arr),
    )  # fmt: skip


def build_vat_general_private_scan(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_general_paper")
    inv.buyer = private_buyer(rng, "person")
    style = paper_style(rng, inv)
    arr = paper_tone(render_cn(inv, style, rng), nrng, (248, 247, 241), grain=1.0)  # type: ignore[arg-type]
    degr = [{"op": "paper_tone"}, {"op": "jpeg", "quality": 85}]
    return Doc(
        case, inv.doc_type, "scan_buyer_a_person_empty_id_cell", {f"{case}.jpg": jpeg_bytes(arr, 85)},
        inv.truth(), degr, _image_info(arr),
    )  # fmt: skip


def build_corrupt(case: str, rng: random.Random, nrng: np.random.Generator) -> Doc:
    inv = make_cn_invoice(rng, "vat_general_paper")
    arr = render_cn(inv, paper_style(rng, inv), rng)
    data = jpeg_bytes(cv2.resize(arr, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA), 80)  # type: ignore[arg-type]
    cut = data[: len(data) // 3]
    return Doc(case, inv.doc_type, "truncated_jpeg", {f"{case}.jpg": cut}, {}, [], None)


SAMPLE_CASES: dict[str, Callable[[str, random.Random, np.random.Generator], Doc]] = {
    "vat_special_clean": build_vat_special_clean,
    "vat_general_photo": build_vat_general_photo,
    "vat_e_general": build_vat_e_general_pdf,
    "fully_digital_general": build_fully_digital_general_pdf,
    "fully_digital_special_rot90": build_fully_digital_special_rot90,
    "vat_special_seal_rot180": build_vat_special_seal_rot180,
    "vat_general_degraded": build_vat_general_degraded,
    "vat_e_general_skew": build_vat_e_general_skew,
    "en_invoice": build_en_invoice,
    "vat_e_general_private": build_vat_e_general_private_pdf,
    "fully_digital_general_private": build_fully_digital_general_private,
    "vat_general_private_scan": build_vat_general_private_scan,
    "corrupt_truncated": build_corrupt,
}
NO_TRUTH_CASES = {"corrupt_truncated"}


# Random documents for benchmarks ------------------------------------------------------------


def build_random(case: str, rng: random.Random, nrng: np.random.Generator, allow_pdf: bool) -> Doc:
    doc_type = rng.choices([*CN_DOC_TYPES, "generic_invoice"], weights=(2, 2, 2, 2, 2, 1))[0]
    if doc_type == "generic_invoice":
        en = make_en_invoice(rng)
        truth = en.truth()
        born_digital = True
        if allow_pdf and rng.random() < 0.5:
            pdf = render_en(en, pdf=True)
            assert isinstance(pdf, bytes)
            return Doc(case, doc_type, "born_digital_pdf", {f"{case}.pdf": pdf}, truth, [], None)
        arr = render_en(en)
        assert isinstance(arr, np.ndarray)
    else:
        inv = make_cn_invoice(rng, doc_type)
        truth = inv.truth()
        born_digital = doc_type not in ("vat_special_paper", "vat_general_paper")
        if born_digital:
            style = Style(seal_angle=round(rng.uniform(-8, 8), 1))
            if allow_pdf and rng.random() < 0.5:
                pdf = render_cn(inv, style, rng, pdf=True)
                assert isinstance(pdf, bytes)
                return Doc(case, doc_type, "born_digital_pdf", {f"{case}.pdf": pdf}, truth, [], None)
        else:
            style = paper_style(rng, inv, seal_at=rng.choice(("remark", "remark", "seller_name", "words")))
        rendered = render_cn(inv, style, rng)
        assert isinstance(rendered, np.ndarray)
        arr = rendered if born_digital else paper_tone(rendered, nrng, grain=1.5)
    fill = tuple(int(v) for v in arr[2, 2]) if arr.ndim == 3 else (255, 255, 255)
    if arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    variant = rng.choice(("clean", "rot90", "rot180", "rot270", "skew", "degraded", "photo"))
    degr: list[dict[str, Any]] = []
    rotation = 0.0
    quality: int | None = None
    if variant in ("rot90", "rot180", "rot270"):
        rotation = float(variant[3:])
        arr = rotate(arr, rotation)
        degr.append({"op": "rotate", "angle_ccw": rotation})
    elif variant == "skew":
        rotation = round(rng.choice((-1, 1)) * rng.uniform(1, 5), 1)
        arr = uneven_light(rotate(arr, rotation, fill), nrng, 0.3, shadow=False)  # type: ignore[arg-type]
        degr += [{"op": "rotate", "angle_ccw": rotation}, {"op": "uneven_light", "strength": 0.3}]
    elif variant == "degraded":
        rotation = round(rng.uniform(-3, 3), 1)
        sigma, nsig, quality = (
            round(rng.uniform(0.5, 1.0), 2),
            round(rng.uniform(3, 8), 1),
            rng.randint(25, 45),
        )
        arr = noise(blur(rotate(arr, rotation, fill), sigma), nrng, nsig)  # type: ignore[arg-type]
        degr += [
            {"op": "rotate", "angle_ccw": rotation},
            {"op": "blur", "sigma": sigma},
            {"op": "noise", "sigma": nsig},
        ]
    elif variant == "photo":
        arr = cv2.resize(arr, None, fx=1.25, fy=1.25, interpolation=cv2.INTER_CUBIC)
        h, w = arr.shape[:2]
        bg = textured_background(nrng, int(w * 1.18), int(w * 1.18 * 0.75) if w > h else int(h * 1.18))
        arr, corners = perspective_onto(arr, bg, nrng, fill_ratio=0.86, jitter=0.03)
        arr = blur(uneven_light(arr, nrng, 0.35, shadow=rng.random() < 0.5), 0.6)
        quality = 82
        degr += [
            {"op": "perspective", "corners": corners},
            {"op": "uneven_light"},
            {"op": "blur", "sigma": 0.6},
        ]
    if quality is None and (not born_digital or (variant != "clean" and rng.random() < 0.5)):
        quality = rng.randint(70, 92)  # scans and photos of paper are JPEGs (a grainy PNG is huge)
    if quality is not None:
        degr.append({"op": "jpeg", "quality": quality})
        files = {f"{case}.jpg": jpeg_bytes(arr, quality)}
    else:
        files = {f"{case}.png": png_bytes(arr)}
    return Doc(case, doc_type, variant, files, truth, degr, _image_info(arr, rotation))


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_doc(doc: Doc, out_dir: Path, seed: int) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in doc.files.items():
        path = out_dir / name
        path.write_bytes(data)
        written.append(path)
    expected = out_dir / f"{doc.case}.expected.json"
    if doc.truth:
        record = {
            "case": doc.case,
            "doc_type": doc.doc_type,
            "variant": doc.variant,
            "files": sorted(doc.files),
            **doc.truth,
            "degradations": doc.degradations,
            "image": doc.image,
            "generator": {"script": "scripts/make_samples.py", "seed": seed},
        }
        expected.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        written.append(expected)
    elif expected.exists():
        expected.unlink()
    return written


def generate_samples(out_dir: Path, seed: int, cases: Sequence[str] | None = None) -> list[Path]:
    written: list[Path] = []
    for case, builder in SAMPLE_CASES.items():
        if cases and case not in cases:
            continue
        s = case_seed(seed, case)
        doc = builder(case, random.Random(s), np.random.default_rng(s))
        written += write_doc(doc, out_dir, seed)
    return written


def generate_random(out_dir: Path, count: int, seed: int, allow_pdf: bool, prefix: str = "inv") -> list[Path]:
    written: list[Path] = []
    for i in range(count):
        case = f"{prefix}_{i:05d}"
        s = case_seed(seed, case)
        doc = build_random(case, random.Random(s), np.random.default_rng(s), allow_pdf)
        written += write_doc(doc, out_dir, seed)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_samples.py",
        description="Generate realistic sample invoices (Chinese VAT fapiao and English) with exact "
        "ground truth (<case>.expected.json). Without --count: the committed sample set into samples/.",
        epilog="Examples: make_samples.py  |  make_samples.py --case vat_general_photo  |  "
        "make_samples.py --out /tmp/bench --count 200 --seed 7 --pdf",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: samples/ of the repo)"
    )
    parser.add_argument(
        "--count", type=int, default=None, help="write N random invoices (random kinds and degradations)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--pdf", action="store_true", help="with --count: write some born-digital ones as PDF"
    )
    parser.add_argument("--prefix", default="inv", help="with --count: file name prefix (default inv)")
    parser.add_argument("--case", action="append", choices=sorted(SAMPLE_CASES), help="only this sample case")
    parser.add_argument("--list", action="store_true", help="list the sample cases and exit")
    args = parser.parse_args(argv)
    if args.list:
        for case, builder in SAMPLE_CASES.items():
            print(f"{case:32s} {builder.__name__}")
        return 0
    if args.count is not None:
        if args.count < 0:
            parser.error("--count must be >= 0")
        if args.out is None:
            parser.error("--count needs --out DIR (samples/ holds only the committed set)")
        written = generate_random(args.out, args.count, args.seed, args.pdf, args.prefix)
    else:
        written = generate_samples(args.out or SAMPLES_DIR, args.seed, args.case)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files ({total / 1e6:.2f} MB) to {(args.out or SAMPLES_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
