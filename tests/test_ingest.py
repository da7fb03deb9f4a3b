"""Batch ingestion: real files, real processing, a real store; interrupted and crashed runs for real."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.errors import TooLarge
from pipeline.ingest import FileRefused, State, discover, read_input, run_batch
from pipeline.ingest.runner import Runner, feed
from pipeline.store import open_store
from pipeline.store.objects import original_key
from tests.bad_inputs import distinct_pdf, make_corpus
from tests.conftest import REPO, SAMPLES


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def indexed_ids(store: Path) -> list[str]:
    with sqlite3.connect(store / "index.sqlite") as db:
        return [row[0] for row in db.execute("SELECT document_id FROM documents")]


def write_pdfs(folder: Path, count: int, start: int = 0) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for n in range(start, start + count):
        sample = ("vat_e_general.pdf", "fully_digital_general.pdf", "en_invoice.pdf")[n % 3]
        name = f"invoice {n:03d}.pdf"
        written[name] = distinct_pdf(sample, n)
        (folder / name).write_bytes(written[name])
    return written


def test_discover_takes_supported_files_lists_links_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "sub" / ".hidden").mkdir(parents=True)
    for name in ("a.pdf", "b.JPG", "notes.txt", ".dot.pdf", "sub/c.tif", "sub/.hidden/d.pdf"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "link.pdf").symlink_to(tmp_path / "a.pdf")
    (tmp_path / "linked dir").symlink_to(tmp_path / "sub")
    chosen, skipped = discover([tmp_path, tmp_path / "notes.txt"])
    assert [p.relative_to(tmp_path).as_posix() for p in chosen] == [
        "a.pdf",
        "b.JPG",
        "link.pdf",
        "sub/c.tif",
        "notes.txt",  # named on the command line: always tried
    ]
    assert [p.name for p in skipped] == ["notes.txt"]


def test_read_input_refuses_links_special_files_and_oversize(tmp_path: Path) -> None:
    (tmp_path / "real.pdf").write_bytes(b"%PDF-1.4 data")
    (tmp_path / "link.pdf").symlink_to(tmp_path / "real.pdf")
    os.mkfifo(tmp_path / "fifo.pdf")
    assert read_input(tmp_path / "real.pdf", 100) == b"%PDF-1.4 data"
    with pytest.raises(FileRefused, match=r"symbolic link to .*real\.pdf"):
        read_input(tmp_path / "link.pdf", 100)
    assert read_input(tmp_path / "link.pdf", 100, follow_symlinks=True) == b"%PDF-1.4 data"
    with pytest.raises(FileRefused, match="not a regular file"):
        read_input(tmp_path / "fifo.pdf", 100)  # and it did not block
    with pytest.raises(TooLarge, match="over the"):
        read_input(tmp_path / "real.pdf", 5)


def test_bad_inputs_fail_with_reasons_and_a_rerun_does_only_what_is_missing(tmp_path: Path) -> None:
    folder, store_dir = tmp_path / "in", tmp_path / "store"
    cases = make_corpus(folder, tmp_path / "outside", with_ocr=False)
    files, skipped = discover([folder])
    settings = Settings(store=str(store_dir))
    store = open_store(settings.store)
    try:
        outcomes = {Path(o.path).name: o for o in run_batch(files, settings, store, workers=1)}
        again = run_batch(files, settings, store, workers=1)
    finally:
        store.close()

    # In a folder, a name the pipeline does not read is skipped, not failed; hidden names are not seen.
    assert sorted(p.name for p in skipped) == sorted(
        ["letter.docx", "scan.pdf.part", "download.pdf.crdownload", "upload.tmp"]
    )
    for case in cases:
        if case.expect == "failed" and case.name != "letter.docx":
            outcome = outcomes.pop(case.name)
            assert outcome.state == State.FAILED, case.name
            assert re.match(case.reason, outcome.message), (case.name, outcome.message)
        elif case.expect == "done":
            outcome = outcomes.pop(case.name)
            assert outcome.state == State.STORED, (case.name, outcome.message)
            assert outcome.pages == case.pages
    # ~$draft.pdf is an Office lock name the hot folder ignores; here it is a PDF like any other.
    assert [(name, o.state) for name, o in outcomes.items()] == [("~$draft.pdf", State.STORED)]

    stored_ids = indexed_ids(store_dir)
    assert len(stored_ids) == len(set(stored_ids)) == sum(case.expect == "done" for case in cases) + 1
    assert sha256((tmp_path / "outside" / "elsewhere.pdf").read_bytes()) not in stored_ids
    # The re-run: what is stored is skipped before any work, what failed is tried again.
    assert not [o for o in again if o.state == State.STORED]
    assert sum(o.skipped for o in again) == len(stored_ids)


def test_a_storage_failure_fails_one_document_and_the_rerun_stores_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, store_dir = tmp_path / "in", tmp_path / "store"
    inputs = write_pdfs(folder, 4)
    victim = sha256(inputs["invoice 002.pdf"])
    # A plain file where that document's folder must go: the store cannot write it (a real OSError).
    blocker = store_dir / Path(original_key(victim)).parent
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    assert main(["ingest", str(folder), "--store", str(store_dir), "--workers", "2"]) == 1
    out = capsys.readouterr()
    assert re.search(r"invoice 002\.pdf: StorageError: not stored, retried on the next run", out.err)
    assert re.search(r"stored\s+3\n", out.out)
    assert victim not in indexed_ids(store_dir)

    blocker.unlink()
    assert main(["ingest", str(folder), "--store", str(store_dir), "--workers", "2"]) == 0
    out = capsys.readouterr()
    assert re.search(r"stored\s+1\n", out.out) and re.search(r"already stored\s+3\n", out.out)
    assert sorted(indexed_ids(store_dir)) == sorted(sha256(data) for data in inputs.values())


def test_exit_codes_and_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    write_pdfs(folder, 3)
    # A store that cannot be opened: the batch cannot run at all.
    (tmp_path / "not a folder").write_text("x")
    assert main(["ingest", str(folder), "--store", str(tmp_path / "not a folder")]) == 4
    assert "error:" in capsys.readouterr().err
    assert main(["ingest", str(folder), "--store", str(tmp_path / "store"), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "pages/s" in err
    assert re.search(r"\d+/3 \[\d\d:\d\d<\d\d:\d\d", err), "the bar shows the time left"


def _workers_of(pid: int) -> set[int]:
    """Pool worker processes among ``pid``'s children (not the resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.add(int(entry.name))
    return found


