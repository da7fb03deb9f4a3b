"""Prometheus metrics and ``/healthz`` for a watcher or a long batch (``--metrics-port``).

``Metrics`` counts what the watcher and the batch report (it is a ``WatchObserver``, and
``record`` takes the batch's outcomes); the hot folder's files per state are counted when
Prometheus scrapes. ``Health`` probes the store and the index from a thread of its own, with a
connection of its own (an SQLite connection belongs to the thread that opened it), and
``MetricsServer`` answers ``/metrics`` and ``/healthz`` on 127.0.0.1 unless told otherwise.

``/healthz`` is 200 while the watch loop turns and the store and index answer; 503 otherwise,
with a JSON body saying which check failed. The store probe writes, reads and deletes a small
object under ``_health/``, so a store that is gone, read-only or full is seen as such.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pipeline.errors import ConfigError, PipelineError, StorageError
from pipeline.ingest import Outcome, State
from pipeline.ops import HEALTH_KEY_PREFIX
from pipeline.store import Store
from pipeline.store.objects import LocalObjectStore, ObjectStore

log = logging.getLogger(__name__)

# Every outcome series exists from the start (at 0), so rate() and absent() work on a fresh process.
OUTCOMES = ("ok", "needs_review", "not_an_invoice", "already_stored", "failed", "retried")
HOT_FOLDER_STATES = ("inbox", "processing", "done", "failed")
PROCESSING_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
OCR_PAGE_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)


def outcome_label(outcome: Outcome, fate: str = "") -> str:
    if fate == "retry":
        return "retried"
    if outcome.state == State.FAILED:
        return "failed"
    if outcome.state == State.ALREADY_STORED:
        return "already_stored"
    return outcome.status if outcome.status in OUTCOMES else "ok"


def error_component(outcome: Outcome) -> str | None:
    """Which part of the store a failed outcome blames: "index", "objects", or None (not the store)."""
    if outcome.error_type != "StorageError":
        return None
    return "index" if "index" in outcome.message.lower() else "objects"


class Metrics:
    """The counters, histograms and gauges, in a registry of their own (one per process or test)."""

    def __init__(self, folder_counts: Callable[[], dict[str, int]] | None = None) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.documents = Counter(
            "invoices_documents",
            "Documents finished, by outcome (ok, needs_review, not_an_invoice, already_stored, "
            "failed, retried: a store error, back in the inbox)",
            ["outcome"],
            registry=registry,
        )
        self.pages = Counter("invoices_pages", "Pages of the documents stored", registry=registry)
        self.failures = Counter(
            "invoices_failures",
            "Failed documents by reason class (the error type: ImageUnreadable, PdfUnreadable, "
            "NotAnInvoice, TooLarge, StorageError, WorkerCrashed, ...)",
            ["reason"],
            registry=registry,
        )
        self.processing_seconds = Histogram(
            "invoices_processing_seconds",
            "Seconds from load to validated result, per stored document",
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        )
        self.ocr_page_seconds = Histogram(
            "invoices_ocr_page_seconds",
            "Seconds per OCRed page (pages read from a PDF text layer are not counted)",
            buckets=OCR_PAGE_BUCKETS,
            registry=registry,
        )
        self.last_success = Gauge(
            "invoices_last_success_timestamp_seconds",
            "When a document was last stored (or found stored already), Unix time; 0 before the first",
            registry=registry,
        )
        self.store_errors = Counter(
            "invoices_store_errors",
            "Errors of the store (component=objects) and of the index (component=index): failed "
            "saves and failed health probes",
            ["component"],
            registry=registry,
        )
        self.loop_turned_at = Gauge(
            "invoices_watch_loop_last_turn_timestamp_seconds",
            "When the watch loop last turned, Unix time",
            registry=registry,
        )
        self.healthy = Gauge(
            "invoices_healthy", "1 while /healthz answers 200, 0 otherwise", registry=registry
        )
        self.alerts = Counter(
            "invoices_alerts",
            "Failure alerts by channel (command, webhook) and result (sent, failed, suppressed, dropped)",
            ["channel", "result"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.documents.labels(outcome)
        for component in ("objects", "index"):
            self.store_errors.labels(component)
        self._last_turn = 0.0  # monotonic
        if folder_counts is not None:
            registry.register(_HotFolderCollector(folder_counts))

    # -- what the watcher and the batch report

    def record(self, outcome: Outcome, fate: str = "") -> None:
        self.documents.labels(outcome_label(outcome, fate)).inc()
        if outcome.state == State.FAILED:
            self.failures.labels(outcome.error_type or "unknown").inc()
            component = error_component(outcome)
            if component:
                self.store_errors.labels(component).inc()
            return
        self.last_success.set(time.time())
        if outcome.state == State.STORED:
            self.pages.inc(outcome.pages)
            self.processing_seconds.observe(outcome.seconds)
            for seconds in outcome.ocr_seconds:
                self.ocr_page_seconds.observe(seconds)

    def outcome(self, outcome: Outcome) -> None:
        """One outcome of a batch (``invoices ingest``)."""
        self.record(outcome)

    def loop_turned(self) -> None:
        self._last_turn = time.monotonic()
        self.loop_turned_at.set(time.time())

    def file_finished(self, name: str, outcome: Outcome, fate: str) -> None:
        self.record(outcome, fate)

    def seconds_since_loop_turned(self) -> float | None:
        return time.monotonic() - self._last_turn if self._last_turn else None


class _HotFolderCollector(Collector):
    """Files per hot-folder state, counted when scraped (the folder is the truth, not a counter)."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "invoices_hotfolder_files", "Files in the hot folder by state", labels=["state"]
        )
        try:
            counts = self._counts()
        except OSError as exc:
            log.warning("cannot count the hot folder's files: %s", exc)
            counts = {}
        for state in HOT_FOLDER_STATES:
            family.add_metric([state], float(counts.get(state, 0)))
        yield family


