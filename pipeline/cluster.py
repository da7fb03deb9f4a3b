"""Driver: ``process_document`` on Dask distributed workers, behind the executor seam of ``ingest``.

``invoices ingest --cluster tcp://SCHEDULER:8786`` (an existing cluster) or ``--cluster local:N``
(a ``LocalCluster`` of N worker processes with one thread each, on 127.0.0.1). The client keeps
everything that is not computing:

* it reads and hashes each file, skips what the store holds, and uploads each original to the
  store once (create-only, content-addressed); the task carries only the document id, settings
  and name, so no large file passes through the scheduler;
* a worker fetches the original by key, runs ``ingest.work`` (``process_document``), writes the
  page images and then result.json (create-only: the commit point) to the store itself, and sends
  back the result without the images;
* the client indexes each result (one index, SQLite or PostgreSQL, written from one place), and
  reports progress, failures and exit codes as a local run does.

A worker that dies mid-task is Dask's to handle: the scheduler reruns the task on another worker
(a document that kills three workers is failed as ``WorkerCrashed``). Storage is create-only, so a
rerun, or two clients ingesting the same files, stores each document exactly once. Losing the
scheduler stops the run with ``ClusterError``; the documents already stored are kept, so running
the same command again finishes the rest.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import socket
import threading
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit

from pipeline.config import Settings
from pipeline.errors import ClusterError, ConfigError, MissingDependency, PipelineError, StorageError
from pipeline.ingest import Job, WorkResult, work
from pipeline.lifeline import die_with_parent
from pipeline.store import Store, is_s3_location, open_objects, put_original, write_document
from pipeline.store.objects import ObjectStore, original_key

log = logging.getLogger(__name__)

LOCAL = re.compile(r"^local(?::(\d+))?$")
CONNECT_SECONDS = 20.0


def parse_cluster(spec: str) -> tuple[str, int]:
    """``("local", N)`` for ``local:N`` (N defaults to the number of cores), else ``(address, 0)``."""
    text = spec.strip()
    local = LOCAL.match(text)
    if local:
        workers = int(local.group(1) or os.cpu_count() or 1)
        if workers < 1:
            raise ConfigError("--cluster local:N needs N of 1 or more")
        return "local", workers
    if "://" not in text:
        text = "tcp://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("tcp", "tls", "ws", "wss") or not parts.hostname:
        raise ConfigError(f"--cluster must be local:N or tcp://HOST:PORT, not {spec!r}")
    return text, 0


def is_loopback(address: str) -> bool:
    """Whether a scheduler address is on this machine only (127.0.0.0/8, ::1, localhost)."""
    host = urlsplit(address if "://" in address else "tcp://" + address).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_store_for_cluster(store_location: str, address: str) -> None:
    """A directory store is visible to workers on this machine only: refuse it for a remote cluster."""
    if address != "local" and not is_loopback(address) and not is_s3_location(store_location):
        raise ConfigError(
            f"the store {store_location} is a directory, which workers on other machines cannot see: "
            "use an s3:// store with --cluster (a directory store works with local:N or a loopback cluster)"
        )


# ---- the worker side ------------------------------------------------------------------

_objects: dict[str, ObjectStore] = {}
_objects_lock = threading.Lock()


def _worker_objects(settings: Settings) -> ObjectStore:
    """One object store per worker process and store (S3 clients are thread-safe, and slow to make)."""
    key = f"{settings.store}\0{settings.s3.model_dump_json()}"
    with _objects_lock:
        if key not in _objects:
            _objects[key] = open_objects(settings.store, settings.s3)
        return _objects[key]


def process_stored(document_id: str, path: str, name: str, settings: Settings) -> WorkResult:
    """On a worker: the original from the store, through the stages, pages and result.json back.

    A storage error is this document's (reported, redone by the next run), not the worker's.
    """
    try:
        objects = _worker_objects(settings)
        data = objects.get(original_key(document_id))
    except (StorageError, PipelineError) as exc:
        return WorkResult(path, document_id, None, [], "StorageError", f"cannot read the original: {exc}")
    result = work(path, data, name, settings)
    if result.result_json is None:
        return result
    try:
        written = write_document(objects, name, result.invoice(), result.page_pngs, body=result.result_json)
    except StorageError as exc:
        return WorkResult(
            path, document_id, None, [], "StorageError", str(exc), result.seconds, result.worker
        )
    result.page_pngs = []
    result.written = written
    return result


def _load_engine(settings: Settings) -> None:
    from pipeline.ocr import get_engine

    get_engine(settings)
    # One OCR of a small page: the first recognition on a thread pays for its set-up.
    import numpy as np

    page = np.full((64, 256, 3), 255, np.uint8)
    page[24:40, 16:240] = 0
    get_engine(settings).recognize(page, 0)


LIFELINE_VARIABLE = "INVOICES_LIFELINE_PID"


def dask_setup(worker: Any) -> None:
    """Dask preload hook (``preload=["pipeline.cluster"]``): a worker process of a local cluster
    exits when the client that started it is gone, even after SIGKILL (``pipeline.lifeline``).
    Runs as the worker starts, before it takes any task."""
    parent = os.environ.get(LIFELINE_VARIABLE, "")
    if parent.isdigit() and os.getppid() == int(parent):  # only the processes that client started
        die_with_parent(int(parent))


# ---- the client side ------------------------------------------------------------------


class ClusterExecutor:
    """Submits documents to Dask and hands results back as ``concurrent.futures`` futures."""

    def __init__(self, spec: str, settings: Settings, store: Store) -> None:
        try:
            import distributed
        except ImportError as exc:
            raise MissingDependency("--cluster needs Dask: pip install distributed dask") from exc
        self.address, local_workers = parse_cluster(spec)
        check_store_for_cluster(settings.store, self.address)
        self.store = store
        self._cluster: Any = None
        self._pending: set[Any] = set()
        self._lock = threading.Lock()
        self._lost = False
        try:
            if self.address == "local":
                # The workers inherit this config. Dask's sampling profiler (every 10 ms, in each
                # worker) costs CPU that OCR needs; nobody reads its output here. Dask also starts
                # its workers with MALLOC_TRIM_THRESHOLD_=65536: setting any malloc tunable turns
                # off glibc's sliding mmap threshold, so every image and tensor buffer over 128 KiB
                # is mmap'ed, page-faulted and zeroed afresh, and then unmapped (measured: twice the
                # CPU per page, most of it system time). The local pool's workers run without it.
                import dask

                dask.config.set(
                    {
                        "distributed.worker.profile.enabled": False,
                        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                        # Each worker's and this process's event loop wakes 50 times a second to
                        # check its own health, and 12 times more for memory and system figures:
                        # CPU taken from OCR on a small machine. Slower is enough for tasks of seconds.
                        "distributed.admin.tick.interval": "500ms",
                        "distributed.admin.system-monitor.interval": "2s",
                        "distributed.admin.system-monitor.disk": False,
                        "distributed.worker.memory.monitor-interval": "1s",
                    }
                )
                self._cluster = distributed.LocalCluster(
                    n_workers=local_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address="127.0.0.1:0",
                    silence_logs=logging.WARNING,
                    env={"OMP_NUM_THREADS": "1", LIFELINE_VARIABLE: str(os.getpid())},
                    preload=["pipeline.cluster"],
                )
                self.client = distributed.Client(self._cluster, timeout=CONNECT_SECONDS)
            else:
                self.client = distributed.Client(
                    self.address, timeout=CONNECT_SECONDS, name=f"invoices-{socket.gethostname()}"
                )
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ClusterError(f"cannot reach the Dask scheduler at {spec}: {exc}") from exc
        threads = sum(self.client.nthreads().values())
        if threads < 1:  # a scheduler started just now: its workers are still joining
            with contextlib.suppress(Exception):
                self.client.wait_for_workers(1, timeout=CONNECT_SECONDS)
            threads = sum(self.client.nthreads().values())
        if threads < 1:
            self.close()
            raise ClusterError(f"the Dask cluster at {spec} has no workers (waited {CONNECT_SECONDS:.0f} s)")
        self.workers = threads
        log.info("Dask cluster %s: %d worker threads", self.client.scheduler.address, threads)

    def preload(self, settings: Settings) -> None:
        """Load the OCR engine in every worker now (seconds each), not with the first documents.

        As a task on each worker (not ``Client.run``, which runs on the worker's event loop): the
        first OCR on a thread costs seconds more than the next ones, and tasks run on the task thread.
        """
        tasks = [
            self.client.submit(
                _load_engine, settings, workers=[address], allow_other_workers=False, pure=False
            )
            for address in self.client.nthreads()
        ]
        self.client.gather(tasks)

    def submit(self, job: Job, settings: Settings) -> Future[WorkResult]:
        """Upload the original (once), then run it on a worker."""
        put_original(self.store.objects, job.data, job.name, job.document_id)
        result: Future[WorkResult] = Future()
        result.set_running_or_notify_cancel()
        try:
            task = self.client.submit(
                process_stored,
                job.document_id,
                str(job.path),
                job.name,
                settings,
                pure=False,
                key=f"invoice-{job.document_id[:16]}-{os.urandom(4).hex()}",
            )
        except Exception as exc:  # the client lost the scheduler between two documents
            raise self._lost_error(exc) from exc
        with self._lock:
            self._pending.add(task)
        task.add_done_callback(lambda done: self._transfer(done, result, job))
        return result

    def _transfer(self, task: Any, result: Future[WorkResult], job: Job) -> None:
        from distributed.scheduler import KilledWorker

        with self._lock:
            self._pending.discard(task)
        try:
            if task.status == "finished":
                result.set_result(task.result())
                return
            if task.status == "cancelled":
                result.set_exception(self._lost_error(None))
                return
            error = task.exception()
        except Exception as exc:
            result.set_exception(self._lost_error(exc))
            return
        if isinstance(error, KilledWorker):
            result.set_result(
                WorkResult(
                    str(job.path),
                    job.document_id,
                    None,
                    [],
                    "WorkerCrashed",
                    "the worker processes running this file died (a crash in a native library, or out of "
                    "memory), on several workers in turn",
                )
            )
        elif isinstance(error, PipelineError):  # not about one document (a missing model): stop
            result.set_exception(error)
        else:
            result.set_exception(self._lost_error(error))

    def _lost_error(self, cause: BaseException | None) -> ClusterError:
        self._lost = True
        detail = f" ({type(cause).__name__}: {cause})" if cause is not None and str(cause) else ""
        return ClusterError(
            f"lost the Dask scheduler at {self.address}{detail}: documents not finished are not stored; "
            "run the same command again to finish them"
        )

    def cancel_pending(self) -> None:
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
        if pending and not self._lost:
            with contextlib.suppress(Exception):
                self.client.cancel(pending)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close(timeout=10)
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close(timeout=20)
            self._cluster = None

    def __enter__(self) -> ClusterExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
