"""`invoices show`, `query`, `export`, `reindex` and `status`: reading the store and its index."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.cli.common import (
    BadArgs,
    add_common,
    add_filters,
    format_table,
    open_store_for,
    positive_int,
    settings_from,
)
from pipeline.cli.ingest import print_fields
from pipeline.cli.reconcile import add_line_filters
from pipeline.errors import ExitCode
from pipeline.store.export import EXPORT_COLUMNS


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store_for(settings_from(args))
    try:
        result = store.load_result(args.id)
    finally:
        store.close()
    data = result.to_dict(include_lines=args.lines)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(f"id: {data['document_id']}")
        print_fields(data)
        for check in data["checks"]:
            mark = "pass" if check["passed"] else "FAIL"
            print(f"  [{mark}] {check['rule']} {check['detail']}")
    return ExitCode.OK


LIST_COLUMNS = (
    "document_id",
    "source_name",
    "doc_type",
    "status",
    "invoice_number",
    "issue_date",
    "seller_name",
    "total_amount",
    "review_fields",
)


QUERY_COLUMNS = (*(column for column in EXPORT_COLUMNS if column != "tax_rates"), "result_key")
# Same invoice, several files (its OFD, PDF, XML, a scan): how many, and their names.
GROUP_COLUMNS = ("documents", "files")


FAILURE_COLUMNS = ("document_id", "source_name", "error_type", "message", "failed_at")


def query_from_args(args: argparse.Namespace) -> Any:
    from pipeline.store.index import Query

    if args.amount_min is not None and args.amount_max is not None and args.amount_min > args.amount_max:
        raise BadArgs("--amount-min is larger than --amount-max")
    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise BadArgs("--date-from is after --date-to")
    return Query(
        number=args.number,
        code=args.code,
        date_from=args.date_from,
        date_to=args.date_to,
        seller=args.seller,
        buyer=args.buyer,
        tax_id=args.tax_id,
        amount_min=args.amount_min,
        amount_max=args.amount_max,
        status=None if args.status == "failed" else args.status,
        needs_review=args.needs_review,
        review_state=args.review_state,
        text=args.text,
        limit=getattr(args, "limit", None),
    )


def cmd_query(args: argparse.Namespace) -> int:
    if args.outcome or args.platform_status:  # reconciliation lines (issue 15), not documents
        from pipeline.cli.reconcile import cmd_query_lines

        return cmd_query_lines(args)
    settings = settings_from(args)
    query = query_from_args(args)
    store = open_store_for(settings)
    try:
        rows = [] if args.status == "failed" else store.index.query(query, (*QUERY_COLUMNS, "ingested_at"))
        failures = store.index.failures()
    finally:
        store.close()
    if args.status == "failed":
        columns: Sequence[str] = FAILURE_COLUMNS
        records = [{column: row[column] for column in columns} for row in failures]
    else:
        rows = _grouped(rows, args.every_document)
        columns = (*QUERY_COLUMNS, *GROUP_COLUMNS)
        records = [{column: row[column] for column in columns} for row in rows]
    if args.format == "json":
        print(json.dumps(records, ensure_ascii=False, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    elif args.status == "failed":
        print(
            format_table(
                ["document_id", "source_name", "error"],
                [
                    (r["document_id"][:12], r["source_name"], f"{r['error_type']}: {r['message']}")
                    for r in records
                ],
            )
        )
    else:
        table_rows = [
            [row["document_id"][:12], *(row[c] for c in LIST_COLUMNS[1:]), row["documents"]] for row in rows
        ]
        print(format_table((*LIST_COLUMNS, "documents"), table_rows))
        if failures and not any(filters_given(args)):
            print(
                f"\n{len(failures)} failed: "
                + ", ".join(f"{f['source_name']} ({f['message']})" for f in failures)
            )
    return ExitCode.OK


def _grouped(rows: list[dict[str, Any]], every_document: bool) -> list[dict[str, Any]]:
    """One row per invoice (its first file found, with ``documents`` and ``files``), or, with
    ``every_document``, every file as it is stored, each still naming its invoice's files."""
    from pipeline.store.invoices import group_rows

    out = []
    for head, members in group_rows(rows):
        files = " | ".join(str(row["source_name"]) for row in members)
        for row in members if every_document else [head]:
            out.append({**row, "documents": len(members), "files": files})
    if every_document:
        order = {row["document_id"]: k for k, row in enumerate(rows)}
        out.sort(key=lambda row: order[row["document_id"]])
    return out


def filters_given(args: argparse.Namespace) -> list[Any]:
    names = ("number", "code", "date_from", "date_to", "seller", "buyer", "tax_id", "amount_min")
    names += ("amount_max", "status", "review_state", "text")
    return [getattr(args, name) for name in names if getattr(args, name) is not None] + [
        True for flag in ("needs_review",) if getattr(args, flag)
    ]


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.store.export import INDEX_COLUMNS, write_export

    settings = settings_from(args)
    query = query_from_args(args)
    if args.status == "failed":
        raise BadArgs("export writes invoices: use `invoices query --status failed` for failures")
    kind = args.format or args.out.suffix.lstrip(".").lower()
    if kind not in {"csv", "xlsx"}:
        raise BadArgs(f"cannot tell the export format of {args.out}: name it .csv or .xlsx, or give --format")
    store = open_store_for(settings)
    try:
        rows = store.index.query(query, INDEX_COLUMNS)
    finally:
        store.close()
    count = write_export(rows, args.out, kind)
    if not args.quiet:
        print(f"wrote {count} invoices to {args.out}")
    return ExitCode.OK


