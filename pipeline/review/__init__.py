"""Review of low-confidence fields: the library (``corrections``) and the terminal mode (``tui``); the
web page is the review view of the web app (``pipeline.web``). ``invoices review`` starts one of them
through ``run_review``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from pipeline.errors import ExitCode
from pipeline.review.corrections import (
    FieldReview,
    QueueEntry,
    ReviewInputError,
    apply_correction,
    default_reviewer,
    fields_to_review,
    review_history,
    review_queue,
)

if TYPE_CHECKING:
    from pipeline.store import Store

log = logging.getLogger(__name__)


def run_review(
    store: str | Callable[[], Store],
    reviewer: str | None = None,
    port: int = 0,
    open_browser: bool = True,
    tui: bool = False,
    review_below: float | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Start the web page (blocks until Ctrl+C) or, with ``tui``, the terminal mode; returns an exit code.

    ``store`` is a store location or a function that opens the store (the CLI passes its own opener,
    which knows the index and S3 settings).
    """
    from pipeline.review.corrections import DEFAULT_REVIEW_BELOW

    name = (reviewer or "").strip() or default_reviewer()
    below = DEFAULT_REVIEW_BELOW if review_below is None else review_below
    out = stdout or sys.stdout
    if tui:
        from pipeline.review.tui import run_tui
        from pipeline.store import open_store

        opened = open_store(store) if isinstance(store, str) else store()
        try:
            run_tui(opened, name, stdin or sys.stdin, out, review_below=below)
        finally:
            opened.close()
        return int(ExitCode.OK)
    from pipeline.web import serve

    def announce(line: str) -> None:
        print(line, file=out, flush=True)

    serve(
        store,
        name,
        port=port,
        open_browser=open_browser,
        review_below=below,
        announce=announce,
        view="review",
    )
    return int(ExitCode.OK)


__all__ = [
    "FieldReview",
    "QueueEntry",
    "ReviewInputError",
    "apply_correction",
    "default_reviewer",
    "fields_to_review",
    "review_history",
    "review_queue",
    "run_review",
]
