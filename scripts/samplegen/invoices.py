"""Random but plausible invoice data: parties, items, Chinese VAT invoices (CnInvoice) and English ones
(EnInvoice), each with its exact ground truth."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from samplegen.money import CENT, amount_in_words, make_uscc, money, q2

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
