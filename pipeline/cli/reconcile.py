"""`invoices reconcile`: the stored invoices against the ledger and the tax platform's invoice list."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.cli.common import (
    BadArgs,
    add_common,
    format_table,
    iso_date,
    open_store_for,
    positive_int,
    settings_from,
)
from pipeline.errors import ExitCode

# Rows of the second, third ... ledger file are numbered from here on, so every row keeps one number.
LEDGER_FILE_OFFSET = 1_000_000


def _read_ledgers(paths: list[Path], mapping: Any) -> Any:
    from dataclasses import replace

    from pipeline.reconcile.sources import read_ledger

    imports = [read_ledger(path, mapping) for path in paths]
    first = imports[0]
    for k, other in enumerate(imports[1:], start=1):
        offset = k * LEDGER_FILE_OFFSET
        first.rows += [replace(row, row_number=row.row_number + offset) for row in other.rows]
        first.problems += [replace(p, row_number=p.row_number + offset) for p in other.problems]
    return first, imports


def cmd_reconcile(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from pipeline.reconcile import ReconcileOptions, invoices_from_index, save_outcomes, threeway_report
    from pipeline.reconcile import report as ledger_report
    from pipeline.reconcile.platform import merge_platform, platform_mapping, read_platform
    from pipeline.reconcile.sources import LedgerMapping
    from pipeline.reconcile.tables import save_lines
    from pipeline.reconcile.threeway import LineOutcome, reconcile_three_way

    if not args.ledger and not args.tax_platform:
        raise BadArgs("give --ledger FILE, --tax-platform FILE, or both")
    try:
        tolerance = Decimal(args.amount_tolerance)
    except InvalidOperation as exc:
        raise BadArgs(f"--amount-tolerance must be an amount in yuan, not {args.amount_tolerance!r}") from exc
    options = ReconcileOptions(
        amount_tolerance=tolerance,
        date_window_days=args.date_window_days,
        date_from=args.date_from,
        date_to=args.date_to,
        workers=args.workers,
    )
    ledger = None
    ledger_files: list[Any] = []
    if args.ledger:
        mapping = LedgerMapping.from_file(args.mapping) if args.mapping else LedgerMapping()
        if args.map:
            mapping = mapping.merged(LedgerMapping.from_pairs(args.map))
        ledger, ledger_files = _read_ledgers(args.ledger, mapping)
    platform_files = [
        read_platform(path, platform_mapping(args.platform_map or [])) for path in args.tax_platform or []
    ]
    platform = merge_platform(platform_files) if platform_files else None
    store = open_store_for(settings_from(args))
    try:
        invoices = invoices_from_index(store.index.documents())
        result = reconcile_three_way(invoices, ledger.rows if ledger else None, platform, options)
        if ledger is not None:
            save_outcomes(store.index, result.ledger_result, ledger)
        save_lines(store.index, result, platform)
        links = ledger_report.page_links(
            store, [line.invoice.document_id for line in result.lines if line.invoice]
        )
    finally:
        store.close()
    if platform is not None:
        paths = threeway_report.write_reports(args.out, result, ledger, platform_files, links)
    else:
        paths = ledger_report.write_reports(args.out, result.ledger_result, ledger, links)
    if not args.quiet:
        for imported in ledger_files:
            print(f"ledger: {imported.describe()}")
        for imported in platform_files:
            print(f"tax platform: {imported.describe()}")
        problems = (ledger.problems if ledger else []) + [p for f in platform_files for p in f.problems]
        if problems:
            shown = problems[:8]
            print(f"{len(problems)} row problem(s), listed in the reports; the first:")
            for p in shown:
                print(f"  row {p.row_number}: {p.message}")
        if not invoices:
            print("note: the store holds no invoices, so none is held")
        print()
        print(
            format_table(
                ["outcome", "结果", "code", "count", "amount"],
                [
                    (en, zh, code, count, amount)
                    for code, en, zh, count, amount in threeway_report.summary_rows(result)
                ],
            )
        )
        several = [line for line in result.lines if len(line.documents) > 1]
        if several:
            separately = sum(line.arrived_separately for line in several)
            print(
                f"\n{len(several)} invoice(s) held in several files, counted once; {separately} of them "
                f"arrived separately (check double reimbursement) / {len(several)} 张发票有多个文件（按一张计），"
                f"其中 {separately} 张分别提交（注意重复报销）"
            )
        unmatched = [line for line in result.lines if line.outcome != LineOutcome.MATCHED]
        if unmatched:
            print()
            shown_lines = [
                (
                    str(line.outcome),
                    line.label,
                    line.invoice.source_name if line.invoice else "",
                    line.ledger_row.row_number if line.ledger_row else "",
                    line.reason_en if len(line.reason_en) <= 100 else line.reason_en[:97] + "...",
                )
                for line in unmatched[:15]
            ]
            print(format_table(["outcome", "invoice", "held", "row", "reason"], shown_lines))
            if len(unmatched) > len(shown_lines):
                print(f"... and {len(unmatched) - len(shown_lines)} more in the reports")
        print("\nreports: " + ", ".join(str(path) for path in paths.values()))
    matched = all(line.outcome == LineOutcome.MATCHED for line in result.lines)
    return ExitCode.SOME_FAILED if args.fail_on_mismatch and not matched else ExitCode.OK


LINE_LIST_COLUMNS = (
    "outcome",
    "platform_status",
    "invoice_code",
    "invoice_number",
    "issue_date",
    "total_amount",
    "seller_name",
    "document_id",
    "ledger_row",
    "platform_source",
    "reason_en",
)


def cmd_query_lines(args: argparse.Namespace) -> int:
    """`invoices query --outcome X` / `--platform-status Y`: the last reconciliation's lines."""
    import csv
    import sys

    from pipeline.reconcile.tables import load_lines

    store = open_store_for(settings_from(args))
    try:
        lines = load_lines(
            store.index,
            args.outcome,
            args.platform_status,
            getattr(args, "limit", None),
            number=args.number,
            code=args.code,
            date_from=args.date_from,
            date_to=args.date_to,
            amount_min=args.amount_min,
            amount_max=args.amount_max,
        )
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(lines, ensure_ascii=False, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(
            sys.stdout, fieldnames=list(lines[0]) if lines else ["outcome"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(
            {k: json.dumps(v, ensure_ascii=False) if k == "differences" else v for k, v in line.items()}
            for line in lines
        )
    else:
        rows = [
            [
                *(line[c] for c in LINE_LIST_COLUMNS[:7]),
                (line["document_id"] or "")[:12],
                line["ledger_row"],
                line["platform_source"],
                line["reason_en"] if len(line["reason_en"]) <= 80 else line["reason_en"][:77] + "...",
            ]
            for line in lines
        ]
        print(format_table(LINE_LIST_COLUMNS, rows))
    return ExitCode.OK


def add_line_filters(parser: argparse.ArgumentParser) -> None:
    """The `query` flags that list reconciliation lines instead of documents."""
    from pipeline.reconcile.platform import PlatformStatus
    from pipeline.reconcile.threeway import LineOutcome

    parser.add_argument(
        "--outcome",
        choices=[str(code) for code in LineOutcome],
        default=None,
        help="list the last `invoices reconcile` lines with this outcome (main or additional), "
        "including invoices only the ledger or the tax platform has; --number, --code, --date-from, "
        "--date-to, --amount-min and --amount-max narrow them",
    )
    parser.add_argument(
        "--platform-status",
        choices=[str(status) for status in PlatformStatus],
        default=None,
        help="list the last reconciliation's lines whose tax-platform status is this",
    )


def register(commands: Any) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="check the stored invoices against the ledger and the tax platform's invoice list",
        description=(
            "Say for every invoice where it stands in three places: the invoices held (scanned or\n"
            "e-invoices, in the store), the company's ledger (ERP export) and the tax platform's own\n"
            "list (电子发票服务平台 → 发票查询统计 → 全量发票查询, or the 抵扣勾选 list). Give either\n"
            "--ledger or --tax-platform, or both; each may be repeated. CSV in UTF-8 or GBK/GB18030\n"
            "(with or without BOM) or XLSX; the header row is found below title rows, totals rows are\n"
            "skipped, bad rows are listed with their row numbers and never stop the run.\n\n"
            "outcomes (most serious first; `invoices query --outcome CODE` lists them):\n"
            "  not_on_platform           held or booked, but the platform has no such invoice:\n"
            "                            check its authenticity with the issuer (纸质发票已入账，但税务平台查无此票)\n"
            "  voided_but_booked         booked, the platform says 作废\n"
            "  red_reversed_but_booked   booked, the platform says 红冲 (in full or in part: the part\n"
            "                            reversed and what remains are given)\n"
            "  abnormal_but_booked       booked, the platform says 失控 or 异常\n"
            "  platform_differs          amounts, parties or the number on the platform differ from the\n"
            "                            document (a misread, or a tampered paper copy)\n"
            "  booked_twice              the ledger books the invoice twice\n"
            "  deducted_not_booked       selected for deduction (勾选) on the platform, not booked\n"
            "  high_risk                 the platform's 发票风险等级 is high\n"
            "  platform_only             on the platform, neither booked nor held\n"
            "  arrived_separately        one invoice held in several files (its OFD, PDF, XML, a scan)\n"
            "                            that came in separately: check it is not reimbursed twice\n"
            "  duplicate                 scanned twice\n"
            "  not_in_ledger             held (and on the platform), not booked\n"
            "  no_invoice_scanned        booked (and on the platform), no invoice held\n"
            "  matched_with_differences  held and booked, with differing fields (both values shown)\n"
            "  matched                   everything agrees\n\n"
            "Tax-platform exports recognised by their headers: 全量发票查询 (发票代码, 发票号码, 数电发票号码,\n"
            "销方识别号, 销方名称, 购方识别号, 购买方名称, 开票日期, 金额, 税额, 价税合计, 发票状态, 是否正数发票,\n"
            "发票风险等级, 备注 …, with an optional sheet of item lines), 数电 抵扣勾选 (是否勾选, 数电发票号码,\n"
            "票面税额, 有效抵扣税额, 红字锁定标志, 勾选时间 …) and the older 综合服务平台 勾选 list (发票状态 as\n"
            "0 正常, 1 失控, 2 作废, 3 红冲, 4 异常). Red-letter invoices are linked to their blue invoice by\n"
            "their 备注 (对应正数发票代码:X号码:Y, 被红冲蓝字数电发票号码：N) and netted.\n\n"
            "Invoices are found by code + number or the 20-digit 数电 number, then by near numbers (typos,\n"
            "OCR look-alikes 0/O, 1/I, 8/B) with the same amount, or by amount, date and seller.\n"
            "An invoice held in several files (same code and number) is one line, counted once, with\n"
            "its files in the documents column.\n"
            "Outcomes replace the previous run's in the index; CSV, XLSX (a sheet per outcome and a\n"
            "summary) and HTML reports go to --out; counts and amounts per outcome are printed.\n\n"
            "examples:\n"
            "  invoices reconcile --ledger erp.xlsx --tax-platform 全量发票查询.xlsx\n"
            "  invoices reconcile --tax-platform 全量发票查询.xlsx --tax-platform 抵扣勾选.csv --out reports/\n"
            "  invoices reconcile --ledger 2024-台账.xlsx --from 2024-01-01 --to 2024-06-30\n"
            "  invoices reconcile --ledger erp.csv --map 单据号=invoice_number --map 供应商=seller_name \\\n"
            "      --amount-tolerance 0.05 --date-window-days 3 --out reports/ --fail-on-mismatch\n"
            "  invoices query --outcome not_on_platform\n"
            "  invoices query --platform-status voided --format csv"
        ),
        epilog=(
            "fields for --map and the mapping file: invoice_code, invoice_number, issue_date,\n"
            "  amount_excl_tax, tax_amount, total_amount, seller_name, seller_tax_id, buyer_name,\n"
            "  buyer_tax_id\n"
            "fields for --platform-map: those, and digital_number, status, positive, risk, deducted,\n"
            "  deducted_on, red_locked, effective_tax, kind, remarks\n\n"
            "exit codes:\n"
            "  0  done (1 with --fail-on-mismatch when any line is not matched)\n"
            "  2  a ledger or export cannot be used: empty, no recognisable columns, not a spreadsheet\n"
            "  4  the store or the report folder cannot be read or written"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconcile.add_argument(
        "--ledger",
        type=Path,
        action="append",
        metavar="FILE",
        help="the ledger: CSV or XLSX (repeatable; rows of the second file are numbered from 1000001)",
    )
    reconcile.add_argument(
        "--tax-platform",
        type=Path,
        action="append",
        metavar="FILE",
        help="a tax-platform export: 全量发票查询 or 抵扣勾选, CSV or XLSX (repeatable)",
    )
    reconcile.add_argument(
        "--from",
        dest="date_from",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="only invoices issued on or after",
    )
    reconcile.add_argument(
        "--to", dest="date_to", type=iso_date, metavar="YYYY-MM-DD", help="only invoices issued on or before"
    )
    reconcile.add_argument(
        "--map",
        action="append",
        metavar="COLUMN=FIELD",
        help="read ledger column COLUMN as FIELD (repeatable), e.g. --map 单据号=invoice_number",
    )
    reconcile.add_argument(
        "--platform-map",
        action="append",
        metavar="COLUMN=FIELD",
        help="read tax-platform column COLUMN as FIELD (repeatable), e.g. --platform-map 状态=status",
    )
    reconcile.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="a JSON or TOML file for the ledger: [columns] header = field, and optional sheet, "
        "header_row, date_format, encoding",
    )
    reconcile.add_argument(
        "--amount-tolerance",
        default="0.01",
        metavar="YUAN",
        help="amounts this close agree (default 0.01)",
    )
    reconcile.add_argument(
        "--date-window-days",
        type=int,
        default=0,
        metavar="N",
        help="dates N days apart agree, for ledgers that record a booking date (default 0)",
    )
    reconcile.add_argument(
        "--out",
        type=Path,
        default=Path("reconcile-report"),
        metavar="DIR",
        help="report folder (default ./reconcile-report/)",
    )
    reconcile.add_argument(
        "--fail-on-mismatch", action="store_true", help="exit 1 when any line is not matched"
    )
    reconcile.add_argument("--workers", type=positive_int, default=2, help="matching threads (default 2)")
    add_common(reconcile)
    reconcile.set_defaults(func=cmd_reconcile)
