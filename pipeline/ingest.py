"""Driver: a batch of files through ``process_document`` on every core, into the store.

Workers only compute (bytes + settings -> result); the parent process owns the store,
so a crash of one document never leaves a half-written record.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing import get_context
from pathlib import Path

from pipeline.config import Settings
from pipeline.errors import InputError, PipelineError
from pipeline.load import SUPPORTED_EXTENSIONS
from pipeline.model import InvoiceResult
from pipeline.process import content_id, process_document
from pipeline.store import Store

log = logging.getLogger(__name__)


class State(StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already_stored"
    FAILED = "failed"


@dataclass
class Outcome:
    path: str
    state: State
    document_id: str = ""
    status: str = ""
    doc_type: str = ""
    message: str = ""
    pages: int = 0
    seconds: float = 0.0


@dataclass
class WorkResult:
    """What a worker sends back: the result and page images, or the error."""

    path: str
    document_id: str
    result: dict | None
    page_pngs: list[tuple[int, bytes]]
    error_type: str = ""
    error: str = ""
    seconds: float = 0.0


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Files to ingest, and files in folders that are skipped because of their type.

    A file named on the command line is always tried (its content decides its type);
    inside folders only supported extensions are taken, hidden files never.
    """
    chosen: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if not candidate.is_file() or any(part.startswith(".") for part in candidate.parts[-1:]):
                    continue
                if candidate.suffix.lower() in SUPPORTED_EXTENSIONS:
                    chosen.append(candidate)
                else:
                    skipped.append(candidate)
        else:
            chosen.append(path)
    return chosen, skipped


def work(path: str, data: bytes, settings: Settings) -> WorkResult:
    """Process one file's bytes; never raises for bad input (it becomes an error result)."""
    started = time.perf_counter()
    document_id = content_id(data)
    try:
        processed = process_document(data, Path(path).name, settings)
    except InputError as exc:
        return WorkResult(
            path, document_id, None, [], type(exc).__name__, str(exc), time.perf_counter() - started
        )
    except PipelineError:
        raise
    except Exception as exc:  # a bug or a library crash on one file must not stop the batch
        log.exception("unexpected error on %s", path)
        return WorkResult(
            path,
            document_id,
            None,
            [],
            type(exc).__name__,
            f"internal error: {exc}",
            time.perf_counter() - started,
        )
    pngs = [(page.index, page.png) for page in processed.page_images]
    return WorkResult(path, document_id, processed.result.to_dict(), pngs, seconds=processed.seconds)


def _worker_init() -> None:
    # Each worker uses one core; the parent decides how many workers run.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def run_batch(
    files: list[Path],
    settings: Settings,
    store: Store,
    workers: int,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Ingest ``files``; documents already in the store are skipped without OCR."""
    outcomes: list[Outcome] = []
    pending: list[tuple[Path, bytes, str]] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            outcome = Outcome(str(path), State.FAILED, message=f"cannot read file: {exc.strerror}")
            _report(outcome, outcomes, on_done)
            continue
        document_id = content_id(data)
        if store.is_stored(document_id):
            _report(Outcome(str(path), State.ALREADY_STORED, document_id), outcomes, on_done)
            continue
        pending.append((path, data, document_id))

    data_by_path = {str(path): data for path, data, _ in pending}
    for result in _run(pending, settings, workers):
        _report(_save(result, data_by_path.pop(result.path), store), outcomes, on_done)
    return outcomes


def _run(pending: list[tuple[Path, bytes, str]], settings: Settings, workers: int) -> Iterator[WorkResult]:
    if not pending:
        return
    if workers <= 1 or len(pending) == 1:
        for path, data, _ in pending:
            yield work(str(path), data, settings)
        return
    per_worker = settings.model_copy(update={"threads_per_worker": 1})
    with ProcessPoolExecutor(
        max_workers=min(workers, len(pending)), mp_context=get_context("spawn"), initializer=_worker_init
    ) as pool:
        # Keep a bounded number of documents in flight so memory stays flat on big batches.
        queue = iter(pending)
        running: set[Future[WorkResult]] = set()
        for path, data, _ in queue:
            running.add(pool.submit(work, str(path), data, per_worker))
            if len(running) >= 2 * workers:
                break
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
                following = next(queue, None)
                if following is not None:
                    running.add(pool.submit(work, str(following[0]), following[1], per_worker))


def _save(result: WorkResult, data: bytes, store: Store) -> Outcome:
    if result.result is None:
        store.save_failure(result.document_id, Path(result.path).name, result.error_type, result.error)
        return Outcome(
            result.path,
            State.FAILED,
            result.document_id,
            message=f"{result.error_type}: {result.error}",
            seconds=result.seconds,
        )
    invoice = InvoiceResult.from_dict(result.result)
    created = store.save(data, Path(result.path).name, invoice, result.page_pngs)
    return Outcome(
        result.path,
        State.STORED if created else State.ALREADY_STORED,
        invoice.document_id,
        status=str(invoice.status),
        doc_type=str(invoice.doc_type),
        pages=len(invoice.pages),
        seconds=result.seconds,
    )


def _report(outcome: Outcome, outcomes: list[Outcome], on_done: Callable[[Outcome], None] | None) -> None:
    outcomes.append(outcome)
    if on_done is not None:
        on_done(outcome)
