"""`invoices review`: the correction tool."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.common import add_common, open_store_for, settings_from


def cmd_review(args: argparse.Namespace) -> int:
    from pipeline.review import run_review

    settings = settings_from(args)
    return run_review(
        lambda: open_store_for(settings),
        reviewer=args.reviewer,
        port=args.port,
        open_browser=not args.no_browser,
        tui=args.tui,
        review_below=settings.review_below,
    )


def register(commands: Any) -> None:
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
    add_common(review)
    review.set_defaults(func=cmd_review)
