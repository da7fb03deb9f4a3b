"""Generated tax-platform exports with injected faults, and the held invoices and ledger to go with them.

``make_scenario`` draws invoices (tax-control era: 12-digit code + 8-digit number; 全电: 20-digit
number), decides for each which fault it carries and so the outcome the three-way reconciliation
must give, and lays them out as the three sources. ``write_exports`` writes the platform's lists
as real-looking files: the 全量发票查询 XLSX (a title row above the header, a totals row at the
bottom, a sheet of item lines), the 数电 抵扣勾选 list as a GBK CSV and the older 综合服务平台 勾选
list as a UTF-8 CSV with BOM (status codes 0-4), each with a few bad rows.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl

from pipeline.fapiao import USCC_ALPHABET, uscc_check_char
from pipeline.reconcile import InvoiceRecord
from pipeline.reconcile.sources import LedgerRow

CENT = Decimal("0.01")
BUYER = "北京长城软件有限公司"
START = date(2024, 1, 1)
DAYS = 180

# fault -> how many invoices carry it (per 1,000); the outcome each must give is in TRUTH
FAULTS: dict[str, int] = {
    "matched": 260,
    "not_on_platform": 50,
    "platform_only": 50,
    "voided": 40,
    "red_full": 40,
    "red_partial": 40,
    "out_of_control": 25,
    "abnormal": 25,
    "amount_differs": 40,
    "party_differs": 40,
    "high_risk": 40,
    "deducted_not_booked": 50,
    "booked_twice": 30,
    "not_in_ledger": 40,
    "no_invoice_scanned": 40,
    "misread_number": 20,  # OCR read one digit of the held invoice's number wrong
    "misread_amount": 20,  # ... or its amount
}
TRUTH = {
    "matched": "matched",
    "not_on_platform": "not_on_platform",
    "platform_only": "platform_only",
    "voided": "voided_but_booked",
    "red_full": "red_reversed_but_booked",
    "red_partial": "red_reversed_but_booked",
    "out_of_control": "abnormal_but_booked",
    "abnormal": "abnormal_but_booked",
    "amount_differs": "platform_differs",
    "party_differs": "platform_differs",
    "high_risk": "high_risk",
    "deducted_not_booked": "deducted_not_booked",
    "booked_twice": "booked_twice",
    "not_in_ledger": "not_in_ledger",
    "no_invoice_scanned": "no_invoice_scanned",
    "misread_number": "platform_differs",
    "misread_amount": "platform_differs",
}

FULL_HEADERS = [
    "序号", "发票代码", "发票号码", "数电发票号码", "销方识别号", "销方名称", "购方识别号", "购买方名称",
    "开票日期", "金额", "税额", "价税合计", "发票来源", "发票票种", "发票状态", "是否正数发票",
    "发票风险等级", "开票人", "备注",
]  # fmt: skip
DEDUCTION_HEADERS = [
    "是否勾选", "数电发票号码", "发票代码", "发票号码", "开票日期", "金额", "票面税额", "有效抵扣税额",
    "销售方纳税人名称", "销售方纳税人识别号", "票种", "发票状态", "红字锁定标志", "勾选时间", "发票风险等级",
]  # fmt: skip
LEGACY_HEADERS = [
    "发票代码", "发票号码", "开票日期", "销方名称", "金额", "税额", "有效税额", "勾选日期", "发票类型",
    "发票状态", "管理状态",
]  # fmt: skip
ITEM_HEADERS = ["数电发票号码", "发票代码", "发票号码", "货物或应税劳务名称", "规格型号", "单位", "数量", "单价", "金额", "税率", "税额"]  # fmt: skip


def _uscc(rng: random.Random) -> str:
    body = "91110" + "".join(rng.choice(USCC_ALPHABET[:10]) for _ in range(12))
    return body + uscc_check_char(body)


@dataclass
class Invoice:
    """One invoice as it truly is, and where it is (held, booked, on the platform)."""

    key: int
    fault: str
    digital: bool
    code: str | None
    number: str
    day: date
    excl: Decimal
    tax: Decimal
    seller: str
    seller_id: str
    held: bool = True
    booked: int = 1  # ledger rows booking it
    on_platform: bool = True
    platform_file: str = "full"  # full, deduction, legacy
    also_in: tuple[str, ...] = ()
    status: str = "正常"
    risk: str = "正常"
    deducted: bool = False
    platform_changes: dict[str, object] = field(default_factory=dict)
    red_of: int | None = None  # a red-letter invoice: the key of its blue invoice
    remarks: str = ""

    @property
    def total(self) -> Decimal:
        return self.excl + self.tax

    @property
    def label(self) -> str:
        return f"{self.code}/{self.number}" if self.code else self.number


@dataclass
class Scenario:
    invoices: list[Invoice]
    held: list[InvoiceRecord]
    ledger: list[LedgerRow]

    def truth(self, invoice: Invoice) -> str:
        return "platform_only" if invoice.red_of is not None else TRUTH[invoice.fault]


def _amounts(rng: random.Random) -> tuple[Decimal, Decimal]:
    excl = Decimal(rng.randint(10_000, 5_000_000)) / 100
    rate = rng.choice((Decimal("0.13"), Decimal("0.06"), Decimal("0.09")))
    return excl, (excl * rate).quantize(CENT, rounding=ROUND_HALF_UP)


def make_scenario(n: int = 1000, seed: int = 15) -> Scenario:
    rng = random.Random(seed)
    sellers = [
        (f"北京{word}科技有限公司", _uscc(rng))
        for word in ("金桥", "智源", "新纪元", "启明", "凯德", "远航", "华信", "博雅", "天成", "卓越")
    ]
    plan = [fault for fault, per in FAULTS.items() for _ in range(max(1, per * n // 1000))]
    rng.shuffle(plan)
    invoices: list[Invoice] = []
    used_numbers: set[str] = set()

    def new_number(digital: bool) -> tuple[str | None, str]:
        while True:
            if digital:
                number = "24" + "11" + "2" + "".join(rng.choice("0123456789") for _ in range(13)) + "00"
                number = number[:20]
                code = None
            else:
                number = "".join(rng.choice("0123456789") for _ in range(8))
                code = (
                    "0" + "1100" + "24" + rng.choice(("101", "102", "103")) + rng.choice(("11", "04", "01"))
                )
            if (code, number) not in used_numbers:
                used_numbers.add((code, number))  # type: ignore[arg-type]
                return code, number

    for k, fault in enumerate(plan):
        digital = fault != "voided" and rng.random() < 0.5  # 全电 invoices are reversed, never voided
        code, number = new_number(digital)
        excl, tax = _amounts(rng)
        seller, seller_id = rng.choice(sellers)
        margin = 20 if fault == "not_on_platform" else 0
        day = START + timedelta(days=rng.randint(margin, DAYS - 30 - margin))
        inv = Invoice(k, fault, digital, code, number, day, excl, tax, seller, seller_id)
        inv.deducted = rng.random() < 0.4
        inv.platform_file = _file_for(inv, rng)
        if fault == "not_on_platform":
            inv.on_platform = False
        elif fault == "platform_only":
            inv.held, inv.booked, inv.deducted = False, 0, False
        elif fault == "voided":
            inv.status = "作废"
        elif fault in ("red_full", "red_partial"):
            inv.platform_file = "full"
            inv.status = "已红冲" if fault == "red_full" else "部分红冲"
            shares = (
                [Decimal(1)]
                if fault == "red_full"
                else rng.choice(([Decimal("0.3")], [Decimal("0.2"), Decimal("0.25")]))
            )
            for m, share in enumerate(shares):
                rcode, rnumber = new_number(digital)
                r_excl = -(excl * share).quantize(CENT, rounding=ROUND_HALF_UP)
                r_tax = -(tax * share).quantize(CENT, rounding=ROUND_HALF_UP)
                if digital:
                    remarks = f"被红冲蓝字数电发票号码：{number} 红字发票信息确认单编号：{rng.randint(10**15, 10**16 - 1)}"
                else:
                    remarks = f"对应正数发票代码:{code}号码:{number}"
                red = Invoice(
                    len(plan) + len(invoices) + 10_000 + m, fault, digital, rcode, rnumber,
                    day + timedelta(days=3 + m), r_excl, r_tax, seller, seller_id,
                    held=False, booked=0, remarks=remarks, red_of=k,
                )  # fmt: skip
                invoices.append(red)
        elif fault == "out_of_control":
            inv.status = "失控"
        elif fault == "abnormal":
            inv.status = "异常"
        elif fault == "amount_differs":
            bump = Decimal(rng.choice((100, 1000, 9)))
            inv.platform_changes = {"excl": excl + bump, "tax": tax}
        elif fault == "party_differs":
            other = next(s for s in sellers if s[0] != seller)
            inv.platform_changes = {"seller": other[0], "seller_id": other[1]}
            if inv.platform_file == "legacy":
                inv.platform_changes = {"seller": other[0]}
        elif fault == "high_risk":
            inv.risk = "高风险"
        elif fault == "deducted_not_booked":
            inv.booked, inv.deducted, inv.held = 0, True, rng.random() < 0.5
            if inv.platform_file == "full":  # the full list does not say what was deducted
                inv.also_in = ("deduction",) if digital else ("legacy",)
        elif fault == "booked_twice":
            inv.booked = 2
        elif fault == "not_in_ledger":
            inv.booked, inv.deducted = 0, False
        elif fault == "no_invoice_scanned":
            inv.held = False
        if (
            not inv.also_in
            and inv.platform_file == "full"
            and inv.deducted
            and inv.red_of is None
            and "red" not in fault
            and rng.random() < 0.5
        ):
            inv.also_in = ("deduction",) if digital else ("legacy",)
        invoices.append(inv)
    invoices.sort(key=lambda inv: inv.key)
    return Scenario(invoices, _held(invoices, rng), _ledger(invoices, rng))


def _file_for(inv: Invoice, rng: random.Random) -> str:
    if inv.fault in ("high_risk",):
        return rng.choice(("full", "deduction")) if inv.digital else "full"
    if inv.fault in ("red_full", "red_partial"):
        return "full"
    if inv.digital:
        return rng.choice(("full", "full", "deduction"))
    return rng.choice(("full", "full", "legacy"))


_LOOKALIKE = {"0": "O", "1": "I", "8": "B", "5": "S"}


def _ocr_noise(text: str, rng: random.Random) -> str:
    """A look-alike character now and then, as OCR reads digits (0/O, 1/I, 8/B, 5/S)."""
    if rng.random() > 0.15:
        return text
    k = rng.randrange(len(text))
    return text[:k] + _LOOKALIKE.get(text[k], text[k]) + text[k + 1 :]


def _misread(number: str, rng: random.Random) -> str:
    k = rng.randrange(2, len(number) - 1)
    return number[:k] + str((int(number[k]) + rng.randint(1, 8)) % 10) + number[k + 1 :]


def _held(invoices: list[Invoice], rng: random.Random) -> list[InvoiceRecord]:
    out = []
    for inv in invoices:
        if not inv.held:
            continue
        number = _misread(inv.number, rng) if inv.fault == "misread_number" else _ocr_noise(inv.number, rng)
        excl = inv.excl + Decimal(rng.choice((10, 100))) if inv.fault == "misread_amount" else inv.excl
        out.append(
            InvoiceRecord(
                document_id=f"{inv.key:08x}" * 8,
                source_name=f"scan-{inv.key:05d}.jpg",
                doc_type="vat_e_general" if inv.digital else "vat_special_paper",
                invoice_code=inv.code,
                invoice_number=number,
                issue_date=inv.day,
                buyer_name=BUYER,
                seller_name=inv.seller.replace("（", "(").replace("）", ")"),
                seller_tax_id=inv.seller_id,
                amount_excl_tax=excl,
                tax_amount=inv.tax,
                total_amount=excl + inv.tax,
            )
        )
    return out


def _ledger(invoices: list[Invoice], rng: random.Random) -> list[LedgerRow]:
    rows = []
    for inv in invoices:
        for _ in range(inv.booked):
            rows.append(
                LedgerRow(
                    row_number=len(rows) + 2,
                    invoice_code=inv.code,
                    invoice_number=inv.number,
                    issue_date=inv.day,
                    amount_excl_tax=inv.excl,
                    tax_amount=inv.tax,
                    total_amount=inv.total,
                    seller_name=inv.seller,
                    seller_tax_id=inv.seller_id,
                )
            )
    rng.shuffle(rows)
    return [
        LedgerRow(**{**{f: getattr(r, f) for f in LedgerRow.__slots__ if f != "raw"}, "row_number": k + 2})
        for k, r in enumerate(rows)
    ]


def write_ledger_csv(scenario: Scenario, path: Path) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "发票代码",
                "发票号码",
                "开票日期",
                "金额",
                "税额",
                "价税合计",
                "销售方名称",
                "销售方纳税人识别号",
            ]
        )
        for row in sorted(scenario.ledger, key=lambda r: r.row_number):
            out.writerow(
                [row.invoice_code or "", row.invoice_number, row.issue_date.isoformat(), row.amount_excl_tax,
                 row.tax_amount, row.total_amount, row.seller_name, row.seller_tax_id]
            )  # fmt: skip
    return path


# ---- the platform's files -------------------------------------------------------------------------


def _platform_values(inv: Invoice) -> dict[str, object]:
    excl = inv.platform_changes.get("excl", inv.excl)
    tax = inv.platform_changes.get("tax", inv.tax)
    return {
        "excl": excl,
        "tax": tax,
        "total": excl + tax,  # type: ignore[operator]
        "seller": inv.platform_changes.get("seller", inv.seller),
        "seller_id": inv.platform_changes.get("seller_id", inv.seller_id),
    }


def _full_row(inv: Invoice, serial: int, rng: random.Random) -> list[object]:
    v = _platform_values(inv)
    red = inv.red_of is not None
    when = inv.day.isoformat() + (
        f" {rng.randint(8, 18):02d}:{rng.randint(0, 59):02d}:00" if rng.random() < 0.5 else ""
    )
    kind = (
        ("数电票（增值税专用发票）" if inv.digital else "增值税专用发票")
        if not red
        else "红字" + ("数电票（增值税专用发票）" if inv.digital else "增值税专用发票")
    )
    return [
        serial, inv.code or "", "" if inv.digital else inv.number, inv.number if inv.digital else "",
        v["seller_id"], v["seller"], "91110108MA01ABCD0X", BUYER, when, f"{v['excl']:.2f}", f"{v['tax']:.2f}",
        f"{v['total']:.2f}", "电子发票服务平台" if inv.digital else "增值税发票管理系统", kind, inv.status,
        "否" if red else "是", inv.risk, "张三", inv.remarks,
    ]  # fmt: skip


_LEGACY_CODES = {"正常": "0", "失控": "1", "作废": "2", "已红冲": "3", "异常": "4"}


def _deduction_row(inv: Invoice) -> list[object]:
    v = _platform_values(inv)
    return [
        "是" if inv.deducted else "否", inv.number if inv.digital else "", inv.code or "",
        "" if inv.digital else inv.number, inv.day.strftime("%Y/%m/%d"), f"{v['excl']:.2f}", f"{v['tax']:.2f}",
        f"{v['tax']:.2f}" if inv.deducted else "0.00", v["seller"], v["seller_id"],
        "数电票（增值税专用发票）" if inv.digital else "增值税专用发票", inv.status, "否",
        f"{inv.day + timedelta(days=5)} 10:00:00" if inv.deducted else "", inv.risk,
    ]  # fmt: skip


def _legacy_row(inv: Invoice) -> list[object]:
    v = _platform_values(inv)
    return [
        inv.code, inv.number, inv.day.strftime("%Y%m%d"), v["seller"], f"{v['excl']:.2f}", f"{v['tax']:.2f}",
        f"{v['tax']:.2f}" if inv.deducted else "", (inv.day + timedelta(days=5)).isoformat() if inv.deducted else "",
        "增值税专用发票", _LEGACY_CODES[inv.status], "正常",
    ]  # fmt: skip


@dataclass
class Exports:
    full: Path
    deduction: Path
    legacy: Path
    bad_rows: dict[str, list[int]]  # file name -> row numbers of the injected bad rows

    @property
    def paths(self) -> list[Path]:
        return [self.full, self.deduction, self.legacy]


def write_exports(scenario: Scenario, folder: Path, seed: int = 15) -> Exports:
    rng = random.Random(seed)
    on = [inv for inv in scenario.invoices if inv.on_platform]
    full = [inv for inv in on if inv.platform_file == "full"]
    deduction = [inv for inv in on if inv.platform_file == "deduction" or "deduction" in inv.also_in]
    legacy = [inv for inv in on if inv.platform_file == "legacy" or "legacy" in inv.also_in]
    bad: dict[str, list[int]] = {}

    # 全量发票查询: XLSX, a title row, the header on row 2, a totals row, a sheet of item lines
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "发票基础信息"
    sheet.append(["全量发票查询导出结果（2024-01-01 至 2024-06-30）"])
    sheet.append(FULL_HEADERS)
    for serial, inv in enumerate(full, start=1):
        sheet.append(_full_row(inv, serial, rng))
    sheet.append([len(full) + 1, "", "", "", "", "", "", "", "2024-03-03", "abc", "1.00", "1.00"])
    bad["full"] = [sheet.max_row]
    sheet.append(["合计", "", "", "", "", "", "", "", "", f"{sum(inv.excl for inv in full):.2f}"])
    items = workbook.create_sheet("信息汇总表")
    items.append(ITEM_HEADERS)
    for inv in full:
        items.append(
            [inv.number if inv.digital else "", inv.code or "", "" if inv.digital else inv.number, "*信息技术服务*软件开发",
             "", "项", "1", f"{inv.excl:.2f}", f"{inv.excl:.2f}", "6%", f"{inv.tax:.2f}"]
        )  # fmt: skip
    full_path = folder / "全量发票查询.xlsx"
    workbook.save(full_path)

    # 数电 抵扣勾选: GBK CSV, one row with an unreadable amount
    deduction_path = folder / "抵扣勾选.csv"
    with deduction_path.open("w", encoding="gbk", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(DEDUCTION_HEADERS)
        for inv in deduction:
            out.writerow(_deduction_row(inv))
        out.writerow(["否", "", "", "", "2024-02-02", "一百", "", "", "某公司", "", "", "正常", "否", "", ""])
        bad["deduction"] = [len(deduction) + 2]

    # 综合服务平台 勾选: UTF-8 CSV with BOM, status codes 0-4
    legacy_path = folder / "勾选认证.csv"
    with legacy_path.open("w", encoding="utf-8-sig", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(LEGACY_HEADERS)
        for inv in legacy:
            out.writerow(_legacy_row(inv))
        out.writerow(
            ["011002410111", "", "2024-02-02", "某公司", "", "", "", "", "增值税专用发票", "0", "正常"]
        )
        bad["legacy"] = [len(legacy) + 2]
    return Exports(full_path, deduction_path, legacy_path, bad)


def line_truth(scenario: Scenario, lines) -> list[tuple[str, str]]:
    """(expected, found) outcome per line; each line is identified by its invoice number."""
    by_number = {inv.number: inv for inv in scenario.invoices}
    out = []
    for line in lines:
        number = None
        for source in (line.platform, line.ledger_row, line.invoice):
            if source is not None and source.invoice_number in by_number:
                number = source.invoice_number
                break
        if number is None and line.invoice is not None:
            from pipeline.reconcile.match import canonical_id

            wanted = canonical_id(line.invoice.invoice_number)
            number = next((n for n in by_number if canonical_id(n) == wanted), None)
        expected = scenario.truth(by_number[number]) if number else "(unknown line)"
        out.append((expected, str(line.outcome)))
    return out


def precision_recall(pairs: list[tuple[str, str]]) -> dict[str, tuple[float, float, int]]:
    """Per outcome: (precision, recall, support)."""
    outcomes = sorted({e for e, _ in pairs} | {f for _, f in pairs})
    out = {}
    for outcome in outcomes:
        tp = sum(1 for e, f in pairs if e == outcome and f == outcome)
        predicted = sum(1 for _, f in pairs if f == outcome)
        actual = sum(1 for e, _ in pairs if e == outcome)
        out[outcome] = (tp / predicted if predicted else 1.0, tp / actual if actual else 1.0, actual)
    return out
