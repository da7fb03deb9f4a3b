"""The hot folder: real files, real processing (text layers, and OCR where marked slow), real processes.

The crash and two-watcher tests start ``invoices watch`` as separate processes and kill them
for real (SIGKILL, SIGTERM).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.store import open_store
from pipeline.watch import ERROR_SUFFIX, HotFolder, Watcher, WatchOptions, ignored, move_unique
from tests.bad_inputs import distinct_pdf, make_corpus, truncated_jpeg
from tests.conftest import REPO, SAMPLES
from tests.waiting import wait_for


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def indexed_ids(store: Path) -> list[str]:
    with sqlite3.connect(store / "index.sqlite") as db:
        return [row[0] for row in db.execute("SELECT document_id FROM documents")]


def stored_results(store: Path) -> list[Path]:
    return sorted(store.glob("documents/*/*/result.json"))


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def leftover_claims(hot: Path) -> list[Path]:
    processing = hot / ".processing"
    return (
        [p for p in processing.rglob("*") if p.is_file() and p.name != ".lock"] if processing.is_dir() else []
    )


@contextmanager
def watcher_thread(hot: Path, store: Path, **options: object) -> Iterator[Watcher]:
    """A watcher running in a thread of this process (with one worker process by default)."""
    handed: queue.Queue[Watcher] = queue.Queue()
    errors: list[BaseException] = []

    def run() -> None:
        opened = open_store(str(store))
        try:
            watcher = Watcher(
                hot,
                Settings(store=str(store)),
                opened,
                WatchOptions(handle_signals=False, **{"workers": 1, **options}),  # type: ignore[arg-type]
                None,
            )
            handed.put(watcher)
            watcher.run()
        except BaseException as exc:
            errors.append(exc)
            raise
        finally:
            opened.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    watcher = handed.get(timeout=30)
    try:
        yield watcher
    finally:
        watcher.stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the watcher did not stop"
    assert not errors, errors


# ---- small pieces ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scan.pdf", False),
        ("a..b.pdf", False),
        ("发票 01.jpg", False),
        ("scan.pdf.part", True),
        ("scan.PDF.PART", True),
        ("~$invoice.pdf", True),
        (".hidden.pdf", True),
        ("..x.pdf", True),
        ("file.crdownload", True),
        ("upload.tmp", True),
        ("scan.pdf.error.txt", True),
    ],
)
def test_ignored_names(name: str, expected: bool) -> None:
    assert ignored(name) is expected


def test_move_unique_never_overwrites(tmp_path: Path) -> None:
    inbox, done = tmp_path / "in", tmp_path / "done"
    inbox.mkdir()
    done.mkdir()
    for n in range(3):
        (inbox / "scan.pdf").write_bytes(f"scan {n}".encode())
        move_unique(inbox / "scan.pdf", done, "scan.pdf")
    assert names(done) == ["scan (2).pdf", "scan (3).pdf", "scan.pdf"]
    assert {(done / name).read_text() for name in names(done)} == {"scan 0", "scan 1", "scan 2"}
    # A link is moved as the link itself, never as a copy of what it points to.
    (inbox / "link.pdf").symlink_to("/etc/hostname")
    moved = move_unique(inbox / "link.pdf", done, "link.pdf")
    assert moved.is_symlink() and str(moved.readlink()) == "/etc/hostname"
    assert not (inbox / "link.pdf").is_symlink()


# ---- the bad-input corpus ------------------------------------------------------------


@pytest.mark.slow
def test_bad_input_corpus_ends_in_failed_with_reasons(tmp_path: Path) -> None:
    hot, store = tmp_path / "hot", tmp_path / "store"
    cases = make_corpus(hot, tmp_path / "outside")
    (hot / "a folder").mkdir()  # folders in the inbox are left alone
    settings = Settings(store=str(store))
    opened = open_store(settings.store)
    try:
        watcher = Watcher(
            hot,
            settings,
            opened,
            WatchOptions(workers=2, stable_seconds=0.2, poll_interval=0.1, once=True),
            None,
        )
        report = watcher.run()
    finally:
        opened.close()

    failed = [case for case in cases if case.expect == "failed"]
    done = [case for case in cases if case.expect == "done"]
    kept = [case for case in cases if case.expect == "ignored"]
    assert sorted(names(hot / "failed")) == sorted(
        [case.name for case in failed] + [case.name + ERROR_SUFFIX for case in failed]
    )
    for case in failed:
        reason = (hot / "failed" / (case.name + ERROR_SUFFIX)).read_text(encoding="utf-8").splitlines()[0]
        assert re.match(case.reason, reason), (case.name, reason)
    assert sorted(names(hot / "done")) == sorted(case.name for case in done)
    assert sorted(names(hot)) == sorted(
        [".processing", "a folder", "done", "failed"] + [c.name for c in kept]
    )
    assert not leftover_claims(hot)
    assert (report.done, report.failed) == (len(done), len(failed))

    # Each processed file is stored once, with all its pages; the file behind the link is not.
    ids = indexed_ids(store)
    assert sorted(ids) == sorted(sha256((hot / "done" / case.name).read_bytes()) for case in done)
    assert sha256((tmp_path / "outside" / "elsewhere.pdf").read_bytes()) not in ids
    with sqlite3.connect(store / "index.sqlite") as db:
        pages = dict(db.execute("SELECT source_name, page_count FROM documents").fetchall())
    for case in done:
        assert pages[case.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")] == case.pages
    # The FIFO was moved, never opened (opening it would have blocked the watcher).
    assert (hot / "failed" / "pipe.pdf").is_fifo()


# ---- when a file is complete ----------------------------------------------------------


@pytest.mark.parametrize("use_inotify", [True, False], ids=["inotify", "polling"])
def test_a_file_being_written_is_not_taken(tmp_path: Path, use_inotify: bool) -> None:
    hot, store = tmp_path / "hot", tmp_path / "store"
    hot.mkdir()
    data = distinct_pdf("vat_e_general.pdf", 1)
    # inotify knows the writer still has the file open, however long it pauses; polling only knows
    # that it has not changed for stable_seconds.
    stable, pause = (0.3, 1.5) if use_inotify else (3.0, 0.5)
    with watcher_thread(hot, store, stable_seconds=stable, poll_interval=0.1, use_inotify=use_inotify):
        time.sleep(0.3)  # the observer is up
        with open(hot / "slow scan.pdf", "wb") as handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            time.sleep(pause)
            assert names(hot / "done") == [] and names(hot / "failed") == []
            assert (hot / "slow scan.pdf").exists(), "a file still being written was taken"
            handle.write(data[len(data) // 2 :])
        wait_for(lambda: names(hot / "done") == ["slow scan.pdf"], 90, "the finished file to be processed")
    assert names(hot / "failed") == []
    assert indexed_ids(store) == [sha256(data)]


def test_a_file_renamed_in_is_taken_at_once(tmp_path: Path) -> None:
    hot, store = tmp_path / "hot", tmp_path / "store"
    hot.mkdir()
    with watcher_thread(hot, store, stable_seconds=30, poll_interval=0.1):
        time.sleep(0.3)
        (hot / "upload.pdf.part").write_bytes(distinct_pdf("en_invoice.pdf", 5))
        time.sleep(0.5)
        assert (hot / "upload.pdf.part").exists(), "a partial name was taken"
        (hot / "upload.pdf.part").rename(hot / "upload.pdf")
        # Far sooner than stable_seconds: the rename says the file is complete.
        wait_for(lambda: names(hot / "done") == ["upload.pdf"], 60, "the renamed file to be processed")


# ---- claims, recovery, storage failures --------------------------------------------------


def test_files_of_a_dead_watcher_are_recovered_and_a_live_ones_are_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hot, store = tmp_path / "hot", tmp_path / "store"
    HotFolder(hot).root.mkdir()
    HotFolder(hot).create()
    dead, alive = hot / ".processing" / "otherhost-41-aaaaaa", hot / ".processing" / "otherhost-42-bbbbbb"
    for owner, n in ((dead, 1), (alive, 2)):
        owner.mkdir()
        (owner / ".lock").write_text(owner.name)
        (owner / f"claimed {n}.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", n))
    # The dead one was killed between linking a finished file into done/ and unlinking its claim.
    (dead / "finished.pdf").write_bytes(distinct_pdf("en_invoice.pdf", 3))
    os.link(dead / "finished.pdf", hot / "done" / "finished.pdf")
    # The live watcher holds its lock, as a running `invoices watch` does.
    held = os.open(alive / ".lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        settings = Settings(store=str(store))
        opened = open_store(settings.store)
        try:
            options = WatchOptions(
                workers=1, once=True, stable_seconds=0.1, poll_interval=0.05, handle_signals=False
            )
            report = Watcher(hot, settings, opened, options, None).run()
        finally:
            opened.close()
    finally:
        os.close(held)
    assert report.recovered == 1
    assert names(hot / "done") == ["claimed 1.pdf", "finished.pdf"], "each file once"
    assert not dead.exists(), "the dead watcher's folder is tidied away"
    assert names(alive) == [".lock", "claimed 2.pdf"], "a live watcher's claim must not be taken"
    assert indexed_ids(store) == [sha256(distinct_pdf("vat_e_general.pdf", 1))]
    (hot / "waiting.pdf").write_bytes(b"%PDF")
    assert main(["status", "--store", str(store), "--folder", str(hot)]) == 0
    out = capsys.readouterr().out
    for state, count in (("ok", 1), ("failed", 0), ("inbox", 1), ("processing", 1), ("done", 2)):
        assert re.search(rf"^{state}\s+{count}$", out, re.MULTILINE), (state, out)


def test_a_storage_failure_sends_the_file_back_and_it_is_retried(tmp_path: Path) -> None:
    from pipeline.store.objects import original_key

    hot, store = tmp_path / "hot", tmp_path / "store"
    hot.mkdir()
    data = distinct_pdf("fully_digital_general.pdf", 7)
    # A plain file where the document's folder must go: the store cannot write it (a real OSError).
    blocker = store / Path(original_key(sha256(data))).parent
    blocker.parent.mkdir(parents=True)
    blocker.write_text("in the way")
    (hot / "invoice.pdf").write_bytes(data)
    with watcher_thread(hot, store, stable_seconds=0.1, poll_interval=0.05, retry_seconds=1.0) as watcher:
        wait_for(lambda: watcher.report.retried >= 1, 90, "the failed save")
        assert names(hot / "failed") == [] and names(hot / "done") == []
        assert (hot / "invoice.pdf").exists(), "the file waits in the inbox for its retry"
        blocker.unlink()
        wait_for(lambda: names(hot / "done") == ["invoice.pdf"], 90, "the retry")
    assert indexed_ids(store) == [sha256(data)]


@pytest.mark.slow
def test_a_worker_killed_while_idle_is_replaced(tmp_path: Path) -> None:
    hot, store = tmp_path / "hot", tmp_path / "store"
    hot.mkdir()
    with watcher_thread(hot, store, workers=2, stable_seconds=0.1, poll_interval=0.05):
        (hot / "first.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", 1))
        wait_for(lambda: names(hot / "done") == ["first.pdf"], 120, "the first file")
        workers = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit()
            and b"spawn_main" in _read(entry / "cmdline")
            and _read(entry / "stat").rsplit(b")", 1)[-1].split()[1:2] == [str(os.getpid()).encode()]
        ]
        assert workers, "no worker process found"
        for pid in workers:  # the OOM killer, say, while the watcher waits for files
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        (hot / "second.pdf").write_bytes(distinct_pdf("en_invoice.pdf", 2))
        wait_for(lambda: names(hot / "done") == ["first.pdf", "second.pdf"], 120, "the second file")
    assert names(hot / "failed") == []
    assert len(indexed_ids(store)) == 2


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


# ---- real processes: SIGKILL in mid-batch, two watchers on one folder -------------------


def start_watch(hot: Path, store: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pipeline.cli", "--log-json", "watch", str(hot), "--store", str(store)]
    command += ["--stable-seconds", "0.3", "--poll-interval", "0.1", *extra]
    with open(log, "ab") as stderr:
        return subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )


def log_records(log: Path) -> list[dict[str, object]]:
    records = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """Whatever is left of the process and its workers."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.slow
