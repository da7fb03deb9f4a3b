"""Reconciliation against generated ledgers with injected faults, scored by precision and recall.

Every scenario is random but seeded: invoices as the index holds them, and a ledger built from
them where some rows carry a known fault (typo, OCR look-alike, transposed digits, a fen off,
wrong amount or date, garbled encoding, blank number), some invoices are missing, some rows are
extra, some invoices are booked twice and some are scanned twice. The ledger goes through a real
file (CSV in several encodings, or XLSX) and ``read_ledger`` before ``reconcile``.
"""

from __future__ import annotations

import csv
import json
import random
import re
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import openpyxl
import pytest

from pipeline.fapiao import USCC_ALPHABET, uscc_check_char
from pipeline.reconcile import (
    InvoiceRecord,
    Outcome,
    ReconcileError,
    ReconcileOptions,
    Reconciliation,
    canonical_id,
    invoices_from_index,
    load_ledger_rows,
    load_outcomes,
    normalize_name,
    reconcile,
    save_outcomes,
)
from pipeline.reconcile.sources import LedgerRow, read_ledger

if TYPE_CHECKING:
    from pipeline.store import Store

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


# ---- tests ----------------------------------------------------------------------------------------

N = 2500


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return make_scenario(seed=20240611, n=N)


def test_scenario_has_every_fault(scenario: Scenario) -> None:
    counts = Counter(scenario.fault_of.values())
    assert set(FAULTS) <= set(counts), set(FAULTS) - set(counts)
    assert min(counts[f] for f in FAULTS) >= 20, counts


def test_precision_recall_from_utf8_csv(scenario: Scenario, tmp_path: Path) -> None:
    imported = read_ledger(write_csv(scenario.rows, tmp_path / "ledger.csv", "utf-8"))
    assert imported.encoding == "utf-8"
    assert len(imported.rows) == len(scenario.rows)
    result = reconcile(scenario.invoices, imported.rows)
    metrics = assert_precision_recall(scenario, result)
    print(json.dumps({cls: [round(p, 4), round(r, 4), n] for cls, (p, r, n) in metrics.items()}))
    # every outcome is present, and every entry says why in both languages
    assert all(result.counts()[str(o)] > 0 for o in Outcome)
    assert all(e.reason_en and e.reason_zh for e in result.entries)
    # mojibake rows were repaired (and reported), not silently kept garbled
    repaired = [p for p in imported.problems if "wrong encoding" in p.message]
    assert len(repaired) == sum("mojibake" in fault for fault in scenario.fault_of.values())


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("gbk", ","), ("gb18030", ","), ("utf-8-sig", ","), ("utf-16", "\t"), ("xlsx", None)],
)
def test_precision_recall_other_encodings(tmp_path: Path, encoding: str, delimiter: str | None) -> None:
    # GBK cannot hold Latin-1 mojibake, so that fault is left out of these files
    scenario = make_scenario(seed=7, n=1200, latin1_mojibake=encoding in ("utf-8-sig", "utf-16", "xlsx"))
    if encoding == "xlsx":
        path = write_xlsx(scenario.rows, tmp_path / "ledger.xlsx")
    else:
        assert delimiter is not None
        path = write_csv(scenario.rows, tmp_path / f"ledger-{encoding}.csv", encoding, delimiter)
    imported = read_ledger(path)
    expected_encoding = {"gbk": "gbk", "gb18030": "gbk", "xlsx": None}.get(encoding, encoding)
    assert imported.encoding == expected_encoding
    assert len(imported.rows) == len(scenario.rows)
    result = reconcile(scenario.invoices, imported.rows)
    metrics, wrong = score(scenario, result)
    for cls, (precision, recall, _) in metrics.items():
        assert precision >= 0.99 and recall >= 0.99, (cls, metrics, wrong[:10])


def test_tolerance_decides_a_fen(scenario: Scenario, tmp_path: Path) -> None:
    """With no tolerance, a fen off is a difference: the same data, a different answer."""
    imported = read_ledger(write_csv(scenario.rows, tmp_path / "ledger.csv", "utf-8"))
    strict = reconcile(scenario.invoices, imported.rows, ReconcileOptions(amount_tolerance=Decimal(0)))
    fen_docs = {doc for doc, fault in scenario.fault_of.items() if fault == "fen_off"}
    outcomes = {
        e.invoice.document_id: e for e in strict.entries if e.invoice and e.invoice.document_id in fen_docs
    }
    assert len(outcomes) == len(fen_docs)
    for entry in outcomes.values():
        assert entry.outcome == Outcome.MATCHED_WITH_DIFFERENCES
        assert [d.field for d in entry.differences] == ["total_amount"]
        (difference,) = entry.differences
        gap = abs(Decimal(difference.invoice_value or "0") - Decimal(difference.ledger_value or "0"))
        assert gap == CENT
    # and with the default tolerance the reason still mentions the fen
    default = reconcile(scenario.invoices, imported.rows)
    reasons = [e.reason_en for e in default.entries if e.invoice and e.invoice.document_id in fen_docs]
    assert all("within the 0.01 tolerance" in reason for reason in reasons)


