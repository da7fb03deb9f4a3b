"""Prometheus metrics and /healthz of a running watcher, scraped over HTTP.

A real ``invoices watch --metrics-port`` process on a hot folder of text-layer PDFs and bad inputs;
the store lives on a small tmpfs the test mounts (root only), so it can be removed and made
read-only for real, and /healthz must follow: 503 while it is gone or read-only, 200 once back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.cli import main
from pipeline.store.seaweedfs import free_ports
from tests.bad_inputs import distinct_pdf, truncated_jpeg
from tests.conftest import REPO
from tests.waiting import wait_for


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def healthz(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 MB tmpfs mounted for this test (root only: mounting needs it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "mnt"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_metrics_count_a_hot_folder_run_and_healthz_follows_the_store(tmp_path: Path, tmpfs: Path) -> None:
    hot, store, index, log = (
        tmp_path / "hot",
        tmpfs / "store",
        tmp_path / "index.sqlite",
        tmp_path / "watch.log",
    )
    hot.mkdir()
    for n in range(2):
        (hot / f"e-invoice {n}.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", n))
    (hot / "digital.pdf").write_bytes(distinct_pdf("fully_digital_general.pdf", 0))
    (hot / "truncated.jpg").write_bytes(truncated_jpeg())
    (hot / "notes.txt").write_bytes(b"not an invoice\n" * 4)
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "pipeline.cli", "watch", str(hot), "--store", str(store)]
    command += ["--index", str(index), "--workers", "1", "--stable-seconds", "0.2", "--poll-interval", "0.1"]
    command += ["--metrics-port", str(port)]
    with open(log, "wb") as stderr:
        watcher = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
    try:

        def finished() -> bool:
            try:
                samples = scrape(url)
            except OSError:
                return False
            return value(samples, "invoices_hotfolder_files", state="done") == 3 and (
                value(samples, "invoices_hotfolder_files", state="failed") == 2
            )

        wait_for(finished, 180, "the watcher to finish the folder", [log])
        samples = scrape(url)
        stored = sum(
            value(samples, "invoices_documents_total", outcome=o)
            for o in ("ok", "needs_review", "not_an_invoice")
        )
        assert stored == 3
        assert value(samples, "invoices_documents_total", outcome="failed") == 2
        assert value(samples, "invoices_documents_total", outcome="already_stored") == 0
        assert value(samples, "invoices_failures_total", reason="ImageUnreadable") == 1
        assert value(samples, "invoices_failures_total", reason="UnsupportedFormat") == 1
        assert value(samples, "invoices_pages_total") == 3
        assert value(samples, "invoices_processing_seconds_count") == 3
        assert value(samples, "invoices_ocr_page_seconds_count") == 0  # text layers: nothing OCRed
        assert value(samples, "invoices_hotfolder_files", state="inbox") == 0
        assert value(samples, "invoices_hotfolder_files", state="processing") == 0
        assert value(samples, "invoices_last_success_timestamp_seconds") > 0
        assert value(samples, "invoices_store_errors_total", component="objects") == 0
        assert healthz(url)[0] == 200

        # The store removed: 503, naming the store; back: 200.
        store.rename(tmpfs / "elsewhere")
        wait_for(lambda: healthz(url)[0] == 503, 60, "/healthz to turn 503 (store removed)", [log])
        assert "gone" in str(healthz(url)[1]["checks"])
        (tmpfs / "elsewhere").rename(store)
        wait_for(lambda: healthz(url)[0] == 200, 60, "/healthz to turn 200 again", [log])

        # The store read-only: 503; writable again: 200.
        subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
        wait_for(lambda: healthz(url)[0] == 503, 60, "/healthz to turn 503 (read-only)", [log])
        assert "Read-only file system" in str(healthz(url)[1]["checks"])
        assert value(scrape(url), "invoices_healthy") == 0
        assert value(scrape(url), "invoices_store_errors_total", component="objects") >= 2
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
        wait_for(lambda: healthz(url)[0] == 200, 60, "/healthz to turn 200 again", [log])

        # Still counting: one more file.
        (hot / "e-invoice 9.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", 9))
        wait_for(
            lambda: value(scrape(url), "invoices_hotfolder_files", state="done") == 4, 120, "one more", [log]
        )
        assert value(scrape(url), "invoices_pages_total") == 4
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(timeout=60) == 0
    finally:
        with suppress(ProcessLookupError):
            os.killpg(watcher.pid, signal.SIGKILL)
        watcher.wait(timeout=30)


def test_ingest_serves_metrics_for_its_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`invoices ingest --metrics-port`: scraped just before the server stops, at the end of the batch."""
    from pipeline.ops.metrics import MetricsServer

    scraped: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]] = []
    health: list[int] = []
    stop = MetricsServer.stop

    def scrape_then_stop(self: MetricsServer) -> None:
        scraped.append(scrape(self.url))
        health.append(healthz(self.url)[0])
        stop(self)

    monkeypatch.setattr(MetricsServer, "stop", scrape_then_stop)
    files = tmp_path / "in"
    files.mkdir()
    (files / "a.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", 1))
    (files / "b.jpg").write_bytes(truncated_jpeg())
    args = ["ingest", str(files), "--store", str(tmp_path / "store"), "--workers", "1", "--metrics-port", "0"]
    assert main(args) == 1
    (samples,) = scraped
    assert value(samples, "invoices_documents_total", outcome="failed") == 1
    assert value(samples, "invoices_failures_total", reason="ImageUnreadable") == 1
    assert value(samples, "invoices_pages_total") == 1
    assert value(samples, "invoices_last_success_timestamp_seconds") > 0
    assert health == [200]


def test_health_says_which_check_failed(tmp_path: Path) -> None:
    """A watch loop that stopped turning, and a store that cannot be opened, are each named."""
    from pipeline.errors import StorageError
    from pipeline.ops.metrics import Health, Metrics
    from pipeline.store import open_store

    metrics = Metrics()
    health = Health(lambda: open_store(str(tmp_path / "store")), metrics, stale_after=0.0)
    assert health.probe() == {"store": "ok", "index": "ok"}
    assert health.status() == (False, {"store": "ok", "index": "ok", "watch_loop": "not started yet"})
    metrics.loop_turned()
    healthy, checks = health.status()
    assert not healthy and checks["watch_loop"].startswith("stuck")
    health.stale_after = 3600.0
    assert health.status() == (True, {"store": "ok", "index": "ok", "watch_loop": "ok"})

    def cannot_open() -> None:
        raise StorageError("S3 endpoint unreachable")

    broken = Health(cannot_open, metrics, stale_after=None)  # type: ignore[arg-type]
    broken.probe()
    healthy, checks = broken.status()
    assert not healthy and "S3 endpoint unreachable" in checks["store"]
    assert metrics.registry.get_sample_value("invoices_healthy") == 0
