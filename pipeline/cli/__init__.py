"""The ``invoices`` command: argument parsing, logging set-up and exit codes; nothing else.

Library callers get exceptions; shell users get one line on stderr and an exit code
(see ``pipeline.errors.ExitCode``). Each command lives in its own module here, with a
``register(commands)`` that adds its parser; ``COMMANDS`` lists them in ``--help`` order.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from pipeline import __version__
from pipeline.cli import ingest, models, ops, query, reconcile, review, serve, watch
from pipeline.cli.common import EPILOG, format_table
from pipeline.cli.logs import configure_logging
from pipeline.cli.query import QUERY_COLUMNS
from pipeline.errors import PipelineError

__all__ = ["QUERY_COLUMNS", "build_parser", "format_table", "main"]

log = logging.getLogger("pipeline")

COMMANDS: tuple[ModuleType, ...] = (ingest, query, reconcile, watch, review, serve, models, ops)


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
    for command in COMMANDS:
        command.register(commands)
    return parser


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