def test_one_to_one_and_scores(scenario: Scenario, tmp_path: Path) -> None:
    imported = read_ledger(write_csv(scenario.rows, tmp_path / "ledger.csv", "utf-8"))
    result = reconcile(scenario.invoices, imported.rows)
    claimed = [
        e.ledger_row.row_number
        for e in result.entries
        if e.invoice is not None and e.ledger_row is not None and not e.related_document
    ]
    assert len(claimed) == len(set(claimed)), "a ledger row was used twice"
    for entry in result.entries:
        if entry.outcome in (Outcome.MATCHED, Outcome.MATCHED_WITH_DIFFERENCES):
            assert 0.5 <= entry.score <= 1.0
        if entry.outcome in (Outcome.NOT_IN_LEDGER, Outcome.NO_INVOICE_SCANNED):
            assert entry.score == 0.0
    # every invoice and every ledger row is accounted for exactly once
    assert Counter(e.invoice.document_id for e in result.entries if e.invoice) == Counter(
        inv.document_id for inv in scenario.invoices
    )
    rows = {e.ledger_row.row_number for e in result.entries if e.ledger_row}
    assert rows == {row.row_number for row in imported.rows}


def test_differences_name_both_values(tmp_path: Path) -> None:
    invoice = InvoiceRecord(
        document_id="a" * 64,
        source_name="a.jpg",
        invoice_code="011002400111",
        invoice_number="12345678",
        issue_date=date(2024, 3, 1),
        seller_name="金桥（北京）建筑工程有限责任公司",
        seller_tax_id="91110115MA56E82N05",
        amount_excl_tax=Decimal("100.00"),
        tax_amount=Decimal("13.00"),
        total_amount=Decimal("113.00"),
    )
    row = LedgerRow(
        row_number=2,
        invoice_code="011002400111",
        invoice_number="12345678",
        issue_date=date(2024, 3, 2),
        seller_name="金桥(北京)建筑工程有限公司",
        seller_tax_id="91110115MA56E82NO5",  # letter O for zero: the same ID
        amount_excl_tax=Decimal("100.00"),
        tax_amount=Decimal("13.00"),
        total_amount=Decimal("131.00"),
    )
    (entry,) = reconcile([invoice], [row]).entries
    assert entry.outcome == Outcome.MATCHED_WITH_DIFFERENCES
    assert [(d.field, d.invoice_value, d.ledger_value) for d in entry.differences] == [
        ("issue_date", "2024-03-01", "2024-03-02"),
        ("total_amount", "113.00", "131.00"),
    ]
    assert "row 2" in entry.reason_en and "total incl. tax (invoice 113.00, ledger 131.00)" in entry.reason_en
    assert "第2行" in entry.reason_zh and "价税合计（发票 113.00，台账 131.00）" in entry.reason_zh
    assert "look-alike" in entry.reason_en
    # a one-day window makes the date agree
    (windowed,) = reconcile([invoice], [row], ReconcileOptions(date_window_days=1)).entries
    assert [d.field for d in windowed.differences] == ["total_amount"]


def test_short_number_alone_is_not_proof() -> None:
    """An 8-digit number without a code, with nothing else in common, is a different invoice."""
    invoice = InvoiceRecord(
        document_id="b" * 64,
        invoice_number="00012345",
        issue_date=date(2024, 1, 5),
        seller_name="上海东方物流有限公司",
        total_amount=Decimal("500.00"),
    )
    row = LedgerRow(
        row_number=7,
        invoice_number="00012345",
        issue_date=date(2024, 9, 30),
        seller_name="成都博锐科技有限公司",
        total_amount=Decimal("8800.00"),
    )
    result = reconcile([invoice], [row])
    assert sorted(str(e.outcome) for e in result.entries) == ["no_invoice_scanned", "not_in_ledger"]
    (missing,) = result.of(Outcome.NOT_IN_LEDGER)
    assert "closest ledger row is 7" in missing.reason_en and "第7行" in missing.reason_zh


def test_period_filter() -> None:
    invoices = [
        InvoiceRecord(document_id=f"{k:064x}", invoice_number=f"1000000{k}", issue_date=date(2024, k, 10))
        for k in (1, 2, 3)
    ]
    ledger = [
        LedgerRow(row_number=k + 1, invoice_number=f"1000000{k}", issue_date=date(2024, k, 10))
        for k in (1, 2, 3)
    ]
    ledger.append(LedgerRow(row_number=9, invoice_number="77777777", issue_date=date(2024, 5, 1)))
    options = ReconcileOptions(date_from=date(2024, 2, 1), date_to=date(2024, 3, 31))
    result = reconcile(invoices, ledger, options)
    assert result.counts()["matched"] == 2
    assert result.counts()["no_invoice_scanned"] == 0  # row 9 is outside the period
    assert {e.invoice.document_id for e in result.entries if e.invoice} == {f"{2:064x}", f"{3:064x}"}
    with pytest.raises(ReconcileError):
        ReconcileOptions(date_from=date(2024, 3, 1), date_to=date(2024, 2, 1))
    with pytest.raises(ReconcileError):
        ReconcileOptions(amount_tolerance=Decimal("-0.01"))


def test_normalisation() -> None:
    assert canonical_id("1O63 I33B") == canonical_id("10631338")
    assert canonical_id("12345678") != canonical_id("12345687")
    assert normalize_name("金桥（北京）建筑工程有限责任公司") == normalize_name(
        "金桥 (北京) 建筑工程有限公司"
    )
    assert normalize_name("Acme Trading Company Limited") == normalize_name("ACME Trading Co., Ltd.")
    assert normalize_name("北京长城软件有限公司") != normalize_name("北京长成软件有限公司")