def test_sigkill_in_mid_batch_then_restart_every_file_once(tmp_path: Path) -> None:
    hot, store = tmp_path / "hot", tmp_path / "store"
    hot.mkdir()
    inputs: dict[str, bytes] = {}
    for n in range(12):
        sample = ("vat_e_general.pdf", "fully_digital_general.pdf", "en_invoice.pdf")[n % 3]
        inputs[f"pdf {n:02d}.pdf"] = distinct_pdf(sample, n)
    for name in ("vat_special_clean.png", "en_invoice.png"):  # OCR: these keep the batch busy
        inputs[f"scan {name}"] = (SAMPLES / name).read_bytes()
    inputs["broken.jpg"] = truncated_jpeg()
    for name, data in inputs.items():
        (hot / name).write_bytes(data)
    good = {name for name in inputs if name != "broken.jpg"}

    first = start_watch(hot, store, tmp_path / "first.log", "--workers", "2")
    try:
        wait_for(lambda: len(names(hot / "done")) >= 4, 240, "the first documents to be done")
        os.kill(first.pid, signal.SIGKILL)  # the watcher itself, as the OOM killer would
        first.wait(timeout=30)
    finally:
        kill_group(first)  # and its orphaned workers
    unfinished = leftover_claims(hot) + [hot / name for name in inputs if (hot / name).exists()]
    assert unfinished, "the batch finished before the kill: the test must kill it in the middle"
    broken_done_before = (hot / "failed" / "broken.jpg").exists()

    command = [sys.executable, "-m", "pipeline.cli", "watch", str(hot), "--store", str(store), "--once"]
    command += ["--stable-seconds", "0.3", "--poll-interval", "0.1", "--workers", "2", "-q"]
    second = subprocess.run(command, cwd=REPO, capture_output=True, timeout=300)
    assert second.returncode == (0 if broken_done_before else 1), second.stderr.decode()

    assert names(hot / "done") == sorted(good)
    assert names(hot / "failed") == ["broken.jpg", "broken.jpg" + ERROR_SUFFIX]
    assert not leftover_claims(hot)
    assert names(hot / ".processing") == [], "the dead watcher's folder was taken over and removed"
    assert [name for name in names(hot) if name not in {".processing", "done", "failed"}] == []
    # Exactly once in the store and in the index.
    expected = sorted(sha256(inputs[name]) for name in good)
    assert sorted(indexed_ids(store)) == expected
    assert sorted(p.parent.name for p in stored_results(store)) == expected
    assert len(list(store.glob("documents/*/*/original"))) == len(good)


