"""Reconciliation benchmark (``make bench``): 100,000 tax-platform rows x 100,000 ledger rows x
10,000 held invoices on 2 cores.

    python scripts/bench_reconcile.py                       # the issue's target: under 30 s
    python scripts/bench_reconcile.py --ledger-rows 20000 --invoices 2000 --xlsx
    python scripts/bench_reconcile.py --platform-rows 0     # the ledger alone (two-way)

The invoices go into a real index (as ``invoices ingest`` would leave it, without the images);
the ledger is a CSV (or XLSX with ``--xlsx``) where most rows are invoices nobody scanned and the
booked ones carry the usual faults (typos, transposed digits, OCR look-alikes, a fen off, booked
twice, missing). The tax platform's 全量发票查询 export (CSV, or XLSX with ``--xlsx``) lists the
held and booked invoices, a few missing, voided, red-reversed, 失控, high-risk or with another
amount, and invoices nobody booked or holds up to its row count. The timed part runs in a fresh
process pinned to two cores, doing what ``invoices reconcile`` does: read the ledger and the
export, load the invoices from the index, match the three ways, write the outcomes to the index,
write the CSV/XLSX/HTML reports. It prints each phase's time, the total,
the peak RSS of that process, and the outcome counts against the counts the faults imply.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pipeline.model import DocType, Field, FieldSource, FieldStatus, InvoiceResult, PageInfo
from pipeline.store import open_store, original_key, page_key, result_key
from pipeline.store.index import IndexEntry

HEADERS = ["发票代码", "发票号码", "开票日期", "销售方名称", "销售方纳税人识别号", "金额", "税额", "价税合计"]
CENT = Decimal("0.01")
TARGET_SECONDS = 30.0


def _invoice(
    rng: random.Random, sellers: list[tuple[str, str]], counters: dict[str, int], used: set[str]
) -> dict[str, str]:
    seller, tax_id = rng.choice(sellers)
    paper = rng.random() < 0.6
    while True:  # invoice numbers are unique (per code): never let two sellers' sequences meet
        counters[seller] += rng.randrange(1, 4)
        code = f"0{rng.choice(['1100', '3100', '4403'])}24{rng.randrange(1000):03d}11" if paper else ""
        number = f"{counters[seller] % 10**8:08d}" if paper else f"24112000000{counters[seller]:09d}"
        if code + number not in used:
            used.add(code + number)
            break
    excl = Decimal(rng.randrange(1000, 5_000_000)) / 100
    tax = (excl * Decimal(rng.choice(["0.13", "0.09", "0.06", "0.03"]))).quantize(
        CENT, rounding=ROUND_HALF_UP
    )
    return {
        "invoice_code": code,
        "invoice_number": number,
        "issue_date": (date(2024, 1, 1) + timedelta(days=rng.randrange(366))).isoformat(),
        "seller_name": seller,
        "seller_tax_id": tax_id,
        "amount_excl_tax": f"{excl:.2f}",
        "tax_amount": f"{tax:.2f}",
        "total_amount": f"{excl + tax:.2f}",
    }


def _fault(rng: random.Random, values: dict[str, str], used: set[str]) -> tuple[str, dict[str, str]]:
    """A ledger row for a booked invoice, and the outcome expected for the invoice."""
    row = dict(values)
    roll = rng.random()
    number = row["invoice_number"]
    if roll < 0.03:
        if roll < 0.02:  # a typo
            i = rng.randrange(len(number))
            changed = number[:i] + str((int(number[i]) + 1) % 10) + number[i + 1 :]
        else:  # the last two digits transposed
            changed = number[:-2] + number[-1] + number[-2]
        if changed != number and row["invoice_code"] + changed not in used:
            used.add(row["invoice_code"] + changed)
            row["invoice_number"] = changed
            return "matched_with_differences", row
        return "matched", row
    if roll < 0.04:
        row["invoice_number"] = number.replace("0", "O", 1).replace("1", "I", 1)
        return "matched", row
    if roll < 0.05:
        row["total_amount"] = f"{Decimal(row['total_amount']) + CENT:.2f}"
        return "matched", row
    return "matched", row


def build(
    tmp: Path, n_invoices: int, n_rows: int, seed: int, xlsx: bool, n_platform: int = 0
) -> tuple[Path, Path, Counter[str], Path | None, Counter[str]]:
    rng = random.Random(seed)
    sellers = [(f"供应商{k:04d}商贸有限公司", f"91110000{k:010d}") for k in range(2000)]
    counters = {name: rng.randrange(10_000_000, 80_000_000) for name, _ in sellers}
    used: set[str] = set()
    invoices = [_invoice(rng, sellers, counters, used) for _ in range(n_invoices)]
    # the ledger's own invoices (nobody scanned them) are drawn up front, so typos cannot hit them
    others = [_invoice(rng, sellers, counters, used) for _ in range(n_rows)]
    expected: Counter[str] = Counter()
    rows: list[dict[str, str]] = []
    for values in invoices:
        roll = rng.random()
        if roll < 0.05:
            expected["not_in_ledger"] += 1
            continue
        if roll < 0.055:  # booked twice (the invoice and the second row are both duplicates)
            rows += [dict(values), dict(values)]
            expected["duplicate"] += 2
            continue
        outcome, row = _fault(rng, values, used)
        rows.append(row)
        expected[outcome] += 1
    booked_others = others[: max(0, n_rows - len(rows))]
    for other in booked_others:
        rows.append(other)
        expected["no_invoice_scanned"] += 1
    rng.shuffle(rows)
    platform, injected = (
        _platform_export(tmp, rng, invoices + booked_others, n_platform, xlsx, sellers, counters, used)
        if n_platform
        else (None, Counter())
    )

    store_dir = tmp / "store"
    store = open_store(str(store_dir))
    entries = []
    for k, values in enumerate(invoices):
        document_id = f"{rng.getrandbits(256):064x}"
        fields = {
            name: Field(value or None, 0.99, FieldStatus.OK, FieldSource.OCR)
            for name, value in values.items()
        }
        doc_type = DocType.VAT_SPECIAL_PAPER if values["invoice_code"] else DocType.FULLY_DIGITAL_GENERAL
        result = InvoiceResult(
            document_id, f"scan_{k:05d}.jpg", doc_type, fields, pages=[PageInfo(0, 10, 10, "ocr")]
        )
        entries.append(
            IndexEntry(
                result,
                result_key(document_id),
                original_key(document_id),
                1_700_000_000.0 + k,
                (page_key(document_id, 0),),
                0,
                None,
            )
        )
    store.index.upsert_many(entries)
    store.close()

    header_map = dict(zip(HEADERS, ["invoice_code", "invoice_number", "issue_date", "seller_name", "seller_tax_id",
                                    "amount_excl_tax", "tax_amount", "total_amount"], strict=True))  # fmt: skip
    if xlsx:
        import openpyxl

        ledger = tmp / "ledger.xlsx"
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("台账")
        sheet.append(HEADERS)
        for row in rows:
            sheet.append([row[header_map[h]] for h in HEADERS])
        workbook.save(ledger)
    else:
        ledger = tmp / "ledger.csv"
        with ledger.open("w", encoding="gb18030", newline="") as handle:  # an ERP export as it often comes
            writer = csv.writer(handle)
            writer.writerow(HEADERS)
            writer.writerows([row[header_map[h]] for h in HEADERS] for row in rows)
    return store_dir, ledger, expected, platform, injected


PLATFORM_HEADERS = [
    "序号", "发票代码", "发票号码", "数电发票号码", "销方识别号", "销方名称", "购方识别号", "购买方名称",
    "开票日期", "金额", "税额", "价税合计", "发票来源", "发票票种", "发票状态", "是否正数发票",
    "发票风险等级", "开票人", "备注",
]  # fmt: skip


def _platform_export(
    tmp: Path,
    rng: random.Random,
    known: list[dict[str, str]],
    n_rows: int,
    xlsx: bool,
    sellers: list[tuple[str, str]],
    counters: dict[str, int],
    used: set[str],
) -> tuple[Path, Counter[str]]:
    """The 全量发票查询 export: the held and booked invoices with faults, then invoices only it lists."""
    injected: Counter[str] = Counter()
    rows: list[list[str]] = []

    def row(
        values: dict[str, str], status: str = "正常", risk: str = "低风险", total: str | None = None
    ) -> list[str]:
        code, number = values["invoice_code"], values["invoice_number"]
        digital = not code
        return [
            str(len(rows) + 1), code, "" if digital else number, number if digital else "", values["seller_tax_id"],
            values["seller_name"], "91110108MA01ABCD0X", "北京长城软件有限公司", values["issue_date"],
            values["amount_excl_tax"], values["tax_amount"], total or values["total_amount"],
            "电子发票服务平台" if digital else "增值税发票管理系统", "数电票（增值税专用发票）" if digital else "增值税专用发票",
            status, "是", risk, "张三", "",
        ]  # fmt: skip

    for values in known:
        roll = rng.random()
        if roll < 0.01:
            injected["missing (not_on_platform)"] += 1
            continue
        if roll < 0.015:
            injected["voided"] += 1
            rows.append(row(values, status="作废"))
        elif roll < 0.02:
            injected["red-reversed"] += 1
            rows.append(row(values, status="已红冲"))
        elif roll < 0.023:
            injected["失控"] += 1
            rows.append(row(values, status="失控"))
        elif roll < 0.028:
            injected["high risk"] += 1
            rows.append(row(values, risk="高风险"))
        elif roll < 0.033:
            injected["amount differs"] += 1
            rows.append(row(values, total=f"{Decimal(values['total_amount']) + 100:.2f}"))
        else:
            rows.append(row(values))
    while len(rows) < n_rows:
        injected["only on the platform"] += 1
        rows.append(row(_invoice(rng, sellers, counters, used)))
    rng.shuffle(rows)
    if xlsx:
        import openpyxl

        path = tmp / "全量发票查询.xlsx"
        workbook = openpyxl.Workbook(write_only=True)
        sheet = workbook.create_sheet("发票基础信息")
        sheet.append(["全量发票查询导出结果"])
        sheet.append(PLATFORM_HEADERS)
        for cells in rows:
            sheet.append(cells)
        workbook.save(path)
    else:
        path = tmp / "全量发票查询.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(PLATFORM_HEADERS)
            writer.writerows(rows)
    return path, injected


def measure(store_dir: str, ledger: str, platform: str | None, out: str, workers: int) -> dict[str, Any]:
    """The timed part, in its own process: what ``invoices reconcile`` does, phase by phase."""
    from pipeline.reconcile import ReconcileOptions, invoices_from_index, save_outcomes, threeway_report
    from pipeline.reconcile import report as ledger_report
    from pipeline.reconcile.platform import merge_platform, read_platform
    from pipeline.reconcile.report import page_links
    from pipeline.reconcile.sources import read_ledger
    from pipeline.reconcile.tables import save_lines
    from pipeline.reconcile.threeway import reconcile_three_way

    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}
    clock, cpu_clock = time.perf_counter(), time.process_time()

    def lap(name: str) -> None:
        nonlocal clock, cpu_clock
        now, cpu_now = time.perf_counter(), time.process_time()
        phases[name], cpu[name] = now - clock, cpu_now - cpu_clock
        clock, cpu_clock = now, cpu_now

    imported = read_ledger(Path(ledger))
    lap("read ledger")
    exports = [read_platform(Path(platform))] if platform else []
    records = merge_platform(exports) if exports else None
    if exports:
        lap("read tax-platform export")
    store = open_store(store_dir)
    invoices = invoices_from_index(store.index.documents())
    lap("load invoices from the index")
    result = reconcile_three_way(invoices, imported.rows, records, ReconcileOptions(workers=workers))
    lap("match (three ways)" if exports else "match")
    save_outcomes(store.index, result.ledger_result, imported)
    save_lines(store.index, result)
    lap("write outcomes to the index")
    links = page_links(store, [line.invoice.document_id for line in result.lines if line.invoice])
    store.close()
    if exports:
        threeway_report.write_reports(Path(out), result, imported, exports, links)
    else:
        ledger_report.write_reports(Path(out), result.ledger_result, imported, links)
    lap("write CSV, XLSX, HTML reports")
    return {
        "phases": phases,
        "cpu": cpu,
        "counts": result.ledger_result.counts(),
        "lines": result.counts(),
        "rows": len(imported.rows),
        "platform_rows": sum(len(e.invoices) for e in exports),
        "invoices": len(invoices),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _pin(cores: int) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    available = sorted(os.sched_getaffinity(0))
    chosen = set(available[:cores])
    os.sched_setaffinity(0, chosen)  # inherited by the measuring process
    return f"pinned to CPUs {sorted(chosen)} of {len(available)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ledger-rows", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--platform-rows", type=int, default=100_000, help="0: no tax-platform export")
    parser.add_argument(
        "--cores", type=int, default=2, help="CPUs to pin to and matching threads (default 2)"
    )
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--xlsx", action="store_true", help="an XLSX ledger instead of a GB18030 CSV")
    parser.add_argument("--keep", type=Path, default=None, help="build in this folder and keep it")
    args = parser.parse_args(argv)

    pinned = _pin(args.cores)
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        print(
            f"== reconcile: {args.platform_rows:,} tax-platform rows x {args.ledger_rows:,} ledger rows x "
            f"{args.invoices:,} held invoices, {pinned} =="
        )
        started = time.perf_counter()
        store_dir, ledger, expected, platform, injected = build(
            tmp, args.invoices, args.ledger_rows, args.seed, args.xlsx, args.platform_rows
        )
        print(f"set-up (not timed): {time.perf_counter() - started:.1f} s, ledger {ledger.name} "
              f"{ledger.stat().st_size / 1e6:.1f} MB"
              + (f", platform {platform.name} {platform.stat().st_size / 1e6:.1f} MB" if platform else ""))  # fmt: skip
        with get_context("spawn").Pool(1) as pool:
            started = time.perf_counter()
            where = str(platform) if platform else None
            report = pool.apply(
                measure, (str(store_dir), str(ledger), where, str(tmp / "report"), args.cores)
            )
            total = time.perf_counter() - started
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    print(f"  {'phase':<32} {'wall':>8} {'CPU':>8}   (load average {load:.1f})")
    for name, seconds in report["phases"].items():
        print(f"  {name:<32} {seconds:6.2f} s {report['cpu'][name]:6.2f} s")
    cpu_total = sum(report["cpu"].values())
    verdict = "within" if total < TARGET_SECONDS else "OVER"
    print(
        f"  {'total (incl. process start)':<32} {total:6.2f} s {cpu_total:6.2f} s  "
        f"(wall {verdict} the {TARGET_SECONDS:.0f} s target; on a loaded machine read the CPU seconds)"
    )
    print(f"  {'peak RSS':<32} {report['peak_rss_mb']:6.0f} MB")
    print(
        f"  ledger rows read {report['rows']:,}, platform rows read {report['platform_rows']:,}, "
        f"invoices {report['invoices']:,}"
    )
    print("  held vs ledger outcome     expected     got")
    for outcome, got in report["counts"].items():
        print(f"  {outcome:<25} {expected.get(outcome, 0):9,} {got:7,}")
    if platform is not None:
        print("  platform faults injected: " + ", ".join(f"{k} {v:,}" for k, v in injected.items()))
        print("  three-way outcome              lines")
        for outcome, got in report["lines"].items():
            if got:
                print(f"  {outcome:<28} {got:8,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