def test_invoices_from_index_rows() -> None:
    rows = [
        {
            "document_id": "c" * 64,
            "source_name": "x.pdf",
            "doc_type": "vat_special_paper",
            "status": "needs_review",
            "invoice_code": "1100214130",
            "invoice_number": "10631331",
            "issue_date": "2021-01-19",
            "seller_name": None,
            "vendor_name": "金桥（北京）建筑工程有限责任公司",
            "total_amount": "48360.72",
            "amount_excl_tax": "44463.10",
            "tax_amount": "3897.62",
            "review_fields": "seller_name,invoice_number",
            "ingested_at": 5.0,
            "result_key": "documents/cc/x/result.json",
        },
        {"document_id": "d" * 64, "source_name": "cat.jpg", "doc_type": "other", "status": "not_an_invoice"},
    ]
    (record,) = invoices_from_index(rows)
    assert record.issue_date == date(2021, 1, 19)
    assert record.total_amount == Decimal("48360.72")
    assert record.seller_name == "金桥（北京）建筑工程有限责任公司"
    assert record.review_fields == ("seller_name", "invoice_number")


def test_outcomes_replace_previous_run(scenario: Scenario, tmp_path: Path) -> None:
    db_path = tmp_path / "index.sqlite"
    sqlite3.connect(db_path).close()
    imported = read_ledger(write_csv(scenario.rows, tmp_path / "ledger.csv", "utf-8"))
    result = reconcile(scenario.invoices, imported.rows)
    written = save_outcomes(db_path, result, imported)
    assert written == len(result.entries)
    small = reconcile(scenario.invoices[:10], imported.rows[:5])
    save_outcomes(db_path, small, None)
    stored = load_outcomes(db_path)
    assert len(stored) == len(small.entries)
    by_outcome = defaultdict(list)
    for row in stored:
        by_outcome[row["outcome"]].append(row)
    for row in by_outcome["matched_with_differences"]:
        assert row["differences"] and {"field", "invoice", "ledger"} <= set(row["differences"][0])
    for row in stored:
        assert row["reason_en"] and row["reason_zh"] and row["reconciled_at"] > 0
    with sqlite3.connect(db_path) as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(reconciliation)")]
        assert columns == [
            "document_id",
            "ledger_row",
            "outcome",
            "score",
            "differences",
            "reason_en",
            "reason_zh",
            "reconciled_at",
        ]
        assert db.execute("SELECT COUNT(*) FROM ledger_rows").fetchone()[0] == len(imported.rows)
    assert load_ledger_rows(db_path) == imported.rows
    assert [row.raw for row in load_ledger_rows(db_path)] == [row.raw for row in imported.rows]


def test_series_of_equal_invoices_is_not_guessed() -> None:
    """Ten equal invoices from one seller on one day (fuel cards, tolls): the one missing from the
    ledger is not matched to the unscanned row two digits away, but a lone typo still is."""

    def invoice(k: int, number: str) -> InvoiceRecord:
        return InvoiceRecord(
            document_id=f"{k:064x}",
            invoice_code="011002400111",
            invoice_number=number,
            issue_date=date(2024, 6, 1),
            seller_name="中国石化销售股份有限公司北京石油分公司",
            total_amount=Decimal("500.00"),
        )

    invoices = [invoice(k, f"106313{k:02d}") for k in range(1, 11)]
    ledger = [
        LedgerRow(
            row_number=k + 1,
            invoice_code="011002400111",
            invoice_number=f"106313{k:02d}",
            issue_date=date(2024, 6, 1),
            seller_name="中国石化销售股份有限公司北京石油分公司",
            total_amount=Decimal("500.00"),
        )
        for k in [*range(1, 5), *range(6, 12)]  # no 05 (not booked); 11 booked but never scanned
    ]
    result = reconcile(invoices, ledger)
    assert result.counts() == {
        "matched": 9,
        "matched_with_differences": 0,
        "not_in_ledger": 1,
        "duplicate": 0,
        "no_invoice_scanned": 1,
    }
    (missing,) = result.of(Outcome.NOT_IN_LEDGER)
    assert missing.invoice is not None and missing.invoice.invoice_number == "10631305"
    # the same two rows without the series around them: a typo (05 -> 11 is two edits), matched
    alone = reconcile([invoices[4]], [ledger[-1]])
    (entry,) = alone.entries
    assert entry.outcome == Outcome.MATCHED_WITH_DIFFERENCES
    assert [d.field for d in entry.differences] == ["invoice_number"]


# ---- the command, end to end ----------------------------------------------------------------------


def _stored_result(document_id: str, source_name: str, values: dict[str, str], review: tuple[str, ...] = ()):
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


STORE_INVOICES = [
    # (source name, number, date, total, seller)
    ("a.jpg", "10631331", "2024-03-01", "113.00", "金桥（北京）建筑工程有限责任公司"),
    ("b.jpg", "10631332", "2024-03-02", "226.00", "北京智源信息技术股份有限公司"),
    ("c.pdf", "10631340", "2024-03-05", "339.00", "北京新纪元商贸有限责任公司"),
    ("d.png", "10631350", "2024-03-09", "452.00", "北京启明医疗器械有限公司"),
    ("e.jpg", "10631360", "2024-04-02", "565.00", "北京凯德网络科技股份有限公司"),
]


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    from pipeline.store import open_store

    root = tmp_path / "store"
    store = open_store(str(root))
    for k, (name, number, day, total, seller) in enumerate(STORE_INVOICES):
        values = {
            "invoice_code": "1100214130",
            "invoice_number": number,
            "issue_date": day,
            "seller_name": seller,
            "total_amount": total,
        }
        png = b"\x89PNG\r\n\x1a\n" + bytes([k])
        store.save(
            f"original {k}".encode(), name, _stored_result(f"{k + 1:02x}" * 32, name, values), [(0, png)]
        )
    store.close()
    return root