@pytest.mark.slow
def test_a_killed_worker_loses_nothing_and_a_document_that_kills_twice_fails(tmp_path: Path) -> None:
    folder, store_dir = tmp_path / "in", tmp_path / "store"
    inputs = write_pdfs(folder, 4)
    for name in ("vat_special_clean.png", "en_invoice.png"):  # OCR: slow enough to be killed in mid-page
        inputs[name] = (SAMPLES / name).read_bytes()
        (folder / name).write_bytes(inputs[name])
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        first: set[int] = set()
        while len(first) < 2 and time.monotonic() < deadline:
            first = _workers_of(os.getpid())
            time.sleep(0.05)
        time.sleep(1.5)  # loading the model or reading a page
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        # The documents that were in flight are retried one at a time in a new pool: kill the
        # first retry too, so that document is the one that "keeps crashing".
        while time.monotonic() < deadline:
            fresh = _workers_of(os.getpid()) - first
            if fresh:
                time.sleep(0.1)  # still starting up: its document is in flight, not finished
                os.kill(min(fresh), signal.SIGKILL)
                killed.append(min(fresh))
                return
            time.sleep(0.02)

    settings = Settings(store=str(store_dir))
    store = open_store(settings.store)
    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        outcomes = run_batch(sorted(folder.iterdir()), settings, store, workers=2)
    finally:
        store.close()
    thread.join(timeout=30)
    assert len(killed) == 2, "the test did not get to kill two workers"
    failed = [o for o in outcomes if o.state == State.FAILED]
    assert len(failed) == 1, [(o.path, o.message) for o in outcomes]
    assert failed[0].message.startswith("WorkerCrashed: the worker process died while processing this file")
    stored = [o for o in outcomes if o.state == State.STORED]
    assert len(stored) == len(inputs) - 1
    assert sorted(indexed_ids(store_dir)) == sorted(o.document_id for o in stored)
    with sqlite3.connect(store_dir / "index.sqlite") as db:
        recorded = db.execute("SELECT document_id, error_type FROM failures").fetchall()
    assert recorded == [(failed[0].document_id, "WorkerCrashed")]

    # Nothing kills it now: the re-run stores the one that failed, and only that one.
    store = open_store(settings.store)
    try:
        again = run_batch(sorted(folder.iterdir()), settings, store, workers=2)
    finally:
        store.close()
    assert [Path(o.path).name for o in again if o.state == State.STORED] == [Path(failed[0].path).name]
    assert sorted(indexed_ids(store_dir)) == sorted(sha256(data) for data in inputs.values())


