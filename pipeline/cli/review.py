"""`invoices review`: the correction tool (the web app's review view, or --tui in the terminal)."""

from __future__ import annotations

import argparse
from typing import Any

from pipeline.cli.common import add_common, open_store_for, settings_from


def cmd_review(args: argparse.Namespace) -> int:
    from pipeline.review import run_review

    if not args.tui:
        from pipeline.cli.serve import cmd_serve

        return cmd_serve(args)
    settings = settings_from(args)
    return run_review(
        lambda: open_store_for(settings),
        reviewer=args.reviewer,
        tui=True,
        review_below=settings.review_below,
    )


def register(commands: Any) -> None:
    from pipeline.cli.serve import add_server_options

    review = commands.add_parser(
        "review",
        help="correct the fields that need review, in the web app's review view (or --tui)",
        description=(
            "Walk every stored invoice with fields that need review: the crop of the page around each "
            "field, the whole page with its box, the value read, why it needs review and the QR-code "
            "value. Enter accepts, typing corrects. This opens the review view of the web app "
            "(`invoices serve`), which listens on 127.0.0.1 only, behind a random token in its "
            "address; --tui works in the terminal instead."
        ),
    )
    review.add_argument("--tui", action="store_true", help="review in the terminal instead of a web page")
    add_server_options(review)
    add_common(review)
    review.set_defaults(func=cmd_review, view="review")
