"""Terminal review, for servers without a browser: the same queue, one field at a time.

Each field shows its value, why it needs review, the QR-code or ledger value, and the path of a PNG crop
of the page around it. Then one line of input: Enter accepts, text corrects (a leading ``=`` types a
value that would otherwise be a command), ``s`` skips the field, ``n`` the rest of the invoice, ``q`` quits.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipeline.errors import NotFound, PipelineError
from pipeline.review.corrections import (
    DEFAULT_REVIEW_BELOW,
    FieldReview,
    ReviewInputError,
    apply_correction,
    display_value,
    fields_to_review,
    ledger_values,
    review_queue,
)
from pipeline.review.images import PageCache, crop_png

if TYPE_CHECKING:
    from pipeline.store import Store

log = logging.getLogger(__name__)

HELP = "Enter accepts · type a correction · s skips the field · n next invoice · q quits"


@dataclass
class TuiSummary:
    corrected: int = 0
    accepted: int = 0
    skipped: int = 0
    refused: int = 0
    quit: bool = False


def run_tui(
    store: Store,
    reviewer: str,
    stdin: TextIO,
    stdout: TextIO,
    crop_dir: Path | None = None,
    review_below: float = DEFAULT_REVIEW_BELOW,
) -> TuiSummary:
    """Walk the review queue reading one line per answer from ``stdin``; EOF quits.

    Crops go to ``crop_dir`` (kept), or to a temporary folder removed at the end.
    """
    own_dir = crop_dir is None
    folder = Path(tempfile.mkdtemp(prefix="invoices-review-")) if crop_dir is None else crop_dir
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _Session(store, reviewer, stdin, stdout, folder, review_below).run()
    finally:
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)


class _Session:
    def __init__(
        self, store: Store, reviewer: str, stdin: TextIO, stdout: TextIO, folder: Path, review_below: float
    ) -> None:
        self.store = store
        self.review_below = review_below
        self.reviewer = reviewer
        self.stdin = stdin
        self.stdout = stdout
        self.folder = folder
        self.pages = PageCache()
        self.summary = TuiSummary()

    def say(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def ask(self) -> str | None:
        self.stdout.write("  > ")
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            self.say()
            return None
        return line.rstrip("\r\n")

    def run(self) -> TuiSummary:
        queue = review_queue(self.store)
        if not queue:
            self.say("Nothing to review: no stored invoice has fields that need review.")
            return self.summary
        total = sum(len(entry.fields) for entry in queue)
        self.say(f"{len(queue)} invoice(s), {total} field(s) to review, as {self.reviewer}.")
        self.say(f"Crops are written to {self.folder}")
        self.say(HELP)
        for number, entry in enumerate(queue, start=1):
            self.say()
            self.say(
                f"[{number}/{len(queue)}] {entry.source_name}  {entry.doc_type}  {entry.document_id[:12]}"
            )
            if not self.review_document(entry.document_id) or self.summary.quit:
                break
        self.say()
        summary = self.summary
        self.say(
            f"corrected {summary.corrected}, accepted {summary.accepted}, skipped {summary.skipped}; "
            f"{len(review_queue(self.store))} invoice(s) still need review"
        )
        return summary

    def review_document(self, document_id: str) -> bool:
        """Returns False when the clerk quits."""
        skipped: set[str] = set()
        while True:
            try:
                result = self.store.load_result(document_id)
            except NotFound:
                self.say("  (no longer in the store)")
                return True
            ledger = ledger_values(self.store, document_id)
            pending = [f for f in fields_to_review(result, ledger) if f.name not in skipped]
            if not pending:
                return True
            item = pending[0]
            self.show(document_id, item)
            while True:
                answer = self.ask()
                if answer is None or answer.strip() == "q":
                    self.summary.quit = True
                    return False
                command = answer.strip()
                if command == "s":
                    skipped.add(item.name)
                    self.summary.skipped += 1
                    break
                if command == "n":
                    self.summary.skipped += len(pending)
                    return True
                if command == "?":
                    self.say("  " + HELP)
                    continue
                text = command[1:].strip() if command.startswith("=") else command
                try:
                    updated = apply_correction(
                        self.store,
                        document_id,
                        item.name,
                        text,
                        self.reviewer,
                        accept=not text,
                        review_below=self.review_below,
                    )
                except ReviewInputError as exc:
                    self.summary.refused += 1
                    self.say(f"  refused: {exc}")
                    continue
                now = display_value(updated.fields[item.name].value)
                if now == item.value:
                    self.summary.accepted += 1
                    self.say(f"  accepted {item.name} = {item.value or '(missing)'}")
                else:
                    self.summary.corrected += 1
                    self.say(f"  corrected {item.name}: {item.value or '(missing)'} -> {now}")
                break

    def show(self, document_id: str, item: FieldReview) -> None:
        self.say(f"  {item.label}  [{item.name}]")
        self.say(
            f"    value:   {item.value or '(missing)'}   ({item.source}, confidence {item.confidence:.2f})"
        )
        for reason in item.reasons:
            self.say(f"    why:     {reason}")
        if item.qr_value is not None:
            self.say(f"    QR code: {item.qr_value}")
        if item.ledger_value is not None:
            self.say(f"    ledger:  {item.ledger_value}")
        self.say(f"    format:  {item.hint}")
        if item.box is None:
            self.say("    crop:    (no box on the page)")
            return
        path = self.folder / f"{document_id[:12]}-{item.name}.png"
        try:
            path.write_bytes(crop_png(self.store, document_id, item.box, self.pages))
        except (PipelineError, OSError) as exc:
            self.say(f"    crop:    (unavailable: {exc})")
            return
        self.say(f"    crop:    {path}")
