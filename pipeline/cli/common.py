"""What every command shares: settings from the arguments, the store, common flags, tables."""

from __future__ import annotations

import argparse
import unicodedata
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pipeline.config import DEFAULT_STORE, Settings
from pipeline.errors import ExitCode, PipelineError

EPILOG = """\
exit codes:
  0  every document stored (some may need review)
  1  some documents failed (each is listed with its reason)
  2  bad arguments or configuration
  3  a dependency is missing (OCR models, a CJK font): the message says how to install it
  4  the store cannot be read or written
  5  the document or id asked for does not exist
  10 anything else: the OCR engine failed, the Dask cluster could not be reached or was lost

environment:
  INVOICES_STORE      store location: a directory (default ./invoice-store) or s3://bucket/prefix
  INVOICES_INDEX      the index: an SQLite file (default <store>/index.sqlite, for S3
                      ~/.cache/invoices/index/) or postgresql://USER@HOST:PORT/DB (docs/SCALE.md)
  INVOICES_MODEL_DIR  PaddleOCR model folders (default ~/.cache/invoices/models)
  AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_PROFILE: the S3
  service; INVOICES_S3_ADDRESSING_STYLE, INVOICES_S3_SSE, INVOICES_S3_MAX_ATTEMPTS (docs/S3.md)
"""


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table that lines up with Chinese (double-width) characters."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(row)).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
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
        raise BadArgs(str(exc)) from exc


class BadArgs(PipelineError):
    exit_code = ExitCode.BAD_ARGS


def open_store_for(settings: Settings, rebuild_missing_index: bool = True) -> Any:
    from pipeline.store import open_store

    return open_store(settings.store, settings.index, settings.s3, rebuild_missing_index)


def add_common(parser: argparse.ArgumentParser, engine: bool = False) -> None:
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
        default=None,
        metavar="FILE|URL",
        help="the index: an SQLite file, or postgresql://USER@HOST:PORT/DB shared by several machines "
        "(default: $INVOICES_INDEX, <store>/index.sqlite for a directory, "
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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def amount(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an amount: {text!r}") from exc


def add_filters(parser: argparse.ArgumentParser) -> None:
    from pipeline.store.index import DOCUMENT_STATUSES, RECONCILIATION_OUTCOMES, REVIEW_STATES

    filters = parser.add_argument_group("filters")
    filters.add_argument("--number", help="invoice number (发票号码), exact")
    filters.add_argument("--code", help="invoice code (发票代码), exact")
    filters.add_argument("--date-from", type=iso_date, metavar="YYYY-MM-DD", help="issued on or after")
    filters.add_argument("--date-to", type=iso_date, metavar="YYYY-MM-DD", help="issued on or before")
    filters.add_argument("--seller", metavar="NAME", help="seller (or vendor) name, fuzzy")
    filters.add_argument("--buyer", metavar="NAME", help="buyer name, fuzzy")
    filters.add_argument("--tax-id", metavar="ID", help="taxpayer ID of the seller or the buyer")
    filters.add_argument("--amount-min", type=amount, metavar="N", help="total amount at least N")
    filters.add_argument("--amount-max", type=amount, metavar="N", help="total amount at most N")
    filters.add_argument(
        "--status",
        choices=[*DOCUMENT_STATUSES, *RECONCILIATION_OUTCOMES, "failed"],
        help="document status, reconciliation outcome (after `invoices reconcile`), or failed",
    )
    filters.add_argument("--needs-review", action="store_true", help="only documents that need review")
    filters.add_argument("--review-state", choices=list(REVIEW_STATES), help="none, pending or reviewed")
    filters.add_argument("--text", metavar="WORDS", help="words in the names or the recognised text")
