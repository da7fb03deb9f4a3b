"""`invoices verify`, `invoices backup` and `invoices restore`: the store's integrity, copies, recovery."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.cli.common import (
    EPILOG,
    BadArgs,
    add_common,
    format_table,
    open_store_for,
    positive_int,
    settings_from,
)
from pipeline.config import Settings
from pipeline.errors import ExitCode


def _existing_store(args: argparse.Namespace) -> Settings:
    """Settings for a store that must exist already (a directory is never created by a check)."""
    from pipeline.store import is_s3_location

    settings = settings_from(args)
    if not is_s3_location(settings.store) and not Path(settings.store).expanduser().is_dir():
        raise BadArgs(f"no store at {settings.store} (give --store or set INVOICES_STORE)")
    return settings


def _print_verify(report: Any, as_json: bool, quiet: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=1))
        return
    for problem in report.problems:
        print(f"problem: {problem.line()}", file=sys.stderr)
    for problem, action in report.repaired:
        print(f"repaired: {problem.line()}: {action}")
    for problem, why in report.unrepaired:
        print(f"cannot repair: {problem.line()}: {why}", file=sys.stderr)
    if quiet:
        return
    rows: list[tuple[str, Any]] = [
        ("documents", report.documents),
        ("objects", report.objects),
        ("index rows", report.index_rows),
        (
            "originals hashed",
            f"{report.bytes_hashed / 1e6:.1f} MB" if report.deep else "no (quick: use --deep)",
        ),
        ("incomplete (interrupted saves)", len(report.incomplete)),
        ("problems", len(report.problems)),
    ]
    rows += [(f"  {kind}", count) for kind, count in report.counts().items()]
    print(format_table(["store " + report.location, ""], rows))
    for doc in report.incomplete[:20]:
        print(
            f"incomplete: {doc[:16]}: no result.json (a save was cut short; ingest the file again to finish it)"
        )
    print("\nclean" if report.clean else f"\n{len(report.problems)} problems")


def cmd_verify(args: argparse.Namespace) -> int:
    from pipeline.ops.verify import repair, verify

    if args.repair_from and not args.repair:
        raise BadArgs("--from BACKUP is for --repair: add --repair")
    settings = _existing_store(args)
    store = open_store_for(settings, rebuild_missing_index=False)
    try:
        report = verify(store, deep=args.deep, workers=args.workers)
        if args.repair and not report.clean:
            source = None
            if args.repair_from:
                from pipeline.ops.backup import open_objects

                source = open_objects(args.repair_from, settings.s3)
            repair(store, report, source)
            after = verify(store, deep=args.deep, workers=args.workers)
            after.repaired, after.unrepaired = report.repaired, report.unrepaired
            if not args.json:
                for problem in report.problems:
                    print(f"found: {problem.line()}", file=sys.stderr)
            report = after
    finally:
        store.close()
    _print_verify(report, args.json, args.quiet)
    return ExitCode.OK if report.clean else ExitCode.SOME_FAILED


def _print_copy(report: Any, verb: str) -> None:
    for key, why in report.refused:
        print(f"error: {key}: {why}", file=sys.stderr)
    print(
        f"{verb} {report.copied} objects ({report.copied_bytes / 1e6:.1f} MB) from {report.source} to "
        f"{report.destination}; {report.unchanged} there already"
        + (f", {report.kept} kept as they were" if report.kept else "")
        + (f", {len(report.refused)} refused" if report.refused else "")
        + f"; every copy read back and checked, in {report.seconds:.1f} s"
    )


def cmd_backup(args: argparse.Namespace) -> int:
    from pipeline.ops.backup import backup, open_objects

    settings = _existing_store(args)
    if args.destination.rstrip("/") == settings.store.rstrip("/"):
        raise BadArgs("the backup destination is the store itself")
    store = open_store_for(settings, rebuild_missing_index=False)
    try:
        destination = open_objects(args.destination, settings.s3)
        report = backup(store, destination, workers=args.workers)
    finally:
        store.close()
    if not args.quiet or report.refused:
        _print_copy(report, "backed up")
    return ExitCode.OK if report.ok else ExitCode.SOME_FAILED


def cmd_restore(args: argparse.Namespace) -> int:
    from pipeline.ops.backup import open_objects, restore
    from pipeline.ops.verify import verify

    if args.store is None:
        raise BadArgs("say where to restore to: --store NEW (a directory or s3://bucket/prefix)")
    settings = settings_from(args)
    if args.source.rstrip("/") == settings.store.rstrip("/"):
        raise BadArgs("the backup and the store to restore into are the same")
    from pipeline.store import is_s3_location

    if not is_s3_location(args.source) and not Path(args.source).expanduser().is_dir():
        raise BadArgs(f"no backup at {args.source}")
    source = open_objects(args.source, settings.s3)
    store = open_store_for(settings, rebuild_missing_index=False)
    try:
        report = restore(source, store, workers=args.workers)
        checked = verify(store, deep=True, workers=args.workers)
    finally:
        store.close()
    _print_copy(report, "restored")
    _print_verify(checked, False, args.quiet)
    return ExitCode.OK if report.ok and checked.clean else ExitCode.SOME_FAILED


def register(commands: Any) -> None:
    verify = commands.add_parser(
        "verify",
        help="check the store: originals against their ids, results, pages, index, reviews",
        description=(
            "Check that nothing in the store was lost or altered, and that the index agrees with it:\n"
            "  - every original is there (with --deep: its SHA-256 is its id, so its bytes are the ones received);\n"
            "  - every result.json parses, names its own document, and its page images exist;\n"
            "  - every index row has its objects, and every stored result has its index row;\n"
            "  - the review audit records agree with the results; failure records with the index.\n"
            "Prints each problem and a summary; exit 0 when clean, 1 otherwise.\n\n"
            "--repair rebuilds missing, stray and stale index rows from the store, and with --from BACKUP\n"
            "copies damaged or missing objects back from a backup (each checked first); it lists what it\n"
            "cannot repair, and never deletes anything from the store. Run --deep nightly or weekly\n"
            "(it reads every original), the quick check as often as you like. See docs/OPERATIONS.md."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("--deep", action="store_true", help="hash every original and read every page image")
    verify.add_argument("--repair", action="store_true", help="fix what can be fixed, list the rest")
    verify.add_argument(
        "--from",
        dest="repair_from",
        metavar="BACKUP",
        default=None,
        help="with --repair: a backup (directory or s3://) to copy damaged or missing objects back from",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--workers", type=positive_int, default=8, help="parallel reads (default 8)")
    add_common(verify)
    verify.set_defaults(func=cmd_verify)

    backup = commands.add_parser(
        "backup",
        help="copy the store to a backup (a directory or s3://), incrementally",
        description=(
            "Copy every object of the store that DEST lacks. Objects are named by the SHA-256 of the\n"
            "original, so a backup only copies what is new (and results changed by a review); each\n"
            "copied object is read back and checked. An original that no longer matches its id is not\n"
            "copied (the backup keeps its good copy): run `invoices verify --deep`. Nothing is deleted\n"
            "from DEST. The index is not copied: `invoices restore` rebuilds it.\n\n"
            "  invoices backup /mnt/backup/invoices\n"
            "  invoices backup s3://invoice-backup/site-a      # AWS_* variables as for the store\n\n"
            "docs/OPERATIONS.md has a nightly systemd timer and a monthly restore drill."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backup.add_argument("destination", metavar="DEST", help="a directory or s3://bucket/prefix")
    backup.add_argument("--workers", type=positive_int, default=8, help="parallel copies (default 8)")
    add_common(backup)
    backup.set_defaults(func=cmd_backup)

    restore = commands.add_parser(
        "restore",
        help="restore a backup into a store, check it and rebuild its index",
        description=(
            "Copy the backup SRC into the store given by --store (objects it already holds are kept as\n"
            "they are), rebuild the index from the objects, then check everything as `verify --deep`\n"
            "does. Exit 0 when the restored store is complete and clean.\n\n"
            "  invoices restore /mnt/backup/invoices --store /srv/invoices-restored"
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore.add_argument("source", metavar="SRC", help="the backup: a directory or s3://bucket/prefix")
    restore.add_argument("--workers", type=positive_int, default=8, help="parallel copies (default 8)")
    add_common(restore)
    restore.set_defaults(func=cmd_restore)
