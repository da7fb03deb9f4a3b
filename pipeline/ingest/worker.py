"""The worker side: what runs in a worker process (``work``), and how its log records reach the parent.

Everything a ``ProcessPoolExecutor`` sends to a worker is pickled by qualified name, so
``work``, ``_worker_init`` and ``_probe`` must stay module-level functions.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import resource
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Settings
from pipeline.errors import InputError, OcrEngineError, PipelineError
from pipeline.lifeline import die_with_parent
from pipeline.model import InvoiceResult
from pipeline.process import content_id, process_document
from pipeline.store import Written, result_body

log = logging.getLogger(__name__)


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
