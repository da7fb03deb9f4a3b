"""`invoices reconcile`: the stored invoices against the ledger."""

from __future__ import annotations

import argparse
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


def cmd_reconcile(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from pipeline.reconcile import Outcome, ReconcileOptions, invoices_from_index, reconcile, save_outcomes
    from pipeline.reconcile.report import page_links, summary_rows, write_reports
    from pipeline.reconcile.sources import LedgerMapping, read_ledger

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
    mapping = LedgerMapping.from_file(args.mapping) if args.mapping else LedgerMapping()
    if args.map:
        mapping = mapping.merged(LedgerMapping.from_pairs(args.map))
    ledger = read_ledger(args.ledger, mapping)
    store = open_store_for(settings_from(args))
    try:
        invoices = invoices_from_index(store.index.documents())
        result = reconcile(invoices, ledger.rows, options)
        save_outcomes(store.index.path, result, ledger)
        links = page_links(store, [e.invoice.document_id for e in result.entries if e.invoice])
    finally:
        store.close()
    paths = write_reports(args.out, result, ledger, links)
    if not args.quiet:
        print(f"ledger: {ledger.describe()}")
        if not invoices:
            print("note: the store holds no invoices, so no ledger row can be matched")
        print(format_table(["outcome", "结果", "count"], summary_rows(result)))
        unmatched = [e for e in result.entries if e.outcome != Outcome.MATCHED]
        if unmatched:
            print()
            shown = [
                (
                    str(e.outcome),
                    e.invoice.source_name if e.invoice else "",
                    e.ledger_row.row_number if e.ledger_row else "",
                    e.reason_en if len(e.reason_en) <= 110 else e.reason_en[:107] + "...",
                )
                for e in unmatched[:15]
            ]
            print(format_table(["outcome", "invoice", "row", "reason"], shown))
            if len(unmatched) > len(shown):
                print(f"... and {len(unmatched) - len(shown)} more in the reports")
        print("\nreports: " + ", ".join(str(path) for path in paths.values()))
    return ExitCode.SOME_FAILED if args.fail_on_mismatch and not result.all_matched else ExitCode.OK


def register(commands: Any) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="check the stored invoices against the company's ledger",
        description=(
            "Compare every stored invoice with the company's ledger export (CSV in UTF-8 or\n"
            "GBK/GB18030, or XLSX) and give each invoice and each ledger row an outcome and a reason,\n"
            "in English and Chinese:\n\n"
            "  matched                   in the ledger, every compared field agrees\n"
            "  matched_with_differences  in the ledger, but fields differ (both values are shown)\n"
            "  not_in_ledger             no ledger row is this invoice\n"
            "  duplicate                 scanned twice, or booked twice in the ledger\n"
            "  no_invoice_scanned        (ledger rows) no scanned invoice for this row\n\n"
            "Rows are found by invoice code + number, then by near numbers (typos, transposed digits,\n"
            "OCR look-alikes 0/O, 1/I, 8/B) with the same amount, or by amount, date and seller.\n"
            "Columns are recognised by their usual headers (发票代码, 发票号码, 开票日期, 金额, 税额,\n"
            "价税合计, 销售方名称, 销售方纳税人识别号, Invoice No, Date, Net, Tax, Total, Vendor ...);\n"
            "map others with --map or --mapping. Outcomes replace the previous run's in the index\n"
            "(invoices query --status not_in_ledger); CSV, XLSX and HTML reports go to --out.\n\n"
            "examples:\n"
            "  invoices reconcile --ledger 2024-台账.xlsx --from 2024-01-01 --to 2024-06-30\n"
            "  invoices reconcile --ledger erp.csv --map 单据号=invoice_number --map 供应商=seller_name \\\n"
            "      --amount-tolerance 0.05 --date-window-days 3 --out reports/ --fail-on-mismatch"
        ),
        epilog=(
            "fields for --map and the mapping file: invoice_code, invoice_number, issue_date,\n"
            "  amount_excl_tax, tax_amount, total_amount, seller_name, seller_tax_id, buyer_name,\n"
            "  buyer_tax_id\n\n"
            "exit codes:\n"
            "  0  done (1 with --fail-on-mismatch when any invoice or ledger row is not matched)\n"
            "  2  the ledger cannot be used: empty, no recognisable columns, not a spreadsheet\n"
            "  4  the store or the report folder cannot be read or written"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconcile.add_argument(
        "--ledger", type=Path, required=True, metavar="FILE", help="the ledger: CSV or XLSX"
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
        "--mapping",
        type=Path,
        metavar="FILE",
        help="a JSON or TOML file: [columns] header = field, and optional sheet, header_row, date_format, "
        "encoding",
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
        "--fail-on-mismatch", action="store_true", help="exit 1 when any invoice or ledger row is not matched"
    )
    reconcile.add_argument("--workers", type=positive_int, default=2, help="matching threads (default 2)")
    add_common(reconcile)
    reconcile.set_defaults(func=cmd_reconcile)
