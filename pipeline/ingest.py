"""Driver: documents through ``process_document`` on every core, into the store.

Workers only compute (bytes + settings -> result) in separate processes; the parent owns
the store, so a crash of one document never leaves a half-written record. ``Runner`` is
the engine shared by ``invoices ingest`` (``run_batch``) and the hot folder
(``pipeline.watch``):

* each document is read and hashed in the parent; one already in the store is never
  sent to a worker (storage is content-addressed, so a re-run does only what is missing);
* a file whose content is already in flight under another name waits for that one and
  shares its outcome (no document is processed twice in one run);
* results are written by a few saver threads, each with its own store connection, so the
  store's fsyncs overlap with each other and with the OCR;
* a storage failure is the failure of that document (reported, not stored, redone by the
  next run), not of the batch;
* a worker process that dies (a native crash, the out-of-memory killer) takes only its own
  document down: the documents that were in flight are retried one at a time, and the one
  that kills its worker again is failed with that reason.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import logging.handlers
import os
import queue
import resource
import signal
import sqlite3
import stat
import threading
import time
import zipfile
from collections import deque
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import InputError, OcrEngineError, PipelineError, StorageError, TooLarge
from pipeline.lifeline import die_with_parent
from pipeline.load import SUPPORTED_EXTENSIONS, sniff_format
from pipeline.load.bundles import expand_bundle
from pipeline.model import InvoiceResult
from pipeline.process import content_id, process_document
from pipeline.store import Store, Written, result_body
from pipeline.store.invoices import same_invoice_note

if TYPE_CHECKING:
    from pipeline.cluster import ClusterExecutor

log = logging.getLogger(__name__)

# Saver threads per run: enough to overlap the store's fsyncs (local disk) or round trips (S3).
SAVE_THREADS = 4


class FileRefused(InputError):
    """A directory entry that is not taken on purpose: a symbolic link, a device, a FIFO."""


class FileUnreadable(InputError):
    """The file could not be read (permissions, I/O error, vanished)."""


class State(StrEnum):
    STORED = "stored"
    ALREADY_STORED = "already_stored"
    FAILED = "failed"
    SKIPPED = "skipped"  # a bundle member that is not a document (a text file): named with its reason


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
    error_type: str = ""
    # True when the document was found in the store before any work: not part of the batch's rate.
    skipped: bool = False
    worker: int = 0
    worker_peak_mb: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the worker process on this document
    ocr_seconds: tuple[float, ...] = ()  # seconds of each page that was OCRed (metrics)
    same_invoice: str = ""  # other files of this invoice already stored (pipeline.store.invoices)
    stages: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage (process.STAGES, store)


@dataclass
class WorkResult:
    """What a worker sends back: the result and page images, or the error."""

    path: str
    document_id: str
    # result.json's bytes (``store.result_body``), serialised once, here: the saver parses them
    # for the index and writes them as they are, instead of rebuilding and re-encoding the result.
    result_json: bytes | None
    page_pngs: list[tuple[int, bytes]]
    error_type: str = ""
    error: str = ""
    seconds: float = 0.0
    worker: int = 0
    worker_peak_mb: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the worker process on this document
    # Set by a cluster worker that wrote the pages and result.json itself: the client only indexes.
    written: Written | None = None
    stages: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage (process.STAGES)

    def invoice(self) -> InvoiceResult:
        """The result the worker sent (``result_json`` is set: not an error)."""
        assert self.result_json is not None
        return InvoiceResult.from_dict(json.loads(self.result_json))


@dataclass
class Job:
    """One document to process: its bytes, where they came from and the caller's handle."""

    path: Path
    data: bytes
    name: str
    document_id: str = ""
    tag: Any = None
    followers: list[Job] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.document_id:
            self.document_id = content_id(self.data)


