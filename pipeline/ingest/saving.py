"""The parent writes each worker result into the store: on saver threads or on the caller's thread."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from pipeline.errors import StorageError
from pipeline.ingest.outcomes import Outcome, State
from pipeline.ingest.worker import WorkResult
from pipeline.model import InvoiceResult
from pipeline.store import Store
from pipeline.store.invoices import same_invoice_note

log = logging.getLogger(__name__)

# Saver threads per run: enough to overlap the store's fsyncs (local disk) or round trips (S3).
SAVE_THREADS = 4


class _Savers:
    """Threads that write results, each with its own ``Store`` (an SQLite connection is per thread)."""

    def __init__(self, open_store: Callable[[], Store], count: int) -> None:
        self._open_store = open_store
        self._queue: queue.Queue[tuple[Future[Outcome], WorkResult, bytes, str] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._run, name=f"saver-{n}", daemon=True) for n in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, result: WorkResult, data: bytes, name: str) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        self._queue.put((future, result, data, name))
        return future

    def _run(self) -> None:
        store: Store | None = None
        try:
            while (item := self._queue.get()) is not None:
                future, result, data, name = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    if store is None:
                        store = self._open_store()
                    future.set_result(save_result(result, data, name, store))
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            if store is not None:
                store.close()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()


class _InlineSaver:
    """Writes each result at once, on the caller's thread, with the caller's store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def submit(self, result: WorkResult, data: bytes, name: str) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        try:
            future.set_result(save_result(result, data, name, self._store))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def close(self) -> None:
        pass


def save_result(result: WorkResult, data: bytes, name: str, store: Store) -> Outcome:
    """Store one worker result (or its failure record); a storage error fails only this document."""
    common = {
        "seconds": result.seconds,
        "worker": result.worker,
        "worker_peak_mb": result.worker_peak_mb,
        "cpu_seconds": result.cpu_seconds,
    }
    # A cluster worker could not store it:
    if result.result_json is None and result.error_type == "StorageError":
        return Outcome(
            result.path,
            State.FAILED,
            result.document_id,
            message=f"StorageError: not stored, retried on the next run: {result.error}",
            error_type="StorageError",
            **common,
        )
    if result.result_json is None:
        try:
            store.save_failure(result.document_id, name, result.error_type, result.error)
        except StorageError as exc:
            log.warning("could not record the failure of %s: %s", result.path, exc)
        return Outcome(
            result.path,
            State.FAILED,
            result.document_id,
            message=f"{result.error_type}: {result.error}",
            error_type=result.error_type,
            **common,
        )
    invoice = result.invoice()
    store_started = time.thread_time()  # this saving thread only: others save meanwhile
    try:
        if result.written is not None:
            store.index_written(invoice, result.written)
            created = result.written.created
        else:
            created = store.save(data, name, invoice, result.page_pngs, body=result.result_json)
    except StorageError as exc:
        return Outcome(
            result.path,
            State.FAILED,
            invoice.document_id,
            message=f"StorageError: not stored, retried on the next run: {exc}",
            error_type="StorageError",
            **common,
        )
    return Outcome(
        result.path,
        State.STORED if created else State.ALREADY_STORED,
        invoice.document_id,
        status=str(invoice.status),
        doc_type=str(invoice.doc_type),
        pages=len(invoice.pages),
        message="" if created else "already stored (saved by another process meanwhile)",
        ocr_seconds=tuple(page.seconds for page in invoice.pages if page.text_source == "ocr"),
        same_invoice=_same_invoice(store, invoice) if created else "",
        stages={**result.stages, "store": time.thread_time() - store_started},
        **common,
    )


def _same_invoice(store: Store, invoice: InvoiceResult) -> str:
    """Other files of the same invoice (its OFD and its PDF…): said, never a failure of this one."""
    try:
        return same_invoice_note(
            store.index,
            invoice.document_id,
            invoice.source_name,
            invoice.value("invoice_code"),
            invoice.value("invoice_number"),
        )
    except (StorageError, sqlite3.Error) as exc:
        log.warning("could not look up other files of %s: %s", invoice.source_name, exc)
        return ""