@pytest.mark.slow
def test_two_watchers_on_one_folder_process_each_file_once(tmp_path: Path) -> None:
    hot, store = tmp_path / "hot", tmp_path / "store"
    hot.mkdir()
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    watchers = [start_watch(hot, store, log, "--workers", "1") for log in logs]
    inputs: dict[str, bytes] = {}
    try:

        def started() -> bool:
            for process, log in zip(watchers, logs, strict=True):
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                    raise AssertionError(
                        f"a watcher exited with {process.returncode} before starting:\n{tail}"
                    )
            return all(
                log.exists() and any("watching" in str(r["message"]) for r in log_records(log))
                for log in logs
            )

        # Generous: on a loaded CI machine two fresh interpreters importing the OCR stack are slow.
        wait_for(started, 180, "both watchers to start", logs)
        for n in range(24):
            sample = ("vat_e_general.pdf", "fully_digital_general.pdf", "en_invoice.pdf")[n % 3]
            name, data = f"invoice {n:02d}.pdf", distinct_pdf(sample, 100 + n)
            inputs[name] = data
            if n % 2:  # written in place (a close event) ...
                (hot / name).write_bytes(data)
            else:  # ... or written under a temporary name and renamed in
                (hot / f"{name}.part").write_bytes(data)
                (hot / f"{name}.part").rename(hot / name)
            time.sleep(0.02)
        wait_for(lambda: len(names(hot / "done")) == len(inputs), 240, "every file to be done")
        for process in watchers:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in watchers]
    finally:
        for process in watchers:
            kill_group(process)
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]

    records = [record for log in logs for record in log_records(log)]
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
    processed = Counter(str(r["path"]) for r in records if str(r["message"]).startswith("processing "))
    finished = Counter(str(r["path"]) for r in records if str(r["message"]).startswith("done "))
    assert processed == Counter(list(inputs)), "each file processed by exactly one watcher, once"
    assert finished == Counter(list(inputs))
    assert all(r.get("document") for r in records if str(r["message"]).startswith("done "))
    assert names(hot / "done") == sorted(inputs)
    assert names(hot / "failed") == []
    assert names(hot / ".processing") == [], "a clean stop removes the watcher's own folder"
    assert sorted(indexed_ids(store)) == sorted(sha256(data) for data in inputs.values())
    assert len(stored_results(store)) == len(inputs)