def source_name(path: Path) -> str:
    """The file name as text that can be stored: undecodable bytes become U+FFFD."""
    return os.fsencode(path.name).decode("utf-8", "replace")


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Files to ingest, and files in folders that are skipped because of their type.

    A file named on the command line is always tried (its content decides its type);
    inside folders only supported extensions are taken, hidden files and folders never.
    Symbolic links found inside folders are listed (not followed): ``run_batch`` refuses them
    with their target as the reason, unless they are named in its ``follow``.
    """
    chosen: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if not path.is_dir():
            chosen.append(path)
            continue
        for folder, dirs, names in os.walk(path, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                candidate = Path(folder) / name
                if name.startswith("."):
                    continue
                if candidate.suffix.lower() in SUPPORTED_EXTENSIONS:
                    chosen.append(candidate)
                else:
                    skipped.append(candidate)
    return chosen, skipped


@dataclass
class Refused:
    """A bundle member that is not processed: refused (failed) or not a document (skipped)."""

    path: Path
    name: str
    error: InputError
    skipped: bool = False


def bundle_members(
    path: Path, data: bytes, settings: Settings, tag: Any = None
) -> list[Job | Refused] | None:
    """The documents of a ZIP bundle as jobs (``bundle.zip!inner/path``), or None for any other file.

    A bundle that cannot be opened is one refusal; a refused member does not stop the others.
    """
    try:
        if sniff_format(data) != "zip":
            return None
    except InputError:
        return None
    if path.suffix.lower() != ".zip" and not zipfile.is_zipfile(io.BytesIO(data)):
        return None  # a damaged ZIP named otherwise (a .docx): one document, refused with its format
    name = source_name(path)
    try:
        members = expand_bundle(data, name, settings)
    except InputError as exc:
        return [Refused(path, name, exc)]
    out: list[Job | Refused] = []
    for member in members:
        member_path = Path(f"{path}!{member.name.split('!', 1)[1]}")
        if member.error is not None:
            out.append(Refused(member_path, member.name, member.error, member.skipped))
        else:
            out.append(Job(member_path, member.data, member.name, tag=tag))
    if not out:
        out.append(Refused(path, name, InputError("the ZIP file holds no files"), skipped=True))
    return out


def read_input(path: Path, max_bytes: int, follow_symlinks: bool = False) -> bytes:
    """A regular file's bytes; raise ``InputError`` for links, special files, oversize and I/O errors.

    The file is opened without following a symbolic link (``O_NOFOLLOW``) and checked with
    ``fstat`` on the open descriptor, so what is checked is what is read.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (not follow_symlinks and path.is_symlink()):
            raise FileRefused(symlink_reason(path)) from exc
        raise FileUnreadable(f"cannot read the file: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("not a regular file (a device, FIFO, socket or folder): refused")
        if info.st_size > max_bytes:
            raise TooLarge(f"file is {info.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise TooLarge(f"file grew over the {max_bytes / 1e6:.0f} MB limit while being read")
        return data
    except OSError as exc:
        raise FileUnreadable(f"cannot read the file: {exc.strerror}") from exc
    finally:
        os.close(fd)


def symlink_reason(path: Path, folder: Path | None = None) -> str:
    """Why a symbolic link is refused, naming where it points."""
    try:
        target = str(path.readlink())
    except OSError:
        target = "?"
    resolved = Path(os.path.realpath(path))
    where = folder if folder is not None else path.parent
    outside = not resolved.is_relative_to(os.path.realpath(where))
    return (
        f"symbolic link to {target!s}"
        + (" (outside the folder)" if outside else "")
        + ": refused, links are not followed (put the file itself here)"
    )


# ---- the worker side ------------------------------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def work(path: str, data: bytes, name: str, settings: Settings) -> WorkResult:
    """Process one file's bytes; never raises for bad input (it becomes an error result)."""
    started = time.perf_counter()
    cpu_started = time.process_time()
    document_id = content_id(data)

    def failed(error_type: str, message: str) -> WorkResult:
        return WorkResult(
            path,
            document_id,
            None,
            [],
            error_type,
            message,
            time.perf_counter() - started,
            os.getpid(),
            _peak_mb(),
            time.process_time() - cpu_started,
        )

    try:
        processed = process_document(data, name, settings)
    except InputError as exc:
        return failed(type(exc).__name__, str(exc))
    except OcrEngineError as exc:
        if not _engine_loads(settings):
            raise  # the engine itself is broken: nothing can be processed
        return failed(type(exc).__name__, str(exc))
    except PipelineError:
        raise
    except Exception as exc:  # a bug or a library crash on one file must not stop the batch
        log.exception("unexpected error on %s", path, extra={"path": path, "document": document_id})
        return failed(type(exc).__name__, f"internal error: {exc}")
    pngs = [(page.index, page.png) for page in processed.page_images]
    return WorkResult(
        path,
        document_id,
        result_body(processed.result),
        pngs,
        seconds=processed.seconds,
        worker=os.getpid(),
        worker_peak_mb=_peak_mb(),
        cpu_seconds=time.process_time() - cpu_started,
        stages=processed.stages,
    )


def _engine_loads(settings: Settings) -> bool:
    from pipeline.ocr import get_engine

    try:
        get_engine(settings)
    except PipelineError:
        return False
    return True


def _worker_init(log_queue: Any, level: int, preload: Settings | None, parent_pid: int) -> None:
    # A parent killed with SIGKILL cannot stop its workers: they stop themselves (pipeline.lifeline).
    die_with_parent(parent_pid)
    # The parent decides when to stop: Ctrl-C and SIGTERM (sent to the whole process group by a
    # terminal or systemd) must not kill a worker in the middle of a document.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    root.setLevel(level)
    if preload is not None:
        from pipeline.ocr import get_engine

        get_engine(preload)


def _probe() -> int:
    time.sleep(0.1)  # long enough for the other probes to go to other workers
    return os.getpid()


class _Listener(logging.handlers.QueueListener):
    """A queue listener whose ``stop`` cannot hang on a queue a killed worker left half-written."""

    def stop(self) -> None:
        if self._thread is not None:  # type: ignore[has-type]
            self.enqueue_sentinel()
            self._thread.join(timeout=5)  # type: ignore[has-type]
            self._thread = None


class _Relay:
    """Hands a worker's log record to the parent's logger of the same name (and its handlers)."""

    level = logging.NOTSET

    def handle(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


class _InlineExecutor(Executor):
    """Runs each job at once in this process (one worker: no process start, no isolation)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


# ---- the parent side ------------------------------------------------------------------


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


class Runner:
    """Jobs through worker processes, results into the store; outcomes come back as they finish.

    Use ``submit`` while ``has_room()``, and collect ``(job, outcome)`` pairs with ``results``.
    ``PipelineError``s that are not about one document (a missing dependency) propagate from
    ``results``: the run cannot go on.

    ``store`` is used on the caller's thread (``is_stored``). With ``store_factory`` (a function
    opening another connection to the same store), results are written by ``SAVE_THREADS``
    threads with a store each; without it, on the caller's thread as they arrive.

    One worker runs in this process, unless ``isolate``: then in a worker process too, so that a
    document that crashes its process takes only itself down (what a daemon wants). With
    ``cluster`` (``pipeline.cluster.ClusterExecutor``) the documents run on Dask workers instead,
    as many at a time as the cluster has threads; the rest is the same.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        workers: int,
        store_factory: Callable[[], Store] | None = None,
        isolate: bool = False,
        cluster: ClusterExecutor | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.cluster = cluster
        self.workers = max(1, cluster.workers if cluster is not None else workers)
        self.isolate = isolate
        self._executor: Executor | None = None
        self._log_queue: Any = None
        self._log_listener: _Listener | None = None
        self._waiting: deque[Job] = deque()
        self._suspects: deque[Job] = deque()
        self._isolated: Job | None = None
        self._computing: dict[Future[WorkResult], Job] = {}
        self._saving: dict[Future[Outcome], Job] = {}
        self._ready: deque[tuple[Job, Outcome]] = deque()
        self._leaders: dict[str, Job] = {}
        self._preload: Settings | None = None
        self._savers: _Savers | _InlineSaver = (
            _InlineSaver(store) if store_factory is None else _Savers(store_factory, SAVE_THREADS)
        )

    # -- feeding

    def start(self, preload_ocr: bool = False) -> None:
        """Start every worker now and return once each is ready; with ``preload_ocr``, once each has
        loaded its OCR engine (seconds): the first documents, or a measurement, do not pay for it."""
        if self.cluster is not None:
            return
        if preload_ocr:
            self._preload = self.settings
        executor = self._ensure_executor()
        if preload_ocr and isinstance(executor, _InlineExecutor):
            from pipeline.ocr import get_engine

            get_engine(self.settings)
        if not isinstance(executor, ProcessPoolExecutor):
            return
        seen: set[int] = set()
        while len(seen) < self.workers:
            seen.update(f.result() for f in [executor.submit(_probe) for _ in range(self.workers)])

    def has_room(self) -> bool:
        """Whether another job may be submitted now (bounds the bytes held in memory)."""
        held = len(self._waiting) + len(self._suspects) + len(self._computing) + len(self._saving)
        return held < 2 * self.workers + SAVE_THREADS

    def idle(self) -> bool:
        return not (
            self._waiting
            or self._suspects
            or self._computing
            or self._saving
            or self._ready
            or self._isolated
        )

    def submit(self, job: Job) -> None:
        leader = self._leaders.get(job.document_id)
        if leader is not None:
            leader.followers.append(job)
            return
        if self.store.is_stored(job.document_id):
            outcome = Outcome(
                str(job.path),
                State.ALREADY_STORED,
                job.document_id,
                message="already in the store",
                skipped=True,
            )
            self._ready.append((job, outcome))
            return
        self._leaders[job.document_id] = job
        self._waiting.append(job)
        self._pump()

    def fail(self, job: Job, error: InputError, skipped: bool = False) -> None:
        """Report a job that could not even be read as failed (no worker involved); ``skipped`` for a
        bundle member that is no document (named with its reason, not a failure)."""
        outcome = Outcome(
            str(job.path),
            State.SKIPPED if skipped else State.FAILED,
            message=str(error) if skipped else f"{type(error).__name__}: {error}",
            error_type=type(error).__name__,
        )
        self._ready.append((job, outcome))

    # -- collecting

    def results(self, timeout: float | None = None) -> list[tuple[Job, Outcome]]:
        """Finished jobs; waits up to ``timeout`` seconds (None: until one finishes) when none is."""
        if not self._ready and (self._computing or self._saving):
            done, _ = wait([*self._computing, *self._saving], timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                # A future may have left both tables meanwhile (its pool broke under another one).
                if future in self._computing:
                    self._computed(future)  # type: ignore[arg-type]
                elif future in self._saving:
                    self._saved(future)  # type: ignore[arg-type]
            self._pump()
        finished = list(self._ready)
        self._ready.clear()
        return finished

    def _computed(self, future: Future[WorkResult]) -> None:
        job = self._computing.pop(future)
        try:
            result = future.result()
        except BrokenProcessPool:
            self._broken(job)
            return
        if self._isolated is job:
            self._isolated = None
        saving = self._savers.submit(result, job.data, job.name)
        self._saving[saving] = job

    def _broken(self, job: Job) -> None:
        """A worker died: the pool is gone with every document in it."""
        self._shutdown_executor(kill=True)
        if self._isolated is job:
            # It ran alone and killed its worker again: this document is the cause. Recorded as a
            # failure like any other (through the savers, so the store sees it too).
            self._isolated = None
            crashed = WorkResult(
                str(job.path),
                job.document_id,
                None,
                [],
                "WorkerCrashed",
                "the worker process died while processing this file (a crash in a native library, "
                "or out of memory)",
            )
            self._saving[self._savers.submit(crashed, job.data, job.name)] = job
            return
        log.warning(
            "a worker process died; retrying its documents one at a time", extra={"path": str(job.path)}
        )
        self._suspects.append(job)
        for other, other_job in list(self._computing.items()):
            if other.done() and not other.cancelled() and other.exception() is None:
                continue  # finished before the pool broke: its result stands
            del self._computing[other]
            self._suspects.append(other_job)

    def _saved(self, future: Future[Outcome]) -> None:
        job = self._saving.pop(future)
        try:
            outcome = future.result()
        except Exception as exc:  # save_result turns StorageError into a failure; this is anything else
            log.exception("could not store %s", job.path, extra={"path": str(job.path)})
            outcome = Outcome(
                str(job.path),
                State.FAILED,
                job.document_id,
                message=f"{type(exc).__name__}: not stored, retried on the next run: {exc}",
                error_type=type(exc).__name__,
            )
        self._finish(job, outcome)

    def _finish(self, job: Job, outcome: Outcome) -> None:
        self._leaders.pop(job.document_id, None)
        self._ready.append((job, outcome))
        for follower in job.followers:
            if outcome.state == State.FAILED:
                shared = Outcome(
                    str(follower.path),
                    State.FAILED,
                    job.document_id,
                    message=outcome.message,
                    error_type=outcome.error_type,
                )
            else:
                shared = Outcome(
                    str(follower.path),
                    State.ALREADY_STORED,
                    job.document_id,
                    status=outcome.status,
                    doc_type=outcome.doc_type,
                    message=f"same content as {job.path.name}",
                )
            self._ready.append((follower, shared))
        job.followers = []

    # -- the pool

    def _pump(self) -> None:
        """Start waiting jobs: normally up to two per worker; one at a time after a worker died."""
        if self._suspects:
            if self._computing or self._isolated is not None:
                return
            job = self._suspects.popleft()
            self._isolated = job
            self._start(job)
            return
        while self._waiting and len(self._computing) < 2 * self.workers:
            self._start(self._waiting.popleft())

    def _start(self, job: Job) -> None:
        if self.cluster is not None:
            self._computing[self.cluster.submit(job, self.settings)] = job
            return
        try:
            future = self._ensure_executor().submit(work, str(job.path), job.data, job.name, self.settings)
        except BrokenProcessPool:  # a worker died while idle (the OOM killer): start a new pool
            log.warning("a worker process died while idle; starting new workers")
            self._shutdown_executor(kill=True)
            future = self._ensure_executor().submit(work, str(job.path), job.data, job.name, self.settings)
        self._computing[future] = job

    def _ensure_executor(self) -> Executor:
        if self._executor is None:
            if self.workers == 1 and not self.isolate:
                self._executor = _InlineExecutor()
            else:
                context = get_context("spawn")
                if self._log_queue is None:
                    self._log_queue = context.Queue()
                    self._log_listener = _Listener(self._log_queue, _Relay())  # type: ignore[arg-type]
                    self._log_listener.start()
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=context,
                    initializer=_worker_init,
                    initargs=(
                        self._log_queue,
                        logging.getLogger().getEffectiveLevel(),
                        self._preload,
                        os.getpid(),
                    ),
                )
        return self._executor

    def _shutdown_executor(self, kill: bool) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill and isinstance(executor, ProcessPoolExecutor):
            # Workers ignore SIGTERM (see _worker_init); stop them for good.
            processes = list(getattr(executor, "_processes", {}).values())
            for process in processes:
                with contextlib.suppress(Exception):
                    process.kill()
            # A worker killed while it sent a result leaves half a message in the result pipe, and the
            # pool's manager thread would wait for the rest for ever (shutdown joins it: a Ctrl-C under
            # load hung so). Once the workers are dead, closing this process's unused write end of that
            # pipe ends the read instead (end of file: the pool counts as broken and stops).
            for process in processes:
                with contextlib.suppress(Exception):
                    process.join(timeout=10)
            result_queue = getattr(executor, "_result_queue", None)
            if result_queue is not None:
                with contextlib.suppress(Exception):
                    result_queue._writer.close()
            # The pool's feeder thread may be blocked writing a queued document's bytes into the pipe
            # the killed workers no longer read: shutdown would wait on that thread for ever (a batch
            # interrupted with Ctrl-C under load hung this way). The queued documents are dropped anyway.
            call_queue = getattr(executor, "_call_queue", None)
            if call_queue is not None:
                with contextlib.suppress(Exception):
                    call_queue.cancel_join_thread()
        executor.shutdown(wait=True, cancel_futures=True)
        if kill:
            # A worker killed in the middle of a log call can leave the queue's lock taken: the next
            # workers get a new queue.
            self._stop_log_listener()

    def _stop_log_listener(self) -> None:
        if self._log_listener is not None:
            self._log_listener.stop()
            self._log_listener = None
        if self._log_queue is not None:
            self._log_queue.cancel_join_thread()  # never wait at exit on a queue a dead worker locked
            self._log_queue = None

    def close(self, abort: bool = False) -> None:
        """Stop the workers and savers. With ``abort``, documents in flight are dropped (not lost:
        they are not stored, so the next run does them); saves already started finish."""
        if abort:
            self._waiting.clear()
            self._suspects.clear()
            if self.cluster is not None:
                self.cluster.cancel_pending()
        self._shutdown_executor(kill=abort)
        self._savers.close()
        self._stop_log_listener()


def run_batch(
    files: list[Path],
    settings: Settings,
    store: Store,
    workers: int,
    on_done: Callable[[Outcome], None] | None = None,
    follow: Collection[Path] = (),
    store_factory: Callable[[], Store] | None = None,
    cluster: ClusterExecutor | None = None,
) -> list[Outcome]:
    """Ingest ``files``; documents already in the store are skipped without OCR.

    Every file is hashed first, so the documents already stored are reported (``skipped``)
    before any work starts and a progress display can leave them out of its rate and ETA.
    Symbolic links are refused unless they are in ``follow`` (the paths a user named).
    ``store_factory`` opens more connections to ``store`` for the saver threads (see ``Runner``).
    ``cluster`` runs the documents on Dask workers (``pipeline.cluster``) instead of local processes.
    """
    outcomes: list[Outcome] = []

    def report(outcome: Outcome) -> None:
        outcomes.append(outcome)
        log.debug("%s: %s %s", outcome.state, outcome.path, outcome.message, extra=_extra(outcome))
        if on_done is not None:
            on_done(outcome)

    todo: list[Path] = []
    for path in files:
        try:
            data = read_input(path, settings.max_file_bytes, follow_symlinks=path in follow)
        except InputError as exc:
            report(
                Outcome(
                    str(path),
                    State.FAILED,
                    message=f"{type(exc).__name__}: {exc}",
                    error_type=type(exc).__name__,
                )
            )
            continue
        document_id = content_id(data)
        if store.is_stored(document_id):
            report(
                Outcome(
                    str(path), State.ALREADY_STORED, document_id, message="already in the store", skipped=True
                )
            )
        else:
            todo.append(path)

    runner = Runner(settings, store, workers, store_factory, cluster=cluster)
    aborted = True
    try:
        feed(runner, todo, report, follow)
        aborted = False
    finally:
        runner.close(abort=aborted)
    return outcomes


def feed(
    runner: Runner, paths: Iterable[Path], report: Callable[[Outcome], None], follow: Collection[Path] = ()
) -> None:
    """Read each file as the runner has room for it, submit it, and report every outcome."""
    pending = deque(paths)
    max_bytes = runner.settings.max_file_bytes
    while pending or not runner.idle():
        while pending and runner.has_room():
            path = pending.popleft()
            try:
                data = read_input(path, max_bytes, follow_symlinks=path in follow)
            except InputError as exc:
                runner.fail(Job(path, b"", source_name(path), document_id="-"), exc)
                continue
            members = bundle_members(path, data, runner.settings)
            if members is None:
                runner.submit(Job(path, data, source_name(path)))
                continue
            for member in members:  # a ZIP bundle: each document inside is a job of its own
                if isinstance(member, Refused):
                    runner.fail(
                        Job(member.path, b"", member.name, document_id="-"), member.error, member.skipped
                    )
                else:
                    runner.submit(member)
        for _, outcome in runner.results():
            report(outcome)


def _extra(outcome: Outcome) -> dict[str, str]:
    extra = {"path": outcome.path}
    if outcome.document_id:
        extra["document"] = outcome.document_id
    return extra