def cmd_reindex(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    store = open_store_for(settings, rebuild_missing_index=False)
    try:
        report = store.reindex(workers=args.workers)
        index_path = store.index.location
    finally:
        store.close()
    for key, why in report.skipped:
        print(f"error: {key}: {why}", file=sys.stderr)
    if not args.quiet:
        print(
            f"indexed {report.documents} documents and {report.failures} failures from {settings.store} "
            f"into {index_path} in {report.seconds:.1f} s"
            + (f"; {len(report.skipped)} records could not be read" if report.skipped else "")
        )
    return ExitCode.SOME_FAILED if report.skipped else ExitCode.OK


def cmd_status(args: argparse.Namespace) -> int:
    store = open_store_for(settings_from(args))
    try:
        counts = store.index.counts()
    finally:
        store.close()
    states = ["ok", "needs_review", "not_an_invoice", "failed"]
    states += sorted(state for state in counts if state not in states)
    print(format_table(["state", "documents"], [(state, counts.get(state, 0)) for state in states]))
    if args.folder is not None:
        from pipeline.watch import HotFolder

        if not args.folder.is_dir():
            raise BadArgs(f"no such folder: {args.folder}")
        print()
        print(format_table(["hot folder", "files"], list(HotFolder(args.folder).counts().items())))
    return ExitCode.OK


def register(commands: Any) -> None:
    show = commands.add_parser("show", help="print a stored result by document id (or a unique prefix)")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print the stored result JSON")
    show.add_argument("--lines", action="store_true", help="include the text lines in the JSON")
    add_common(show)
    show.set_defaults(func=cmd_show)

    query = commands.add_parser(
        "query",
        help="list stored invoices, filtered",
        description=(
            "List stored invoices from the index; every filter given must hold. Names match fuzzily "
            "(a part of the name, or a few characters off); --text searches names and the recognised "
            "text. Examples:\n\n"
            "  invoices query --seller 智源医疗 --date-from 2023-01-01 --date-to 2023-03-31\n"
            "  invoices query --needs-review --amount-min 10000 --format csv\n"
            "  invoices query --status failed\n\n"
            "An invoice held in several files (its OFD, PDF, XML and a scan share code and number) is\n"
            "one row, with the number of files in `documents` and their names in `files`;\n"
            "--every-document lists every file instead.\n\n"
            "--outcome and --platform-status list the lines of the last `invoices reconcile` instead\n"
            "(including invoices only the ledger or the tax platform has):\n\n"
            "  invoices query --outcome not_on_platform\n"
            "  invoices query --platform-status voided --format csv"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_filters(query)
    add_line_filters(query)
    query.add_argument("--limit", type=positive_int, default=None, help="at most this many rows")
    query.add_argument(
        "--every-document",
        action="store_true",
        help="one row per stored file, not per invoice (an invoice's OFD, PDF and XML each listed)",
    )
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    add_common(query)
    query.set_defaults(func=cmd_query)

    export = commands.add_parser(
        "export",
        help="write the (filtered) invoices to CSV or XLSX for accounting",
        description=(
            "Write the invoices matching the filters (the same as `query`) to a spreadsheet: amounts "
            "as numbers and the issue date as a date in XLSX, codes and taxpayer IDs as text. CSV is "
            "UTF-8 with a byte-order mark so Excel shows Chinese correctly."
        ),
    )
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help="FILE.csv or FILE.xlsx")
    export.add_argument(
        "--format", choices=["csv", "xlsx"], default=None, help="default: from --out's suffix"
    )
    add_filters(export)
    add_common(export)
    export.set_defaults(func=cmd_export)

    reindex = commands.add_parser(
        "reindex",
        help="rebuild the index from the store alone",
        description=(
            "Rebuild the index (SQLite or PostgreSQL) from the store (the source of truth): every stored result "
            "(the current one, after reviews) and every failure record. The old index stays "
            "usable until the new one is complete."
        ),
    )
    reindex.add_argument("--workers", type=positive_int, default=16, help="parallel reads (default 16)")
    add_common(reindex)
    reindex.set_defaults(func=cmd_reindex)

    status = commands.add_parser(
        "status",
        help="count stored documents per state (and hot folder files with --folder)",
        description="Documents in the store per state (ok, needs_review, not_an_invoice, failed); with "
        "--folder, also the files of a hot folder in inbox, processing, done and failed.",
    )
    status.add_argument("--folder", type=Path, default=None, help="a hot folder (see `invoices watch`)")
    add_common(status)
    status.set_defaults(func=cmd_status)
