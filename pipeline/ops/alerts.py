"""Alerts without Prometheus: a command (``--on-failure``) or a webhook (``--alert-webhook``) per failed file.

Delivery runs on a thread per channel, never on the watch loop's: a receiver that hangs or
refuses costs the watcher nothing but a log line, and each attempt is bounded by ``timeout``.
Alerts are rate-limited (a token bucket, ``per_minute``): a folder of a thousand bad files sends
a burst, then one alert per refill, and the rest are counted (``suppressed``) and logged. The
command's or the webhook's own failure is logged and counted; it never stops the watcher.

The event, as the webhook's JSON body and in the command's environment::

    {"event": "invoice_failed", "file": "scan 7.jpg", "reason": "ImageUnreadable: ...",
     "error_type": "ImageUnreadable", "document_id": "3fa2…", "source": "watch",
     "host": "scanner-pc", "failed_at": "2026-03-01T08:15:02Z", "suppressed_before": 0}

    INVOICES_FILE, INVOICES_REASON, INVOICES_ERROR_TYPE, INVOICES_DOCUMENT_ID,
    INVOICES_SOURCE, INVOICES_ALERT_JSON (the whole event)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.ingest import Outcome, State

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000  # events waiting per channel; beyond it they are dropped (and counted)


@dataclass(frozen=True)
class AlertSettings:
    command: str | None = None  # run with /bin/sh -c, the event in its environment
    webhook: str | None = None  # POSTed the event as JSON
    timeout: float = 10.0  # seconds per attempt (the command, or one HTTP request)
    attempts: int = 3  # webhook attempts per event (the command runs once)
    per_minute: int = 20  # alerts per minute at most (a burst of this many, then the refill rate)

    @property
    def enabled(self) -> bool:
        return bool(self.command or self.webhook)


class _Bucket:
    def __init__(self, per_minute: int) -> None:
        self.capacity = float(max(1, per_minute))
        self.tokens = self.capacity
        self.rate = self.capacity / 60.0
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def failure_event(name: str, outcome: Outcome, source: str) -> dict[str, Any]:
    document_id = outcome.document_id if outcome.document_id not in ("", "-") else ""
    return {
        "event": "invoice_failed",
        "file": name,
        "reason": outcome.message or str(outcome.state),
        "error_type": outcome.error_type or "unknown",
        "document_id": document_id,
        "source": source,
        "host": socket.gethostname(),
        "failed_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


class Alerts:
    """Sends an alert per failed file; a ``WatchObserver``, and ``outcome`` takes a batch's outcomes."""

    def __init__(self, settings: AlertSettings, source: str = "watch", metrics: Any = None) -> None:
        self.settings = settings
        self.source = source
        self._metrics = metrics
        self._bucket = _Bucket(settings.per_minute)
        self._suppressed = 0
        self._lock = threading.Lock()
        self._channels: list[_Channel] = []
        if settings.command:
            self._channels.append(_Channel("command", self._run_command, self._count))
        if settings.webhook:
            self._channels.append(_Channel("webhook", self._post, self._count))

    # -- what the watcher and the batch report

    def loop_turned(self) -> None:
        pass

    def file_finished(self, name: str, outcome: Outcome, fate: str) -> None:
        if fate == "failed":
            self.notify(failure_event(name, outcome, self.source))

    def outcome(self, outcome: Outcome) -> None:
        if outcome.state == State.FAILED:
            self.notify(failure_event(Path(outcome.path).name, outcome, self.source))

    def notify(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for every channel (returns at once), unless the rate limit holds it back."""
        with self._lock:
            if not self._bucket.take():
                self._suppressed += 1
                if self._suppressed == 1 or self._suppressed % 100 == 0:
                    log.warning(
                        "alert rate limit (%d a minute) reached: %d alerts not sent so far (%s)",
                        self.settings.per_minute,
                        self._suppressed,
                        event.get("file"),
                    )
                for channel in self._channels:
                    self._count(channel.name, "suppressed")
                return
            event = {**event, "suppressed_before": self._suppressed}
            self._suppressed = 0
        for channel in self._channels:
            channel.put(event)

    def close(self, patience: float | None = None) -> None:
        """Deliver what is queued, waiting at most ``patience`` seconds (default: one event's worth
        of attempts); what is left then is dropped and logged."""
        if patience is None:
            patience = self.settings.timeout * max(1, self.settings.attempts) + 2.0
        deadline = time.monotonic() + patience
        for channel in self._channels:
            channel.close(deadline)

    # -- delivery (on the channels' threads)

    def _count(self, channel: str, result: str) -> None:
        if self._metrics is not None:
            self._metrics.alerts.labels(channel, result).inc()

    def _run_command(self, event: dict[str, Any]) -> None:
        assert self.settings.command
        env = {
            **os.environ,
            "INVOICES_FILE": str(event["file"]),
            "INVOICES_REASON": str(event["reason"]),
            "INVOICES_ERROR_TYPE": str(event["error_type"]),
            "INVOICES_DOCUMENT_ID": str(event["document_id"]),
            "INVOICES_SOURCE": str(event["source"]),
            "INVOICES_ALERT_JSON": json.dumps(event, ensure_ascii=False),
        }
        process = subprocess.Popen(
            ["/bin/sh", "-c", self.settings.command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills all it started
        )
        try:
            output, _ = process.communicate(timeout=self.settings.timeout)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise RuntimeError(
                f"--on-failure command still running after {self.settings.timeout:g} s: killed"
            ) from exc
        if process.returncode != 0:
            tail = output.decode("utf-8", "replace").strip()[-300:]
            raise RuntimeError(f"--on-failure command exited with {process.returncode}: {tail}")

    def _post(self, event: dict[str, Any]) -> None:
        assert self.settings.webhook
        body = json.dumps(event, ensure_ascii=False).encode()
        attempts = max(1, self.settings.attempts)
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(
                self.settings.webhook,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "invoices-alert"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                    response.read(1024)
                return
            except urllib.error.HTTPError as exc:
                retry = exc.code >= 500 or exc.code == 429
                error = f"HTTP {exc.code} {exc.reason}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                retry = True
                error = str(getattr(exc, "reason", exc))
            if not retry or attempt == attempts:
                raise RuntimeError(
                    f"webhook {self.settings.webhook}: {error} (attempt {attempt} of {attempts})"
                )
            log.info("webhook %s: %s; retrying", self.settings.webhook, error)
            time.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))


class _Channel:
    """One delivery thread with its queue."""

    def __init__(self, name: str, deliver: Any, count: Any) -> None:
        self.name = name
        self._deliver = deliver
        self._count = count
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_LIMIT)
        self._thread = threading.Thread(target=self._run, name=f"alert-{name}", daemon=True)
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            log.warning(
                "%s alerts are not being delivered fast enough: dropped one for %s", self.name, event["file"]
            )
            self._count(self.name, "dropped")

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._deliver(event)
            except Exception as exc:  # an alert that cannot be sent must never stop the watcher
                log.warning("alert for %s not sent: %s", event.get("file"), exc)
                self._count(self.name, "failed")
            else:
                self._count(self.name, "sent")

    def close(self, deadline: float) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            left = self._queue.qsize()
            log.warning("%s alerts still being delivered at exit: given up (%d waiting)", self.name, left)
