"""Reconciliation benchmark (``make bench``): 100,000 ledger rows against 10,000 invoices on 2 cores.

    python scripts/bench_reconcile.py                       # the issue's target: under 30 s
    python scripts/bench_reconcile.py --ledger-rows 20000 --invoices 2000 --xlsx

The invoices go into a real index (as ``invoices ingest`` would leave it, without the images);
the ledger is a CSV (or XLSX with ``--xlsx``) where most rows are invoices nobody scanned and the
booked ones carry the usual faults (typos, transposed digits, OCR look-alikes, a fen off, booked
twice, missing). The timed part runs in a fresh process pinned to two cores, doing what
``invoices reconcile`` does: read the ledger, load the invoices from the index, match, write the
outcomes to the index, write the CSV/XLSX/HTML reports. It prints each phase's time, the total,
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


def build(tmp: Path, n_invoices: int, n_rows: int, seed: int, xlsx: bool) -> tuple[Path, Path, Counter[str]]:
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
    for other in others[: max(0, n_rows - len(rows))]:
        rows.append(other)
        expected["no_invoice_scanned"] += 1
    rng.shuffle(rows)

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
    return store_dir, ledger, expected


def measure(store_dir: str, ledger: str, out: str, workers: int) -> dict[str, Any]:
    """The timed part, in its own process: what ``invoices reconcile`` does, phase by phase."""
    from pipeline.reconcile import ReconcileOptions, invoices_from_index, reconcile, save_outcomes
    from pipeline.reconcile.report import page_links, write_reports
    from pipeline.reconcile.sources import read_ledger

    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = now - clock
        clock = now

    imported = read_ledger(Path(ledger))
    lap("read ledger")
    store = open_store(store_dir)
    invoices = invoices_from_index(store.index.documents())
    lap("load invoices from the index")
    result = reconcile(invoices, imported.rows, ReconcileOptions(workers=workers))
    lap("match")
    save_outcomes(store.index.path, result, imported)
    lap("write outcomes to the index")
    links = page_links(store, [e.invoice.document_id for e in result.entries if e.invoice])
    store.close()
    write_reports(Path(out), result, imported, links)
    lap("write CSV, XLSX, HTML reports")
    return {
        "phases": phases,
        "counts": result.counts(),
        "rows": len(imported.rows),
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
        print(f"== reconcile: {args.ledger_rows:,} ledger rows vs {args.invoices:,} invoices, {pinned} ==")
        started = time.perf_counter()
        store_dir, ledger, expected = build(tmp, args.invoices, args.ledger_rows, args.seed, args.xlsx)
        print(f"set-up (not timed): {time.perf_counter() - started:.1f} s, ledger {ledger.name} "
              f"{ledger.stat().st_size / 1e6:.1f} MB")  # fmt: skip
        with get_context("spawn").Pool(1) as pool:
            started = time.perf_counter()
            report = pool.apply(measure, (str(store_dir), str(ledger), str(tmp / "report"), args.cores))
            total = time.perf_counter() - started
    for name, seconds in report["phases"].items():
        print(f"  {name:<32} {seconds:6.2f} s")
    verdict = "within" if total < TARGET_SECONDS else "OVER"
    print(
        f"  {'total (incl. process start)':<32} {total:6.2f} s  ({verdict} the {TARGET_SECONDS:.0f} s target)"
    )
    print(f"  {'peak RSS':<32} {report['peak_rss_mb']:6.0f} MB")
    print(f"  rows read {report['rows']:,}, invoices {report['invoices']:,}")
    print("  outcome                    expected     got")
    for outcome, got in report["counts"].items():
        print(f"  {outcome:<25} {expected.get(outcome, 0):9,} {got:7,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
