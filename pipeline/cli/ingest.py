"""`invoices ingest` and `invoices extract`: files through the pipeline."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from pipeline.cli.common import EPILOG, BadArgs, add_common, format_table, open_store_for, settings_from
from pipeline.cli.monitoring import add_monitoring_flags, monitoring
from pipeline.errors import ExitCode

log = logging.getLogger("pipeline")


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline.ingest import State, discover, run_batch

    workers = args.workers or os.cpu_count() or 1
    if args.cluster:
        from pipeline.cluster import check_store_for_cluster, parse_cluster

        address, local_workers = parse_cluster(args.cluster)
        if (
            getattr(args, "verbose", 0) < 2
        ):  # Dask's own INFO lines (workers starting, closing) are noise here
            logging.getLogger("distributed").setLevel(logging.WARNING)
        # Each worker of a local cluster gets its share of the cores; remote workers their own one.
        workers = local_workers or 1
    settings = settings_from(args, threads_per_worker=max(1, (os.cpu_count() or 1) // workers))
    if args.cluster:
        check_store_for_cluster(settings.store, address)
    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        raise BadArgs(f"no such file or folder: {', '.join(missing)}")
    files, skipped = discover(args.paths)
    for path in skipped:
        log.info("skipped (not a format read, by its name): %s", path)
    store = open_store_for(settings)
    cluster = None
    if args.cluster and files:
        from pipeline.cluster import ClusterExecutor

        try:
            cluster = ClusterExecutor(args.cluster, settings, store)
        except BaseException:
            store.close()
            raise
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
        with monitoring(args, settings, "ingest") as ops:

            def on_done_watched(outcome: Any) -> None:
                on_done(outcome)
                ops.record(outcome)

            outcomes = run_batch(
                files,
                settings,
                store,
                workers,
                on_done_watched,
                follow=set(args.paths),
                store_factory=lambda: open_store_for(settings, rebuild_missing_index=False),
                cluster=cluster,
            )
    finally:
        bar.close()
        if cluster is not None:
            cluster.close()
        store.close()
    stored = [o for o in outcomes if o.state == State.STORED]
    failed = [o for o in outcomes if o.state == State.FAILED]
    # Named with their reason, not only counted: folder files by their name, bundle members by content.
    not_read = [(str(path), f"not a format read ({path.suffix or 'no extension'})") for path in skipped]
    not_read += [(o.path, o.message) for o in outcomes if o.state == State.SKIPPED]
    summary = [
        ("stored", len(stored)),
        ("  ok", sum(o.status == "ok" for o in stored)),
        ("  needs review", sum(o.status == "needs_review" for o in stored)),
        ("  not an invoice", sum(o.status == "not_an_invoice" for o in stored)),
        ("already stored", sum(o.state == State.ALREADY_STORED for o in outcomes)),
        ("failed", len(failed)),
        ("skipped (not a document)", len(not_read)),
    ]
    if not args.quiet:
        print(format_table(["documents", "count"], summary))
        if failed:
            print()
            print(format_table(["failed file", "reason"], [(o.path, o.message) for o in failed]))
        if not_read:
            print()
            print(format_table(["skipped file", "reason"], not_read))
        same = [(o.path, o.same_invoice) for o in outcomes if o.same_invoice]
        if same:
            print()
            print(format_table(["file of an invoice stored before", "note"], same))
        print(f"\nstore: {settings.store}")
    return ExitCode.SOME_FAILED if failed else ExitCode.OK


def cmd_extract(args: argparse.Namespace) -> int:
    from pipeline.process import process_document

    settings = settings_from(args)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise BadArgs(f"cannot read {args.file}: {exc.strerror}") from exc
    processed = process_document(data, args.file.name, settings)
    result = processed.result.to_dict(include_lines=args.lines)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_fields(result)
    return ExitCode.OK


def print_fields(result: dict[str, Any]) -> None:
    print(f"{result['source_name']}  {result['doc_type']}  status: {result['status']}")
    rows = [
        (
            name,
            cell(found["value"]),
            found["status"],
            f"{found['confidence']:.2f}",
            "; ".join(found["reasons"]),
        )
        for name, found in result["fields"].items()
    ]
    print(format_table(["field", "value", "status", "conf", "reasons"], rows))


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def register(commands: Any) -> None:
    ingest = commands.add_parser(
        "ingest",
        help="process files and folders into the store",
        description=(
            "Process every document in the given files and folders (recursively): PDF, OFD and XML "
            "e-invoices (数电票 EInvoice, the fp: eInvoice), images (JPEG, PNG, TIFF, BMP, WebP, "
            "HEIC/HEIF phone photos), and ZIP bundles from the tax platform, each document inside "
            "stored on its own as bundle.zip!path/in/zip. Stores the original, page images (OFD and "
            "XML pages are drawn) and result, and indexes it. Files already in the store (same "
            "content) are skipped, so a re-run only does what is missing. A file that cannot be "
            "processed is reported with its reason and the batch goes on; one that is not a "
            "document is named in the summary with its reason.\n\n"
            "With --cluster the documents run on Dask workers (several machines): the originals go to\n"
            "the store once, workers read them from there and write pages and results back, and this\n"
            "command indexes them. Use an s3:// store and a postgresql:// index shared by every machine\n"
            "(docs/SCALE.md):\n\n"
            "  invoices ingest scans/ --cluster local:2      # try it: 2 worker processes here\n"
            "  invoices ingest scans/ --cluster tcp://scheduler:8786 --store s3://invoices/prod \\\n"
            "      --index postgresql://invoices@db:5432/invoices"
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    ingest.add_argument(
        "--workers", type=int, default=None, help="parallel worker processes (default: number of cores)"
    )
    ingest.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="run on Dask distributed: tcp://SCHEDULER:8786 (an existing cluster; its workers need this "
        "package, the OCR models and the S3 credentials), or local:N (N worker processes here, 1 "
        "thread each); replaces --workers",
    )
    add_monitoring_flags(ingest)
    add_common(ingest, engine=True)
    ingest.set_defaults(func=cmd_ingest)

    extract = commands.add_parser(
        "extract",
        help="print the result for one file; stores nothing",
        description=(
            "Run the whole pipeline on one file and print its fields (or the result JSON): a PDF, an "
            "OFD or XML e-invoice (fields from the invoice's own data, source `structured`), or an "
            "image (JPEG, PNG, TIFF, BMP, WebP, HEIC/HEIF). For a ZIP bundle use `ingest`."
        ),
    )
    extract.add_argument("file", type=Path)
    extract.add_argument(
        "--json", action="store_true", help="print the full result JSON (see docs/RESULT_SCHEMA.md)"
    )
    extract.add_argument("--lines", action="store_true", help="include the recognised text lines in the JSON")
    add_common(extract, engine=True)
    extract.set_defaults(func=cmd_extract)