# ---- health ------------------------------------------------------------------------------


def probe_objects(objects: ObjectStore, key: str) -> None:
    """Write, read back and delete one small object; raise ``PipelineError`` if the store cannot."""
    if isinstance(objects, LocalObjectStore) and not objects.root.is_dir():
        # A write would create the directory again: a removed store must show as removed.
        raise StorageError(f"the store directory {objects.root} is gone")
    body = f"{time.time():.3f}".encode()
    objects.put(key, body, "text/plain")
    if objects.get(key) != body:
        raise StorageError(f"the store returned other bytes for {key}")
    objects.delete(key)


class Health:
    """Probes the store and the index every ``interval`` seconds on its own thread.

    ``open_store`` opens the connection the probes use (once, on the probing thread).
    ``loop_age`` (a watcher's) says how long ago its loop turned; past ``stale_after`` the
    watcher counts as stuck.
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        metrics: Metrics,
        interval: float = 2.0,
        stale_after: float | None = 30.0,
    ) -> None:
        self._open_store = open_store
        self._metrics = metrics
        self.interval = interval
        self.stale_after = stale_after
        self._store: Store | None = None
        self._checks: dict[str, str] = {"store": "not probed yet", "index": "not probed yet"}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._probed = threading.Event()
        self._key = f"{HEALTH_KEY_PREFIX}{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self._thread = threading.Thread(target=self._run, name="health-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 30)

    def wait_probed(self, timeout: float) -> bool:
        return self._probed.wait(timeout)

    def _run(self) -> None:
        try:
            while True:
                self.probe()
                if self._stop.wait(self.interval):
                    return
        finally:
            if self._store is not None:
                self._store.close()

    def probe(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            if self._store is None:
                self._store = self._open_store()
            store = self._store
        except PipelineError as exc:
            checks = {"store": f"cannot open: {exc}", "index": "not probed: the store did not open"}
            self._metrics.store_errors.labels("objects").inc()
        else:
            checks["store"] = self._check("objects", lambda: probe_objects(store.objects, self._key))
            checks["index"] = self._check("index", store.index.counts)
        with self._lock:
            self._checks = checks
        self._probed.set()
        return checks

    def _check(self, component: str, probe: Callable[[], Any]) -> str:
        name = "index" if component == "index" else "store"
        was = self._checks.get(name, "ok")
        try:
            probe()
        except Exception as exc:  # any failure of the probe is an unhealthy store, whatever its type
            self._metrics.store_errors.labels(component).inc()
            if not was.startswith("error"):  # logged when it starts, not on every probe
                log.warning("health: the %s does not answer: %s", name, exc)
            return f"error: {exc}"
        if was.startswith("error"):
            log.warning("health: the %s answers again", name)
        return "ok"

    def status(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            checks = dict(self._checks)
        if self.stale_after is not None:
            age = self._metrics.seconds_since_loop_turned()
            if age is None:
                checks["watch_loop"] = "not started yet"
            elif age > self.stale_after:
                checks["watch_loop"] = f"stuck: last turned {age:.0f} s ago"
            else:
                checks["watch_loop"] = "ok"
        healthy = all(value == "ok" for value in checks.values())
        self._metrics.healthy.set(1 if healthy else 0)
        return healthy, checks


# ---- the HTTP server ---------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingWSGIServerIPv6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics %s - %s", self.address_string(), format % args)


class MetricsServer:
    """``/metrics`` (Prometheus text format) and ``/healthz`` on a thread; ``port`` 0 picks a free one."""

    def __init__(self, metrics: Metrics, health: Health | None, host: str = "127.0.0.1", port: int = 9108):
        self.metrics = metrics
        self.health = health
        self._prometheus = make_wsgi_app(metrics.registry)
        server_class = _ThreadingWSGIServerIPv6 if ":" in host else _ThreadingWSGIServer
        try:
            self._server = make_server(
                host, port, self._app, server_class=server_class, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        self.host = host
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._thread.start()
        log.info("metrics on %s/metrics, health on %s/healthz", self.url, self.url)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            healthy, checks = self.health.status() if self.health else (True, {})
            body = json.dumps({"status": "ok" if healthy else "unhealthy", "checks": checks}).encode()
            start_response(
                "200 OK" if healthy else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        if path == "/metrics":
            if self.health is not None:
                self.health.status()  # keeps invoices_healthy current
            return self._prometheus(environ, start_response)  # type: ignore[no-any-return]
        body = b"invoices: /metrics (Prometheus) and /healthz\n"
        start_response(
            "404 Not Found" if path != "/" else "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]
