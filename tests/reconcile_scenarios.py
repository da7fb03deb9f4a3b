"""Synthetic ledgers for the reconciliation tests: a seeded scenario generator and its scoring.

``make_scenario`` draws invoices as the index holds them and a ledger built from them where some rows
carry a known fault (see ``FAULTS``); ``write_csv`` and ``write_xlsx`` put the ledger in a real file;
``score`` and ``assert_precision_recall`` measure a reconciliation against the expected outcomes.
Also the stored results and the XLSX ledgers the command and re-match tests build their stores from.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl

from pipeline.fapiao import USCC_ALPHABET, uscc_check_char
from pipeline.reconcile import InvoiceRecord, Outcome, Reconciliation, canonical_id

CENT = Decimal("0.01")
HEADERS_ZH = [
    "序号",
    "发票代码",
    "发票号码",
    "开票日期",
    "销售方名称",
    "销售方纳税人识别号",
    "金额",
    "税额",
    "价税合计",
    "购买方名称",
    "凭证号",
]
FIELD_OF_HEADER = dict(
    zip(
        HEADERS_ZH[1:10],
        [
            "invoice_code",
            "invoice_number",
            "issue_date",
            "seller_name",
            "seller_tax_id",
            "amount_excl_tax",
            "tax_amount",
            "total_amount",
            "buyer_name",
        ],
        strict=True,
    )
)
BUYER = "北京长城软件有限公司"

# fault -> (expected outcome, fields expected to differ)
FAULTS: dict[str, tuple[str, frozenset[str]]] = {
    "clean": ("matched", frozenset()),
    "number_typo": ("matched_with_differences", frozenset({"invoice_number"})),
    "number_transposed": ("matched_with_differences", frozenset({"invoice_number"})),
    "ocr_number": ("matched", frozenset()),
    "ocr_tax_id_on_invoice": ("matched", frozenset()),
    "name_variant": ("matched", frozenset()),
    "name_typo": ("matched_with_differences", frozenset({"seller_name"})),
    "fen_off": ("matched", frozenset()),
    "amount_wrong": ("matched_with_differences", frozenset({"total_amount"})),
    "date_wrong": ("matched_with_differences", frozenset({"issue_date"})),
    "number_blank": ("matched_with_differences", frozenset({"invoice_number"})),
    "number_unread": ("matched", frozenset()),
    "mojibake": ("matched", frozenset()),
    "missing": ("not_in_ledger", frozenset()),
    "booked_twice": ("duplicate", frozenset()),
    "scanned_twice": ("matched", frozenset()),
    # two faults on one row, still recoverable
    "number_typo+name_variant": ("matched_with_differences", frozenset({"invoice_number"})),
    "number_transposed+date_wrong": ("matched_with_differences", frozenset({"invoice_number", "issue_date"})),
    "ocr_number+fen_off": ("matched", frozenset()),
    "number_blank+name_variant": ("matched_with_differences", frozenset({"invoice_number"})),
    "ocr_tax_id_on_invoice+mojibake": ("matched", frozenset()),
    "booked_twice+amount_wrong": ("duplicate", frozenset({"total_amount"})),
}
WEIGHTS = {
    "clean": 40,
    "number_typo": 5,
    "number_transposed": 5,
    "ocr_number": 5,
    "ocr_tax_id_on_invoice": 4,
    "name_variant": 5,
    "name_typo": 4,
    "fen_off": 5,
    "amount_wrong": 4,
    "date_wrong": 3,
    "number_blank": 3,
    "number_unread": 2,
    "mojibake": 3,
    "missing": 5,
    "booked_twice": 3,
    "scanned_twice": 4,
    "number_typo+name_variant": 2,
    "number_transposed+date_wrong": 2,
    "ocr_number+fen_off": 2,
    "number_blank+name_variant": 2,
    "ocr_tax_id_on_invoice+mojibake": 2,
    "booked_twice+amount_wrong": 2,
}
CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "天津", "重庆", "西安", "苏州"]
WORDS = [
    "长城",
    "金桥",
    "华信",
    "恒达",
    "宏远",
    "星辰",
    "东方",
    "博锐",
    "鼎盛",
    "瑞丰",
    "安泰",
    "中科",
    "远景",
]
TRADES = ["软件", "建筑工程", "物流", "商贸", "科技", "餐饮管理", "信息技术", "电子", "文化传媒", "机械设备"]
EN_SELLERS = ["Acme Trading Co., Ltd.", "Blue Harbor Logistics Limited", "Northwind Supplies Company Limited"]


@dataclass
class Scenario:
    invoices: list[InvoiceRecord]
    rows: list[dict[str, str]]  # ledger rows as cells under HEADERS_ZH
    expected_invoice: dict[
        str, tuple[str, int | None, str | None]
    ]  # doc -> (outcome, row index, related doc)
    expected_row: dict[int, str]  # row index -> outcome for rows no invoice claims
    expected_diffs: dict[str, frozenset[str]]
    fault_of: dict[str, str] = field(default_factory=dict)

    def row_number(self, index: int) -> int:
        return index + 2  # header on row 1


def _tax_id(rng: random.Random) -> str:
    first = (
        "91"
        + "".join(rng.choice("0123456789") for _ in range(6))
        + "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    )
    return first + uscc_check_char(first)


def _seller_name(rng: random.Random) -> str:
    city = rng.choice(CITIES)
    core = rng.choice(WORDS) + rng.choice(WORDS)
    trade = rng.choice(TRADES)
    suffix = rng.choice(["有限公司", "有限责任公司", "股份有限公司"])
    return f"{core}（{city}）{trade}{suffix}" if rng.random() < 0.3 else f"{city}{core}{trade}{suffix}"


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _typo(rng: random.Random, digits: str) -> str:
    i = rng.randrange(len(digits))
    return digits[:i] + rng.choice([d for d in "0123456789" if d != digits[i]]) + digits[i + 1 :]


def _transpose(rng: random.Random, digits: str) -> str | None:
    spots = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1]]
    if not spots:
        return None
    i = rng.choice(spots)
    return digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]


LOOKALIKE = {"0": "O", "1": "I", "8": "B"}


def _ocr_confuse(rng: random.Random, text: str) -> str | None:
    spots = [i for i, c in enumerate(text) if c in LOOKALIKE]
    if not spots:
        return None
    i = rng.choice(spots)
    return text[:i] + LOOKALIKE[text[i]] + text[i + 1 :]


def _name_variant(rng: random.Random, name: str) -> str:
    if name.isascii():
        swapped = name.replace("Co., Ltd.", "COMPANY LIMITED") if "Co., Ltd." in name else name
        return swapped.replace("Company Limited", "Co. Ltd").replace("Limited", "Ltd.").upper()
    if "（" in name:
        return name.replace("（", "(").replace("）", ")")
    if name.endswith("有限责任公司"):
        return name[: -len("有限责任公司")] + "有限公司"
    if name.endswith("股份有限公司"):
        return name[:2] + " " + name[2:]
    return name[: -len("有限公司")] + "有限责任公司"


def _name_typo(rng: random.Random, name: str) -> str:
    i = rng.randrange(2, 6)
    other = rng.choice([c for c in "华盛达通利泰信源佳联" if c != name[i]])
    return name[:i] + other + name[i + 1 :]


def make_scenario(seed: int, n: int, latin1_mojibake: bool = True) -> Scenario:
    rng = random.Random(seed)
    sellers = [(_seller_name(rng), _tax_id(rng)) for _ in range(120)]
    sellers += [(name, _tax_id(rng)) for name in EN_SELLERS]
    counters = {name: rng.randrange(10_000_000, 90_000_000) for name, _ in sellers}
    buyer_tax = _tax_id(rng)
    start = date(2024, 1, 1)

    def new_invoice(k: int) -> InvoiceRecord:
        seller, tax_id = rng.choice(sellers)
        counters[seller] += rng.randrange(1, 4)  # sequential numbers per seller: near neighbours exist
        kind = rng.random()
        if seller in EN_SELLERS:
            code, number, doc_type = None, f"INV{counters[seller]}", "generic_invoice"
        elif kind < 0.35:
            code = f"0{rng.choice(['1100', '3100', '4403'])}{rng.choice(['23', '24'])}{rng.randrange(1000):03d}11"
            number, doc_type = f"{counters[seller] % 10**8:08d}", "vat_e_invoice_general"
        elif kind < 0.6:
            code = (
                f"{rng.choice(['1100', '3200', '4400'])}{rng.choice(['23', '24'])}{rng.randrange(1000):03d}0"
            )
            number, doc_type = f"{counters[seller] % 10**8:08d}", "vat_special_paper"
        else:
            code, number = None, f"24{rng.choice(['11', '31', '44'])}20000000{counters[seller]:08d}"
            doc_type = "fully_digital_general"
        excl = Decimal(rng.randrange(1000, 5_000_000)) / 100
        rate = Decimal(rng.choice(["0.13", "0.09", "0.06", "0.03", "0.01"]))
        tax = (excl * rate).quantize(CENT, rounding=ROUND_HALF_UP)
        return InvoiceRecord(
            document_id=f"{rng.getrandbits(256):064x}",
            source_name=f"scan_{k:05d}.jpg",
            doc_type=doc_type,
            status="ok",
            invoice_code=code,
            invoice_number=number,
            issue_date=start + timedelta(days=rng.randrange(366)),
            buyer_name=BUYER,
            buyer_tax_id=buyer_tax,
            seller_name=seller,
            seller_tax_id=None if doc_type == "generic_invoice" else tax_id,
            amount_excl_tax=None if doc_type == "generic_invoice" else excl,
            tax_amount=None if doc_type == "generic_invoice" else tax,
            total_amount=excl + tax,
            result_key=f"documents/xx/{k}/result.json",
            ingested_at=1000.0 + k,
        )

    def as_row(inv: InvoiceRecord, serial: int) -> dict[str, str]:
        return {
            "序号": str(serial),
            "发票代码": inv.invoice_code or "",
            "发票号码": inv.invoice_number or "",
            "开票日期": inv.issue_date.isoformat() if inv.issue_date else "",
            "销售方名称": inv.seller_name or "",
            "销售方纳税人识别号": inv.seller_tax_id or "",
            "金额": _money(inv.amount_excl_tax) if inv.amount_excl_tax is not None else "",
            "税额": _money(inv.tax_amount) if inv.tax_amount is not None else "",
            "价税合计": _money(inv.total_amount) if inv.total_amount is not None else "",
            "购买方名称": BUYER,
            "凭证号": f"记-{serial:05d}",
        }

    base = [new_invoice(k) for k in range(n)]
    extras = [new_invoice(n + k) for k in range(n // 20)]  # ledger rows for invoices nobody scanned
    numbers_in_use = {canonical_id(inv.invoice_number) for inv in base + extras}
    first_bookings: list[tuple[int, int]] = []  # (row, its repeat): the repeat must come later
    faults = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=n)
    if not latin1_mojibake:
        faults = ["clean" if "mojibake" in f else f for f in faults]

    invoices: list[InvoiceRecord] = []
    rows: list[dict[str, str]] = []
    scenario = Scenario(invoices, rows, {}, {}, {})

    def inject(part: str, inv: InvoiceRecord, row: dict[str, str]) -> InvoiceRecord | None:
        """Apply one fault to the invoice or its ledger row; None when it cannot apply to this one."""
        if part in ("number_typo", "number_transposed", "ocr_number"):
            digits = inv.invoice_number or ""
            if part == "ocr_number":
                changed = _ocr_confuse(rng, digits)
            else:
                changed = None
                for _ in range(20):
                    body = digits[3:] if digits.startswith("INV") else digits
                    body = _typo(rng, body) if part == "number_typo" else _transpose(rng, body)
                    candidate = ("INV" + body) if digits.startswith("INV") and body else body
                    if candidate and canonical_id(candidate) not in numbers_in_use:
                        changed = candidate
                        break
            if changed is None:
                return None
            row["发票号码"] = changed
            numbers_in_use.add(canonical_id(changed))
        elif part == "ocr_tax_id_on_invoice":
            confused = _ocr_confuse(rng, inv.seller_tax_id or "")
            if confused is None:
                return None
            inv = replace(inv, seller_tax_id=confused)
        elif part == "name_variant":
            row["销售方名称"] = _name_variant(rng, inv.seller_name or "")
        elif part in ("name_typo", "mojibake"):
            if inv.seller_name in EN_SELLERS:
                return None
            name = inv.seller_name or ""
            row["销售方名称"] = (
                _name_typo(rng, name) if part == "name_typo" else name.encode("gbk").decode("latin-1")
            )
        elif part == "fen_off":
            row["价税合计"] = _money((inv.total_amount or Decimal(0)) + rng.choice([CENT, -CENT]))
        elif part == "amount_wrong":
            row["价税合计"] = _money(
                (inv.total_amount or Decimal(0)) + Decimal(rng.randrange(100, 90000)) / 100
            )
        elif part == "date_wrong":
            assert inv.issue_date
            row["开票日期"] = (inv.issue_date + timedelta(days=rng.choice([-3, -1, 1, 2, 10]))).isoformat()
        elif part == "number_blank":
            row["发票号码"] = ""
        elif part == "number_unread":
            inv = replace(inv, invoice_number=None, review_fields=("invoice_number",))
        return inv

    for k, (inv, fault) in enumerate(zip(base, faults, strict=True)):
        row = as_row(inv, len(rows) + 1)
        original_row = dict(row)
        changed_inv: InvoiceRecord | None = inv
        for part in fault.split("+"):
            changed_inv = inject(part, changed_inv, row) if changed_inv is not None else None
        if changed_inv is None:
            fault, row = "clean", original_row
        else:
            inv = changed_inv
        invoices.append(inv)
        scenario.fault_of[inv.document_id] = fault
        diffs = frozenset().union(*(FAULTS[part][1] for part in fault.split("+")))
        outcome = FAULTS[fault.split("+")[0]][0]
        if outcome == "matched" and diffs:
            outcome = "matched_with_differences"
        if fault == "missing":
            scenario.expected_invoice[inv.document_id] = (outcome, None, None)
            continue
        rows.append(row)
        index = len(rows) - 1
        scenario.expected_invoice[inv.document_id] = (outcome, index, None)
        scenario.expected_diffs[inv.document_id] = diffs
        if fault.startswith("booked_twice"):
            rows.append({**original_row, "序号": str(len(rows) + 1), "凭证号": f"记-{len(rows) + 1:05d}"})
            if fault == "booked_twice":
                scenario.expected_row[len(rows) - 1] = "duplicate"
                first_bookings.append((index, len(rows) - 1))
            else:
                # the first booking has a wrong amount: the clean second one is the match
                scenario.expected_row[index] = "duplicate"
                scenario.expected_invoice[inv.document_id] = ("duplicate", len(rows) - 1, None)
        if fault == "scanned_twice":
            copy = replace(
                inv,
                document_id=f"{rng.getrandbits(256):064x}",
                source_name=f"rescan_{k:05d}.pdf",
                ingested_at=inv.ingested_at + 100_000,
            )
            invoices.append(copy)
            scenario.fault_of[copy.document_id] = "second_scan"
            scenario.expected_invoice[copy.document_id] = ("duplicate", index, inv.document_id)
    # extra ledger rows: invoices nobody scanned, a few of them booked twice
    for k, extra in enumerate(extras):
        rows.append(as_row(extra, len(rows) + 1))
        scenario.expected_row[len(rows) - 1] = "no_invoice_scanned"
        if k % 10 == 0:
            rows.append(as_row(extra, len(rows) + 1))
            scenario.expected_row[len(rows) - 1] = "duplicate"
            first_bookings.append((len(rows) - 2, len(rows) - 1))
    # shuffle the ledger (a ledger is in booking order, not scan order), keeping expectations aligned
    order = list(range(len(rows)))
    rng.shuffle(order)
    # keep each duplicate after its first booking so "the first row" is the one that stays
    position = {old: new for new, old in enumerate(order)}
    for first, second in first_bookings:
        if position[second] < position[first]:
            position[first], position[second] = position[second], position[first]
    new_order = sorted(range(len(rows)), key=lambda old: position[old])
    scenario.rows = [{**rows[old], "序号": str(new + 1)} for new, old in enumerate(new_order)]
    scenario.expected_row = {position[old]: outcome for old, outcome in scenario.expected_row.items()}
    scenario.expected_invoice = {
        doc: (outcome, position[index] if index is not None else None, related)
        for doc, (outcome, index, related) in scenario.expected_invoice.items()
    }
    return scenario


# ---- writing ledgers ------------------------------------------------------------------------------


def write_csv(rows: list[dict[str, str]], path: Path, encoding: str, delimiter: str = ",") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HEADERS_ZH, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_xlsx(rows: list[dict[str, str]], path: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADERS_ZH)
    for row in rows:
        cells: list[object] = []
        for header in HEADERS_ZH:
            value = row[header]
            if header in ("金额", "税额", "价税合计") and value:
                cells.append(float(value))  # real number cells, as an ERP export has them
            elif header == "开票日期" and value:
                cells.append(date.fromisoformat(value))
            else:
                cells.append(value)
        sheet.append(cells)
    workbook.save(path)
    return path


# ---- scoring --------------------------------------------------------------------------------------


def score(
    scenario: Scenario, result: Reconciliation
) -> tuple[dict[str, tuple[float, float, int]], list[str]]:
    """Per outcome: (precision, recall, support). An outcome only counts when its link is right too:
    the ledger row of a match, the fields of a difference, the first scan of a duplicate."""
    expected: dict[tuple[str, object], tuple[str, object]] = {}
    for doc, (outcome, index, related) in scenario.expected_invoice.items():
        link: object = related or (
            (scenario.row_number(index), scenario.expected_diffs.get(doc, frozenset()))
            if index is not None
            else None
        )
        if outcome == "duplicate" and related is None:
            link = (scenario.row_number(index), "booked twice") if index is not None else None
        expected[("invoice", doc)] = (outcome, link)
    for index, outcome in scenario.expected_row.items():
        expected[("row", scenario.row_number(index))] = (outcome, None)
    claimed = {
        ("row", scenario.row_number(index)): ("claimed", doc)
        for doc, (outcome, index, related) in scenario.expected_invoice.items()
        if index is not None and related is None
    }
    expected.update(claimed)

    actual: dict[tuple[str, object], tuple[str, object]] = {}
    for entry in result.entries:
        if entry.invoice is not None:
            doc = entry.invoice.document_id
            link: object = None
            if entry.related_document:
                link = entry.related_document
            elif entry.outcome == Outcome.DUPLICATE and entry.ledger_row is not None:
                link = (entry.ledger_row.row_number, "booked twice")
            elif entry.ledger_row is not None:
                link = (entry.ledger_row.row_number, frozenset(d.field for d in entry.differences))
            actual[("invoice", doc)] = (str(entry.outcome), link)
            if entry.ledger_row is not None and not entry.related_document:
                actual[("row", entry.ledger_row.row_number)] = ("claimed", doc)
        else:
            assert entry.ledger_row is not None
            actual[("row", entry.ledger_row.row_number)] = (str(entry.outcome), None)

    classes = sorted({label for label, _ in expected.values()} | {label for label, _ in actual.values()})
    metrics: dict[str, tuple[float, float, int]] = {}
    for cls in classes:
        predicted = [key for key, value in actual.items() if value[0] == cls]
        truth = [key for key, value in expected.items() if value[0] == cls]
        hits_p = sum(actual[key] == expected.get(key) for key in predicted)
        hits_r = sum(expected[key] == actual.get(key) for key in truth)
        metrics[cls] = (
            hits_p / len(predicted) if predicted else 1.0,
            hits_r / len(truth) if truth else 1.0,
            len(truth),
        )
    wrong = [
        f"{key} [{scenario.fault_of.get(str(key[1]), '')}]: expected {expected.get(key)}, got {actual.get(key)}"
        for key in sorted(set(expected) | set(actual), key=str)
        if expected.get(key) != actual.get(key)
    ]
    return metrics, wrong


def assert_precision_recall(scenario: Scenario, result: Reconciliation, minimum: float = 0.99) -> dict:
    metrics, wrong = score(scenario, result)
    summary = {cls: f"P={p:.4f} R={r:.4f} n={n}" for cls, (p, r, n) in metrics.items()}
    for cls, (precision, recall, support) in metrics.items():
        assert precision >= minimum and recall >= minimum, (cls, summary, wrong[:20])
        if cls != "clean":
            assert support >= 10, f"too few {cls} cases to measure: {support}"
    return metrics


# ---- stored invoices and ledgers for the command and re-match tests ------------------------------


def stored_result(document_id: str, source_name: str, values: dict[str, str], review: tuple[str, ...] = ()):
    from pipeline.model import DocType, Field, FieldSource, FieldStatus, InvoiceResult, PageInfo

    fields = {
        name: Field(
            value,
            0.7 if name in review else 0.99,
            FieldStatus.NEEDS_REVIEW if name in review else FieldStatus.OK,
            FieldSource.OCR,
            reasons=["weak read"] if name in review else [],
        )
        for name, value in values.items()
    }
    return InvoiceResult(
        document_id, source_name, DocType.VAT_SPECIAL_PAPER, fields, pages=[PageInfo(0, 10, 10, "ocr")]
    )


def store_invoices(
    root: Path, invoices: list[tuple[str, str, str, str, str]], index: str | None = None, first_id: int = 1
) -> dict[str, str]:
    """Store ``(name, number, day, total, seller)`` invoices with code 1100214130; their ids by name."""
    from pipeline.store import open_store

    store = open_store(str(root), index=index)
    ids = {}
    try:
        for k, (name, number, day, total, seller) in enumerate(invoices):
            values = {
                "invoice_code": "1100214130",
                "invoice_number": number,
                "issue_date": day,
                "seller_name": seller,
                "total_amount": total,
            }
            document_id = f"{k + first_id:02x}" * 32
            png = b"\x89PNG\r\n\x1a\n" + bytes([k])
            assert store.save(
                f"original {k}".encode(), name, stored_result(document_id, name, values), [(0, png)]
            )
            ids[name] = document_id
    finally:
        store.close()
    return ids


def xlsx_ledger(path: Path, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Invoice Code", "Invoice No", "Date", "Vendor", "Total", "Cost centre"])
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path