@pytest.mark.slow
def test_a_worker_killed_while_sending_its_result_does_not_hang_the_batch(tmp_path: Path) -> None:
    folder, store_dir = tmp_path / "in", tmp_path / "store"
    inputs = write_pdfs(folder, 6)
    settings = Settings(store=str(store_dir))
    outcomes: list = []
    workers: list[int] = []

    def batch() -> None:  # on its own thread, so that a hang fails the test instead of blocking it
        store = open_store(settings.store)
        runner = Runner(settings, store, workers=2)
        try:
            runner.start()
            pool = runner._executor
            workers.extend(pool._processes)  # type: ignore[union-attr]
            # What a worker killed in the middle of sending its result leaves behind (a race the test
            # above hit under load): the header of a message whose body never comes. The pool's manager
            # thread reads the header, then waits for the body for ever and never sees the dead worker.
            os.write(pool._result_queue._writer.fileno(), struct.pack("!i", 1 << 20))  # type: ignore[union-attr]
            os.kill(workers[0], signal.SIGKILL)
            feed(runner, sorted(folder.iterdir()), outcomes.append)
        finally:
            runner.close()
            store.close()

    thread = threading.Thread(target=batch, daemon=True)
    thread.start()
    thread.join(timeout=120)
    if thread.is_alive():
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pytest.fail("the batch hangs on a pool whose worker died in the middle of sending a result")
    assert sorted(o.state for o in outcomes) == [State.STORED] * len(inputs), [
        (o.path, o.message) for o in outcomes
    ]
    assert sorted(indexed_ids(store_dir)) == sorted(sha256(data) for data in inputs.values())


@pytest.mark.slow
def test_an_interrupted_batch_rerun_processes_only_what_is_missing(tmp_path: Path) -> None:
    folder, store_dir = tmp_path / "in", tmp_path / "store"
    # Enough files that the batch is still running when Ctrl-C arrives: text-layer PDFs are
    # stored at ~50 a second, so 60 could all be done before the signal is handled.
    inputs = write_pdfs(folder, 240)
    command = [sys.executable, "-m", "pipeline.cli", "ingest", str(folder), "--store", str(store_dir)]
    first = subprocess.Popen(
        [*command, "--workers", "2"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(store_dir.glob("documents/*/*/result.json"))) < 3:
            assert time.monotonic() < deadline and first.poll() is None, "nothing was stored in time"
            time.sleep(0.05)
        first.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:  # hung: leave no process behind
            first.kill()
            first.wait()
    assert first.returncode == 130, err.decode()
    assert b"interrupted: re-run the same command" in err
    done_first = set(indexed_ids(store_dir))
    assert 3 <= len(done_first) < len(inputs), "the batch must be interrupted in the middle"

    second = subprocess.run([*command, "--workers", "2"], cwd=REPO, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode()
    out = second.stdout.decode()
    assert re.search(rf"already stored\s+{len(done_first)}\n", out), out
    assert re.search(rf"stored\s+{len(inputs) - len(done_first)}\n", out), out
    assert sorted(indexed_ids(store_dir)) == sorted(sha256(data) for data in inputs.values())
    assert len(list(store_dir.glob("documents/*/*/original"))) == len(inputs)
