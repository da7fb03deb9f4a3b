"""Failure alerts: ``--on-failure CMD`` and ``--alert-webhook URL`` fire once per failed file, and a
receiver that hangs or refuses does not hold the watcher up (delivery is off the watch loop's thread).

Real pieces: ``invoices watch --once`` on a hot folder of text-layer PDFs and bad inputs, a real
HTTP receiver on 127.0.0.1 started by the test, a real shell command.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.ingest import Outcome, State
from pipeline.ops.alerts import Alerts, AlertSettings
from pipeline.store.seaweedfs import free_ports
from tests.bad_inputs import distinct_pdf, pdf_without_pages, truncated_jpeg

BAD = {
    "truncated.jpg": truncated_jpeg(),
    "no pages.pdf": pdf_without_pages(),
    "notes.txt": b"this is not an invoice, nor an image, nor a PDF\n" * 3,
}


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POSTed JSON body; ``hang`` makes it stall."""

    def __init__(self, hang: bool = False) -> None:
        self.bodies: list[dict[str, object]] = []
        self.connections = 0
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.connections += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if hang:
                    receiver.release.wait(60)
                    return
                receiver.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        self.thread.start()
        try:
            yield self
        finally:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()


def hot_folder(tmp_path: Path) -> Path:
    hot = tmp_path / "hot"
    hot.mkdir()
    for n in range(2):
        (hot / f"good {n}.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", n))
    for name, data in BAD.items():
        (hot / name).write_bytes(data)
    return hot


def watch_once(hot: Path, store: Path, *extra: str) -> int:
    return main(
        [
            "watch",
            str(hot),
            "--once",
            "--store",
            str(store),
            "--workers",
            "1",
            "--stable-seconds",
            "0",
            "--poll",
            "--poll-interval",
            "0.1",
            *extra,
        ]
    )


def test_command_and_webhook_fire_once_per_failed_file(tmp_path: Path) -> None:
    hot = hot_folder(tmp_path)
    out = tmp_path / "alerts.txt"
    command = f'printf "%s|%s|%s|%s\\n" "$INVOICES_FILE" "$INVOICES_ERROR_TYPE" "$INVOICES_DOCUMENT_ID" "$INVOICES_REASON" >> {out}'
    with Receiver().running() as receiver:
        code = watch_once(hot, tmp_path / "store", "--on-failure", command, "--alert-webhook", receiver.url)
    assert code == 1  # some files failed
    assert sorted(p.name for p in (hot / "failed").iterdir() if not p.name.endswith(".error.txt")) == sorted(
        BAD
    )

    lines = sorted(out.read_text(encoding="utf-8").splitlines())
    assert [line.split("|")[0] for line in lines] == sorted(BAD)
    for line in lines:
        name, error_type, document_id, reason = line.split("|", 3)
        assert document_id == hashlib.sha256(BAD[name]).hexdigest()
        assert error_type and reason.startswith(error_type)

    assert sorted(str(body["file"]) for body in receiver.bodies) == sorted(BAD)
    for body in receiver.bodies:
        assert body["event"] == "invoice_failed" and body["source"] == "watch"
        assert body["document_id"] == hashlib.sha256(BAD[str(body["file"])]).hexdigest()
        assert str(body["reason"]).startswith(str(body["error_type"]))


def test_a_hanging_or_refusing_receiver_does_not_hold_the_watcher(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hot = hot_folder(tmp_path)
    with Receiver(hang=True).running() as receiver:
        code = watch_once(
            hot,
            tmp_path / "store",
            "--alert-webhook",
            receiver.url,
            "--alert-timeout",
            "1",
            "--on-failure",
            "echo cannot page anyone >&2; exit 7",
        )
        # Every file was finished and the watcher returned while the receiver still holds the
        # first request: no file waited for an alert.
        still_hanging = not receiver.release.is_set()
        assert receiver.connections >= 1
    assert code == 1 and still_hanging
    assert len([p for p in (hot / "failed").iterdir() if not p.name.endswith(".error.txt")]) == len(BAD)
    assert sorted(p.name for p in (hot / "done").iterdir()) == ["good 0.pdf", "good 1.pdf"]
    messages = capsys.readouterr().err.splitlines()
    assert any("alert for" in m and "not sent" in m and "exited with 7" in m for m in messages), messages
    assert any("given up" in m for m in messages), messages


def test_a_refusing_webhook_is_retried_then_logged(caplog: pytest.LogCaptureFixture) -> None:
    (port,) = free_ports(1)  # nobody listens there
    alerts = Alerts(AlertSettings(webhook=f"http://127.0.0.1:{port}/hook", timeout=2, attempts=2))
    with caplog.at_level(logging.INFO):
        alerts.outcome(Outcome("/in/bad.jpg", State.FAILED, "ab" * 32, message="X: y", error_type="X"))
        alerts.close()
    messages = [record.getMessage() for record in caplog.records]
    assert any("retrying" in m for m in messages), messages
    assert any("alert for bad.jpg not sent" in m and "attempt 2 of 2" in m for m in messages), messages


def test_rate_limit_sends_a_burst_then_counts_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "sent.txt"
    alerts = Alerts(AlertSettings(command=f'echo "$INVOICES_FILE" >> {out}', per_minute=2), source="ingest")
    for n in range(5):
        alerts.outcome(Outcome(f"/in/bad {n}.jpg", State.FAILED, "ab" * 32, message="X: y", error_type="X"))
    alerts.outcome(Outcome("/in/fine.pdf", State.STORED, "cd" * 32))  # not a failure: no alert
    alerts.close()
    assert out.read_text().splitlines() == ["bad 0.jpg", "bad 1.jpg"]


def test_ingest_alerts_once_per_failed_file(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "fine.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", 5))
    (inputs / "truncated.jpg").write_bytes(BAD["truncated.jpg"])
    out = tmp_path / "alerts.txt"
    command = f'echo "$INVOICES_SOURCE $INVOICES_FILE $INVOICES_ERROR_TYPE" >> {out}'
    args = ["-q", "ingest", str(inputs), "--store", str(tmp_path / "store"), "--workers", "1"]
    assert main([*args, "--on-failure", command]) == 1
    assert out.read_text().splitlines() == ["ingest truncated.jpg ImageUnreadable"]
