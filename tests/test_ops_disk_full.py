"""A full disk during ingest: the file fails with a clear reason, nothing half-written is indexed, and a
re-run completes. The store lives on a small tmpfs the test mounts (root only) and fills for real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.ops.verify import verify
from pipeline.store import open_store
from pipeline.watch import Watcher, WatchOptions
from tests.bad_inputs import distinct_pdf
from tests.waiting import wait_for


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Take all the space but about ``leave`` bytes."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_fails_the_file_clearly_and_a_rerun_completes(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, index = small_disk / "store", tmp_path / "index.sqlite"
    inputs = tmp_path / "in"
    inputs.mkdir()
    for n in range(2):  # an original of 80 kB fits; its page image (about 190 kB) does not
        (inputs / f"e-invoice {n}.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", n))
    common = ["--store", str(store), "--index", str(index), "--workers", "1"]
    open_store(str(store), index=index).close()  # the store and index exist before the disk fills
    filler = fill(small_disk, leave=120_000)

    assert main(["ingest", str(inputs), *common]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("the disk is full (No space left on device)") == 2, captured.err
    assert re.search(r"^failed\s+2$", captured.out, re.M), captured.out
    assert not list(store.rglob("result.json"))  # no record was committed
    assert not list(store.rglob(".tmp-*"))  # no half-written object left behind
    assert main(["query", *common[:4], "--format", "json", "--every-document"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # nothing half-written is indexed
    assert main(["verify", *common[:4], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] and len(report["incomplete"]) >= 1  # the cut-short saves, not problems

    filler.unlink()
    assert main(["ingest", str(inputs), *common]) == 0
    capsys.readouterr()
    assert main(["query", *common[:4], "--format", "json", "--every-document"]) == 0
    stored = json.loads(capsys.readouterr().out)
    assert sorted(row["source_name"] for row in stored) == ["e-invoice 0.pdf", "e-invoice 1.pdf"]
    assert main(["verify", "--deep", *common[:4], "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clean"] and report["incomplete"] == [] and report["documents"] == 2


def test_a_full_disk_sends_hot_folder_files_back_until_there_is_room(
    small_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The watcher: the file goes back to the inbox (the store is full, not the file bad), nothing is
    indexed meanwhile, and once space is freed the retry stores it."""
    store_dir, hot = small_disk / "store", tmp_path / "hot"
    hot.mkdir()
    index = tmp_path / "index.sqlite"
    open_store(str(store_dir), index=index).close()  # the store and index exist before the disk fills
    settings = Settings(store=str(store_dir), index=index)
    options = WatchOptions(
        workers=1,
        stable_seconds=0.1,
        poll_interval=0.05,
        use_inotify=False,
        handle_signals=False,
        retry_seconds=0.2,
    )
    watchers: list[Watcher] = []

    def run() -> None:  # an SQLite connection belongs to its thread: the watcher opens its own
        store = open_store(str(store_dir), index=index)
        try:
            watchers.append(Watcher(hot, settings, store, options, None))
            watchers[0].run()
        finally:
            store.close()

    filler = fill(small_disk, leave=120_000)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: bool(watchers), 30, "the watcher to start")
    watcher = watchers[0]
    store = open_store(str(store_dir), index=index)
    try:
        (hot / "e-invoice.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", 7))
        wait_for(lambda: watcher.report.retried >= 2, 120, "the save to fail and be retried")
        assert watcher.report.done == watcher.report.failed == 0
        assert any(
            "not stored, retried" in r.getMessage() and "the disk is full" in r.getMessage()
            for r in caplog.records
        )
        assert store.index.documents() == [] and not list(store_dir.rglob("result.json"))
        filler.unlink()
        wait_for(lambda: watcher.report.done == 1, 120, "the retry to store it once there is room")
        assert [row["source_name"] for row in store.index.documents()] == ["e-invoice.pdf"]
        assert sorted(p.name for p in (hot / "done").iterdir()) == ["e-invoice.pdf"]
        assert verify(store, deep=True).clean
    finally:
        watcher.stop()
        thread.join(timeout=60)
        store.close()
    assert not thread.is_alive()