def _xlsx_ledger(path: Path, rows: list[list[object]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Invoice Code", "Invoice No", "Date", "Vendor", "Total", "Cost centre"])
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_cli_end_to_end(small_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    ledger = _xlsx_ledger(
        tmp_path / "ledger.xlsx",
        [
            ["1100214130", "10631331", date(2024, 3, 1), "金桥(北京)建筑工程有限公司", 113.0, "A"],
            ["1100214130", "10631323", date(2024, 3, 2), "北京智源信息技术股份有限公司", 226.0, "A"],  # typo
            [
                "1100214130",
                "1O63134O",
                date(2024, 3, 5),
                "北京新纪元商贸有限责任公司",
                339.01,
                "B",
            ],  # look-alikes
            ["1100214130", "10631360", date(2024, 4, 2), "北京凯德网络科技股份有限公司", 565.0, "B"],
            ["1100214130", "10631360", date(2024, 4, 2), "北京凯德网络科技股份有限公司", 565.0, "B"],  # twice
            ["1100214130", "99999999", date(2024, 3, 20), "某某商贸有限公司", 56.5, "C"],  # not scanned
        ],
    )
    out = tmp_path / "report"
    args = ["reconcile", "--ledger", str(ledger), "--store", str(small_store), "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "matched with differences" in printed and "reports:" in printed
    assert main([*args, "--fail-on-mismatch", "-q"]) == 1

    outcomes = {
        (r["document_id"], r["ledger_row"]): r["outcome"] for r in load_outcomes(small_store / "index.sqlite")
    }
    ids = {name: f"{k + 1:02x}" * 32 for k, (name, *_rest) in enumerate(STORE_INVOICES)}
    assert outcomes == {
        (ids["a.jpg"], 2): "matched",
        (ids["b.jpg"], 3): "matched_with_differences",
        (ids["c.pdf"], 4): "matched",
        (ids["d.png"], None): "not_in_ledger",
        (ids["e.jpg"], 5): "duplicate",
        (None, 6): "duplicate",
        (None, 7): "no_invoice_scanned",
    }
    # the index answers for the other commands
    assert main(["query", "--status", "not_in_ledger", "--format", "json", "--store", str(small_store)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["source_name"] for row in listed] == ["d.png"]

    # the reports: every entry in CSV and XLSX, a self-contained HTML linking each page image
    with (out / "reconciliation.csv").open(encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == len(outcomes)
    mwd = next(r for r in records if r["outcome"] == "matched_with_differences")
    assert mwd["differences"] == "invoice number (invoice 10631332, ledger 10631323)"
    assert mwd["page_image"].startswith("file://") and mwd["page_image"].endswith("/pages/1.png")
    workbook = openpyxl.load_workbook(out / "reconciliation.xlsx", read_only=True)
    assert workbook.sheetnames[1:6] == [str(o) for o in Outcome]
    assert len(list(workbook["duplicate"].iter_rows())) == 3  # header, the invoice, the second booking
    page = (out / "reconciliation.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    hrefs = [h for h in re.findall(r'href="([^"#][^"]*)"', page)]
    assert len(hrefs) == len(STORE_INVOICES)
    for href in hrefs:
        assert (out / href).resolve().is_file(), href
    assert "价税合计" in page and "Booked twice" in page


def test_cli_mapping_and_period(small_store: Path, tmp_path: Path) -> None:
    from pipeline.cli import main

    path = tmp_path / "erp.csv"
    path.write_text(
        "单据号,供应商,开票时间,含税金额\n"
        "10631331,金桥（北京）建筑工程有限责任公司,2024-03-01,113.00\n"
        "10631360,北京凯德网络科技股份有限公司,2024-04-02,565.00\n",
        encoding="gbk",
    )
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\n"开票时间" = "issue_date"\n', encoding="utf-8")
    code = main(
        [
            "reconcile",
            "--ledger",
            str(path),
            "--map",
            "单据号=invoice_number",
            "--mapping",
            str(mapping),
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-31",
            "--store",
            str(small_store),
            "--out",
            str(tmp_path / "out"),
            "-q",
        ]
    )
    assert code == 0
    stored = load_outcomes(small_store / "index.sqlite")
    # April is outside the period: e.jpg and its row are left out
    assert Counter(r["outcome"] for r in stored) == {"matched": 1, "not_in_ledger": 3}
    assert (
        main(["reconcile", "--ledger", str(path), "--store", str(small_store), "--amount-tolerance", "x"])
        == 2
    )


def test_page_links_for_an_s3_store() -> None:
    from types import SimpleNamespace

    from pipeline.reconcile.report import page_links

    store = SimpleNamespace(objects=SimpleNamespace(location="s3://invoices/acme/"))
    links = page_links(store, ["ab" * 32])  # type: ignore[arg-type]
    assert links == {"ab" * 32: f"s3://invoices/acme/documents/ab/{'ab' * 32}/pages/1.png"}


@pytest.mark.slow
def test_samples_ingested_and_reconciled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real OCR on samples/, then a ledger written from their ground truth with known faults."""
    from pipeline.cli import main
    from tests.conftest import SAMPLES

    store = tmp_path / "store"
    assert (
        main(["ingest", str(SAMPLES), "--store", str(store), "--workers", "2", "-q"]) == 1
    )  # the corrupt one
    truths = {
        p.name.removesuffix(".expected.json"): json.loads(p.read_text())
        for p in SAMPLES.glob("*.expected.json")
    }
    rows: list[dict[str, str]] = []
    for case, truth in sorted(truths.items()):
        if case == "vat_general_degraded":
            continue  # never booked
        f = truth["fields"]
        number = f["invoice_number"]
        if case == "vat_e_general":
            number = number[:3] + number[4] + number[3] + number[5:]  # transposed digits
        rows.append(
            {
                "发票代码": f.get("invoice_code") or "",
                "发票号码": number,
                "开票日期": f["issue_date"],
                "销售方名称": f.get("seller_name") or f.get("vendor_name") or "",
                "金额": f.get("amount_excl_tax") or "",
                "税额": f.get("tax_amount") or "",
                "价税合计": f["total_amount"],
            }
        )
    rows.append(
        {"发票代码": "", "发票号码": "24110000000000000001", "开票日期": "2024-05-05", "价税合计": "99.00"}
    )
    ledger = tmp_path / "ledger.csv"
    with ledger.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["发票代码", "发票号码", "开票日期", "销售方名称", "金额", "税额", "价税合计"]
        )
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "report"
    assert main(["reconcile", "--ledger", str(ledger), "--store", str(store), "--out", str(out), "-q"]) == 0
    with (out / "reconciliation.csv").open(encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    by_file = {r["source_name"]: r for r in records if r["source_name"]}
    # same invoice, several files: one line, on the first file, naming them all
    by_file.update({name: r for r in records for name in r["documents"].split(" | ") if r["documents"]})
    # expectations follow what ingest stored: a sample it could not read is a booked row without a scan
    stored = {name for case, truth in truths.items() for name in truth["files"] if name in by_file}
    assert len(stored) >= 8, f"too few samples ingested to test anything: {sorted(stored)}"
    unscanned_numbers = {"24110000000000000001"}
    for case, truth in truths.items():
        names = [name for name in truth["files"] if name in stored]
        if case == "corrupt_truncated":
            assert not names
            continue
        number = truth["fields"]["invoice_number"]
        if not names:
            if case != "vat_general_degraded":
                unscanned_numbers.add(
                    number[:3] + number[4] + number[3] + number[5:] if case == "vat_e_general" else number
                )
            continue
        outcomes = sorted(by_file[name]["outcome"] for name in names)
        if case == "vat_general_degraded":
            assert outcomes == ["not_in_ledger"]
        elif case == "en_invoice":  # one invoice, scanned as a PDF and as a PNG: counted once
            assert len(names) == 2 and by_file[names[0]] is by_file[names[1]], names
            line = by_file[names[0]]
            assert line["outcome"] in ("matched", "matched_with_differences"), line
            assert sorted(line["documents"].split(" | ")) == sorted(names)
            assert not line["arrived_separately"]  # one ingest run
        elif case == "vat_e_general":
            (name,) = names
            assert (
                outcomes == ["matched_with_differences"] and "invoice number" in by_file[name]["differences"]
            )
        else:
            (name,) = names
            assert outcomes[0] in ("matched", "matched_with_differences"), by_file[name]
            assert by_file[name]["ledger_invoice_number"] == number
    unscanned = {r["ledger_invoice_number"] for r in records if r["outcome"] == "no_invoice_scanned"}
    assert unscanned == unscanned_numbers
    assert main(["query", "--status", "not_in_ledger", "--format", "json", "--store", str(store)]) == 0
    listed = [r["source_name"] for r in json.loads(capsys.readouterr().out)]
    assert listed == (["vat_general_degraded.jpg"] if "vat_general_degraded.jpg" in stored else [])


def test_scanned_twice_with_a_misread_date() -> None:
    """Code + number name one invoice: a second scan whose date OCR misread is still a duplicate."""
    first = InvoiceRecord(
        document_id="1" * 64,
        source_name="photo.jpg",
        status="ok",
        invoice_code="011002400111",
        invoice_number="12345678",
        issue_date=date(2024, 3, 1),
        total_amount=Decimal("113.00"),
        ingested_at=1.0,
    )
    second = replace(
        first, document_id="2" * 64, source_name="scan.pdf", issue_date=date(2024, 8, 1), ingested_at=2.0
    )
    row = LedgerRow(
        row_number=2,
        invoice_code="011002400111",
        invoice_number="12345678",
        issue_date=date(2024, 3, 1),
        total_amount=Decimal("113.00"),
    )
    result = reconcile([second, first], [row])
    outcomes = {e.invoice.document_id: e for e in result.entries if e.invoice}
    assert outcomes[first.document_id].outcome == Outcome.MATCHED
    assert outcomes[second.document_id].outcome == Outcome.DUPLICATE
    assert outcomes[second.document_id].related_document == first.document_id
    assert "photo.jpg" in outcomes[second.document_id].reason_en
    # a short number without a code is not enough on its own: different amounts, different invoices
    bare = [
        replace(first, invoice_code=None),
        replace(second, invoice_code=None, total_amount=Decimal("9.00")),
    ]
    assert reconcile(bare, []).counts()["duplicate"] == 0


def test_csv_report_defuses_formulas(tmp_path: Path) -> None:
    from pipeline.reconcile.report import write_csv

    row = LedgerRow(
        row_number=2, invoice_number="12345678", total_amount=Decimal("-5.00"), seller_name='=HYPERLINK("x")'
    )
    path = write_csv(tmp_path / "r.csv", reconcile([], [row]))
    with path.open(encoding="utf-8-sig") as handle:
        (record,) = list(csv.DictReader(handle))
    assert record["ledger_seller_name"] == '\'=HYPERLINK("x")'
    assert record["ledger_total_amount"] == "-5.00"  # a negative amount stays a number


# ---- re-matching one invoice after a review correction ------------------------------------------------

REVIEW_DAY = date(2026, 1, 1)
CORRECTED_INVOICES = [
    # (source name, number as read, date, total as read, seller)
    ("a.jpg", "10631331", "2024-03-01", "113.00", "金桥（北京）建筑工程有限责任公司"),
    ("b.jpg", "10631332", "2024-03-02", "262.00", "北京智源信息技术股份有限公司"),  # total misread (226.00)
    ("c.pdf", "18531846", "2024-03-05", "339.00", "北京新纪元商贸有限责任公司"),  # number misread (10631340)
    ("d.png", "10631350", "2024-03-09", "452.00", "北京启明医疗器械有限公司"),
]
CORRECTION_LEDGER = [
    ["1100214130", "10631331", date(2024, 3, 1), "金桥(北京)建筑工程有限公司", 113.0, "A"],  # row 2
    ["1100214130", "10631332", date(2024, 3, 2), "北京智源信息技术股份有限公司", 226.0, "A"],  # row 3
    ["1100214130", "10631340", date(2024, 3, 5), "北京新纪元商贸有限责任公司", 339.0, "B"],  # row 4
    ["1100214130", "10631350", date(2024, 3, 9), "北京启明医疗器械有限公司", 452.0, "B"],  # row 5
    ["1100214130", "10631360", date(2024, 4, 2), "北京凯德网络科技股份有限公司", 565.0, "C"],  # row 6
]


@dataclass
class LedgerStore:
    root: Path
    ledger: Path
    ids: dict[str, str]  # source name -> document id
    index: str | None = None  # a PostgreSQL URL, or None: the SQLite file in the store

    def open(self) -> Store:
        from pipeline.store import open_store

        return open_store(str(self.root), index=self.index)


def _store_invoices(
    root: Path, invoices: list[tuple[str, str, str, str, str]], index: str | None = None
) -> dict[str, str]:
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
            document_id = f"{k + 0xA1:02x}" * 32
            png = b"\x89PNG\r\n\x1a\n" + bytes([k])
            assert store.save(
                f"original {k}".encode(), name, _stored_result(document_id, name, values), [(0, png)]
            )
            ids[name] = document_id
    finally:
        store.close()
    return ids


def _reconcile_store(
    store: Store, ledger_path: Path, options: ReconcileOptions | None = None
) -> Reconciliation:
    imported = read_ledger(ledger_path)
    result = reconcile(invoices_from_index(store.index.documents()), imported.rows, options)
    save_outcomes(store.index, result, imported)
    return result


def _by_document(db_path: Path) -> dict[str, tuple[int | None, str]]:
    return {
        r["document_id"]: (r["ledger_row"], r["outcome"]) for r in load_outcomes(db_path) if r["document_id"]
    }


def _lone_rows(db_path: Path) -> dict[int, str]:
    return {r["ledger_row"]: r["outcome"] for r in load_outcomes(db_path) if r["document_id"] is None}


@pytest.fixture
def ledger_store(tmp_path: Path, index_location: str | None) -> LedgerStore:
    """Four stored invoices (one total and one number misread) reconciled against a five-row ledger,
    on each index backend."""
    root = tmp_path / "store"
    ids = _store_invoices(root, CORRECTED_INVOICES, index_location)
    built = LedgerStore(root, _xlsx_ledger(tmp_path / "ledger.xlsx", CORRECTION_LEDGER), ids, index_location)
    store = built.open()
    try:
        _reconcile_store(store, built.ledger)
    finally:
        store.close()
    return built


def test_rematch_after_review_corrections(ledger_store: LedgerStore) -> None:
    from pipeline.errors import NotFound
    from pipeline.reconcile import ledger_values, rematch_document
    from pipeline.review import apply_correction
    from pipeline.review.corrections import ledger_values as shown_ledger_values

    ids = ledger_store.ids
    store = ledger_store.open()
    db_path = store.index
    try:
        before = load_outcomes(db_path)
        assert _by_document(db_path) == {
            ids["a.jpg"]: (2, "matched"),
            ids["b.jpg"]: (3, "matched_with_differences"),
            ids["c.pdf"]: (None, "not_in_ledger"),
            ids["d.png"]: (5, "matched"),
        }
        assert _lone_rows(db_path) == {4: "no_invoice_scanned", 6: "no_invoice_scanned"}
        assert ledger_values(store, ids["c.pdf"]) == {}

        # the wrong total: matched with differences -> matched (apply_correction re-matches it)
        apply_correction(store, ids["b.jpg"], "total_amount", "226.00", "alice", today=REVIEW_DAY)
        after_b = _by_document(db_path)
        assert after_b[ids["b.jpg"]] == (3, "matched")
        stored_b = next(r for r in load_outcomes(db_path) if r["document_id"] == ids["b.jpg"])
        assert stored_b["differences"] == [] and "every compared field agrees" in stored_b["reason_en"]
        assert stored_b["reconciled_at"] > before[0]["reconciled_at"]
        expected_b = {
            "invoice_code": "1100214130",
            "invoice_number": "10631332",
            "issue_date": "2024-03-02",
            "total_amount": "226.00",
            "seller_name": "北京智源信息技术股份有限公司",
        }
        assert ledger_values(store, ids["b.jpg"]) == expected_b
        assert ledger_values(store, ids["b.jpg"][:12]) == expected_b  # an id prefix, as the CLI takes
        assert shown_ledger_values(store, ids["b.jpg"]) == expected_b  # what the review tool shows

        # the misread number: not in the ledger -> matched, and row 4 is no longer unscanned
        apply_correction(store, ids["c.pdf"][:12], "invoice_number", "10631340", "alice", today=REVIEW_DAY)
        assert _by_document(db_path) == {
            ids["a.jpg"]: (2, "matched"),
            ids["b.jpg"]: (3, "matched"),
            ids["c.pdf"]: (4, "matched"),
            ids["d.png"]: (5, "matched"),
        }
        assert _lone_rows(db_path) == {6: "no_invoice_scanned"}
        assert ledger_values(store, ids["c.pdf"])["invoice_number"] == "10631340"
        # the invoices nobody corrected keep their outcome rows as the run wrote them
        untouched = {r["document_id"]: r for r in before if r["document_id"] in (ids["a.jpg"], ids["d.png"])}
        for row in load_outcomes(db_path):
            if row["document_id"] in untouched:
                assert row == untouched[row["document_id"]]

        # called again, nothing changes: the same outcome, one row per invoice
        entry = rematch_document(store, ids["c.pdf"])
        assert entry is not None and entry.outcome == Outcome.MATCHED
        assert entry.invoice is not None and entry.invoice.invoice_number == "10631340"
        assert entry.ledger_row is not None and entry.ledger_row.row_number == 4
        stored = load_outcomes(db_path)
        assert (
            len(stored) == 5
            and Counter(r["document_id"] for r in stored if r["document_id"])[ids["c.pdf"]] == 1
        )
        # the index answers from the new outcomes
        from pipeline.store.index import Query

        assert store.index.query(Query(status="not_in_ledger")) == []
        assert {r["document_id"] for r in store.index.query(Query(status="matched"))} == set(ids.values())
        with pytest.raises(NotFound, match="no document"):
            rematch_document(store, "ff" * 32)
        assert load_outcomes(db_path) == stored
    finally:
        store.close()


def test_rematch_keeps_other_claims_and_releases_rows(ledger_store: LedgerStore) -> None:
    from pipeline.reconcile import ledger_values, rematch_document
    from pipeline.review import apply_correction

    ids = ledger_store.ids
    store = ledger_store.open()
    db_path = store.index
    try:
        a_before = next(r for r in load_outcomes(db_path) if r["document_id"] == ids["a.jpg"])
        # d.png's number typed as a.jpg's: the same invoice scanned twice; a.jpg keeps row 2 and
        # the row d.png released (5) has no invoice again
        apply_correction(store, ids["d.png"], "invoice_number", "10631331", "bob", today=REVIEW_DAY)
        outcomes = _by_document(db_path)
        assert outcomes[ids["d.png"]] == (2, "duplicate")
        assert outcomes[ids["a.jpg"]] == (2, "matched")
        assert _lone_rows(db_path) == {
            4: "no_invoice_scanned",
            5: "no_invoice_scanned",
            6: "no_invoice_scanned",
        }
        duplicate = next(r for r in load_outcomes(db_path) if r["document_id"] == ids["d.png"])
        assert duplicate["reason_en"].startswith("Scanned twice: the same invoice as a.jpg")
        assert ledger_values(store, ids["d.png"]) == {}  # a duplicate shows no ledger row
        # and back: d.png takes row 5 again
        apply_correction(store, ids["d.png"], "invoice_number", "10631350", "bob", today=REVIEW_DAY)
        assert _by_document(db_path)[ids["d.png"]] == (5, "matched")
        assert _lone_rows(db_path) == {4: "no_invoice_scanned", 6: "no_invoice_scanned"}
        a_after = next(r for r in load_outcomes(db_path) if r["document_id"] == ids["a.jpg"])
        assert a_after["outcome"] == "matched" and a_after["ledger_row"] == 2

        # c.pdf corrected to one digit off a.jpg's number with a.jpg's total: alone with row 2 it would
        # match it, but row 2 is a.jpg's (one-to-one), so c.pdf stays not in the ledger
        apply_correction(store, ids["c.pdf"], "total_amount", "113.00", "bob", today=REVIEW_DAY)
        apply_correction(store, ids["c.pdf"], "invoice_number", "10631381", "bob", today=REVIEW_DAY)
        (c_row,) = store.index.get(ids["c.pdf"])
        row_2 = next(row for row in load_ledger_rows(db_path) if row.row_number == 2)
        alone = reconcile([InvoiceRecord.from_index_row(c_row)], [row_2])
        assert alone.entries[0].outcome == Outcome.MATCHED_WITH_DIFFERENCES
        entry = rematch_document(store, ids["c.pdf"])
        assert entry is not None and entry.outcome == Outcome.NOT_IN_LEDGER and entry.ledger_row is None
        outcomes = _by_document(db_path)
        assert outcomes[ids["c.pdf"]] == (None, "not_in_ledger")
        assert outcomes[ids["a.jpg"]] == (2, "matched")
        assert next(r for r in load_outcomes(db_path) if r["document_id"] == ids["a.jpg"]) == a_after
        assert a_before["ledger_row"] == a_after["ledger_row"]
    finally:
        store.close()


def test_rematch_a_scan_whose_duplicate_was_read_the_same(tmp_path: Path) -> None:
    """The same paper scanned twice, the number misread the same way both times: one scan is reconciled,
    the other is its duplicate. Correcting the reconciled scan re-matches the duplicate too."""
    from pipeline.reconcile import rematch_document
    from pipeline.review import apply_correction

    misread = ("c.pdf", "18531846", "2024-03-05", "339.00", "北京新纪元商贸有限责任公司")
    ids = _store_invoices(tmp_path / "store", [misread, ("c-again.pdf", *misread[1:])])
    ledger = _xlsx_ledger(tmp_path / "ledger.xlsx", CORRECTION_LEDGER[2:3])
    from pipeline.store import open_store

    store = open_store(str(tmp_path / "store"))
    db_path = store.index.path
    try:
        _reconcile_store(store, ledger)
        assert _by_document(db_path) == {
            ids["c.pdf"]: (None, "not_in_ledger"),
            ids["c-again.pdf"]: (None, "duplicate"),
        }
        apply_correction(store, ids["c.pdf"], "invoice_number", "10631340", "carol", today=REVIEW_DAY)
        # the second scan still has the misread number: no longer the same invoice as c.pdf
        assert _by_document(db_path) == {
            ids["c.pdf"]: (2, "matched"),
            ids["c-again.pdf"]: (None, "not_in_ledger"),
        }
        assert _lone_rows(db_path) == {}
        apply_correction(store, ids["c-again.pdf"], "invoice_number", "10631340", "carol", today=REVIEW_DAY)
        assert _by_document(db_path) == {
            ids["c.pdf"]: (2, "matched"),
            ids["c-again.pdf"]: (2, "duplicate"),
        }
        entry = rematch_document(store, ids["c-again.pdf"])
        assert entry is not None and entry.related_document == ids["c.pdf"]
    finally:
        store.close()


def test_rematch_uses_the_options_of_the_last_run(tmp_path: Path) -> None:
    from pipeline.reconcile import load_options, rematch_document

    invoices = [("b.jpg", "10631332", "2024-03-02", "226.50", "北京智源信息技术股份有限公司")]
    ids = _store_invoices(tmp_path / "store", invoices)
    ledger = _xlsx_ledger(tmp_path / "ledger.xlsx", CORRECTION_LEDGER[1:2])
    from pipeline.store import open_store

    store = open_store(str(tmp_path / "store"))
    db_path = store.index.path
    options = ReconcileOptions(amount_tolerance=Decimal("1.00"), date_from=date(2024, 1, 1), workers=1)
    try:
        assert load_options(db_path) is None  # never reconciled
        _reconcile_store(store, ledger, options)
        assert load_options(db_path) == options
        entry = rematch_document(store, ids["b.jpg"])
        assert entry is not None and entry.outcome == Outcome.MATCHED  # 0.50 apart: within 1.00
        assert "within the 1.00 tolerance" in entry.reason_en
        # without stored options (an index reconciled before they were kept): the defaults
        with sqlite3.connect(db_path) as db:
            db.execute("DELETE FROM reconciliation_options")
        db.close()
        entry = rematch_document(store, ids["b.jpg"])
        assert entry is not None and entry.outcome == Outcome.MATCHED_WITH_DIFFERENCES
        assert [d.field for d in entry.differences] == ["total_amount"]
    finally:
        store.close()


def test_rematch_without_a_ledger_changes_nothing(tmp_path: Path) -> None:
    from pipeline.reconcile import ledger_values, rematch_document
    from pipeline.review import apply_correction
    from pipeline.store import open_store

    ids = _store_invoices(tmp_path / "store", CORRECTED_INVOICES[1:2])
    store = open_store(str(tmp_path / "store"))
    db_path = store.index.path

    def tables() -> set[str]:
        with sqlite3.connect(db_path) as db:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db.close()
        return names

    try:
        before = tables()
        assert rematch_document(store, ids["b.jpg"]) is None
        assert ledger_values(store, ids["b.jpg"]) == {}
        result = apply_correction(store, ids["b.jpg"], "total_amount", "226.00", "alice", today=REVIEW_DAY)
        assert result.value("total_amount") == "226.00"
        assert tables() == before and "reconciliation" not in before and load_outcomes(db_path) == []
        # reconciled without a ledger import (outcomes only): still nothing to match against
        invoices = invoices_from_index(store.index.documents())
        save_outcomes(db_path, reconcile(invoices, []), None)
        stored = load_outcomes(db_path)
        assert [r["outcome"] for r in stored] == ["not_in_ledger"]
        assert rematch_document(store, ids["b.jpg"]) is None
        assert load_outcomes(db_path) == stored
    finally:
        store.close()


def test_rematch_leaves_a_second_booking_of_another_invoice_alone(tmp_path: Path) -> None:
    """A row that repeats a row another invoice claims (booked twice) is not free for a re-match."""
    from pipeline.reconcile import rematch_document
    from pipeline.review import apply_correction
    from pipeline.store import open_store

    seller = "北京凯德网络科技股份有限公司"
    ids = _store_invoices(
        tmp_path / "store",
        [
            ("e.jpg", "10631360", "2024-04-02", "565.00", seller),
            ("f.jpg", "77777777", "2024-04-02", "565.00", seller),
        ],
    )
    row = ["1100214130", "10631360", date(2024, 4, 2), seller, 565.0, "C"]
    ledger = _xlsx_ledger(tmp_path / "ledger.xlsx", [row, row])  # rows 2 and 3: booked twice
    store = open_store(str(tmp_path / "store"))
    db_path = store.index.path
    try:
        _reconcile_store(store, ledger)
        assert _by_document(db_path) == {
            ids["e.jpg"]: (2, "duplicate"),
            ids["f.jpg"]: (None, "not_in_ledger"),
        }
        assert _lone_rows(db_path) == {3: "duplicate"}
        # one digit off row 3's number with its amount: alone with row 3, f.jpg would take it
        apply_correction(store, ids["f.jpg"], "invoice_number", "10631361", "dave", today=REVIEW_DAY)
        (f_row,) = store.index.get(ids["f.jpg"])
        row_3 = load_ledger_rows(db_path)[1]
        assert reconcile([InvoiceRecord.from_index_row(f_row)], [row_3]).entries[0].ledger_row == row_3
        entry = rematch_document(store, ids["f.jpg"])
        assert entry is not None and entry.outcome == Outcome.NOT_IN_LEDGER
        assert _by_document(db_path) == {
            ids["e.jpg"]: (2, "duplicate"),
            ids["f.jpg"]: (None, "not_in_ledger"),
        }
        assert _lone_rows(db_path) == {3: "duplicate"}
    finally:
        store.close()
