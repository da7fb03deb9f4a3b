"""Flags shared by `invoices watch` and `invoices ingest`: metrics, /healthz and failure alerts.

Not a command of its own: ``add_monitoring_flags`` adds the flags, ``monitoring`` starts what
they ask for and stops it again (see docs/OPERATIONS.md).
"""

from __future__ import annotations

import argparse
import contextlib
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.cli.common import BadArgs, open_store_for
from pipeline.config import Settings


def add_monitoring_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "monitoring and alerts", "Prometheus metrics, a health check and failure alerts (docs/OPERATIONS.md)"
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics and a health check on /healthz "
        "(200 while the store and index answer, 503 otherwise); 9108 is the usual choice, 0 picks a free port",
    )
    group.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the metrics listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)",
    )
    group.add_argument(
        "--on-failure",
        metavar="CMD",
        default=None,
        help="run CMD (with /bin/sh) for each failed file, with INVOICES_FILE, INVOICES_REASON, "
        "INVOICES_ERROR_TYPE, INVOICES_DOCUMENT_ID and INVOICES_ALERT_JSON in its environment; "
        "e.g. --on-failure 'mail -s \"invoice failed: $INVOICES_FILE\" ops@example.com </dev/null'",
    )
    group.add_argument(
        "--alert-webhook",
        metavar="URL",
        default=None,
        help="POST each failure as JSON to URL (a chat or ticket webhook), with retries",
    )
    group.add_argument(
        "--alert-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time limit of one --on-failure run or one webhook request (default 10)",
    )
    group.add_argument(
        "--alert-rate",
        type=int,
        default=20,
        metavar="N",
        help="at most N alerts a minute (a burst of N, then one every 60/N s); the rest are "
        "counted and logged, not sent (default 20)",
    )


@dataclass
class Monitoring:
    """What the flags started: observers for a watcher, ``record`` for a batch's outcomes."""

    observers: list[Any] = field(default_factory=list)
    metrics: Any = None
    server: Any = None

    def record(self, outcome: Any) -> None:
        for observer in self.observers:
            observer.outcome(outcome)


@contextlib.contextmanager
def monitoring(
    args: argparse.Namespace,
    settings: Settings,
    source: str,
    folder: Path | None = None,
    loop_stale_after: float | None = None,
) -> Iterator[Monitoring]:
    """Start the metrics server and the alert channels the flags ask for; stop them on exit."""
    _check(args)
    started = Monitoring()
    stops: list[Callable[[], None]] = []
    try:
        if args.metrics_port is not None:
            from pipeline.ops.metrics import Health, Metrics, MetricsServer

            counts = None
            if folder is not None:
                from pipeline.watch import HotFolder

                counts = HotFolder(folder.absolute()).counts
            metrics = Metrics(counts)
            health = Health(
                lambda: open_store_for(settings, rebuild_missing_index=False),
                metrics,
                stale_after=loop_stale_after,
            )
            server = MetricsServer(metrics, health, args.metrics_host, args.metrics_port)
            health.start()
            stops.append(health.stop)
            health.wait_probed(30)  # a first answer before any work (a probe takes milliseconds)
            server.start()
            stops.append(server.stop)
            started.metrics, started.server = metrics, server
            started.observers.append(metrics)
        if args.on_failure or args.alert_webhook:
            from pipeline.ops.alerts import Alerts, AlertSettings

            alerts = Alerts(
                AlertSettings(
                    command=args.on_failure,
                    webhook=args.alert_webhook,
                    timeout=args.alert_timeout,
                    per_minute=args.alert_rate,
                ),
                source=source,
                metrics=started.metrics,
            )
            stops.append(alerts.close)
            started.observers.append(alerts)
        yield started
    finally:
        for stop in reversed(stops):
            stop()


def _check(args: argparse.Namespace) -> None:
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise BadArgs("--metrics-port must be between 0 and 65535")
    if args.alert_timeout <= 0:
        raise BadArgs("--alert-timeout must be more than 0")
    if args.alert_rate < 1:
        raise BadArgs("--alert-rate must be 1 or more")
    if args.alert_webhook:
        url = urllib.parse.urlsplit(args.alert_webhook)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise BadArgs(f"--alert-webhook must be an http:// or https:// URL, not {args.alert_webhook!r}")
