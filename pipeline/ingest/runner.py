"""The engine: jobs through worker processes (or a Dask cluster), results into the store.

``Runner`` is shared by ``invoices ingest`` (``run_batch``, ``feed``) and the hot folder
(``pipeline.watch``); see the package docstring for what it guarantees.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import connection, get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import InputError
from pipeline.ingest.inputs import Job, Refused, bundle_members, read_input, source_name
from pipeline.ingest.outcomes import Outcome, State
from pipeline.ingest.saving import SAVE_THREADS, _InlineSaver, _Savers
from pipeline.ingest.worker import WorkResult, _Listener, _probe, _Relay, _worker_init, work
from pipeline.process import content_id
from pipeline.store import Store

if TYPE_CHECKING:
    from pipeline.cluster import ClusterExecutor

log = logging.getLogger(__name__)

# How often a wait for results also checks that every worker process is alive (see _wait_for_one).
WORKER_CHECK_SECONDS = 1.0


class _InlineExecutor(Executor):
    """Runs each job at once in this process (one worker: no process start, no isolation)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


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
            done = self._wait_for_one(timeout)
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

    def _wait_for_one(self, timeout: float | None) -> set[Future[Any]]:
        """Wait until a job finishes computing or saving (at most ``timeout`` seconds), watching the
        workers meanwhile.

        A worker killed while it sends its result (SIGKILL, the OOM killer) leaves half a message in
        the result pipe: the pool's manager thread then waits for the rest for ever and never marks
        the pool broken, so no future would finish and the batch would hang. A dead worker found
        here is handled as the broken pool it is.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = WORKER_CHECK_SECONDS
            if deadline is not None:
                step = max(0.0, min(step, deadline - time.monotonic()))
            done, _ = wait([*self._computing, *self._saving], timeout=step, return_when=FIRST_COMPLETED)
            if done:
                return done
            if self._lost_a_worker():
                self._worker_lost()
                return set()
            if deadline is not None and time.monotonic() >= deadline:
                return set()

    def _lost_a_worker(self) -> bool:
        """Whether a process of the current pool has ended (workers only end when the pool stops)."""
        executor = self._executor
        if not isinstance(executor, ProcessPoolExecutor):
            return False
        sentinels = []
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            with contextlib.suppress(ValueError):  # a process object already closed
                sentinels.append(process.sentinel)
        return bool(sentinels) and bool(connection.wait(sentinels, timeout=0))

    def _worker_lost(self) -> None:
        """A worker died without the pool noticing: the same as a broken pool (``_broken``)."""
        running = [future for future in self._computing if not future.done()]
        if not running:
            self._shutdown_executor(kill=True)  # nothing in flight: the next job gets a new pool
            return
        isolated = [future for future in running if self._computing[future] is self._isolated]
        future = (isolated or running)[0]
        self._broken(self._computing.pop(future))

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
