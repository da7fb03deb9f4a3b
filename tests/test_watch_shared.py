"""Hot folder across machines: claims through the shared index (both backends), not flock."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.store import open_store
from pipeline.watch import SharedClaims, WatchOptions, watch
from tests.bad_inputs import distinct_pdf
from tests.conftest import execute_sql


def test_claims_are_unique_and_a_dead_owners_are_taken_over(
    tmp_path: Path, index_location: str | None
) -> None:
    store = open_store(str(tmp_path / "store"), index=index_location)
    index = store.index
    try:
        index.heartbeat("alpha")
        index.heartbeat("beta")
        assert index.claim("f/a.pdf", "alpha")
        assert not index.claim("f/a.pdf", "beta"), "alpha is alive: its claim stands"
        assert index.claim("f/a.pdf", "alpha"), "the owner may claim again"
        assert index.claim("f/b.pdf", "beta")
        index.release("f/a.pdf", "beta")  # not beta's: nothing happens
        assert not index.claim("f/a.pdf", "beta")
        index.release("f/a.pdf", "alpha")
        assert index.claim("f/a.pdf", "beta"), "released: free for anyone"
        # beta dies: its heartbeat goes stale, its claims are taken over.
        execute_sql(
            index, "UPDATE claim_owners SET heartbeat = ? WHERE owner = ?", (time.time() - 120, "beta")
        )
        assert not index.owner_alive("beta", 60) and index.owner_alive("alpha", 60)
        assert index.claim("f/b.pdf", "alpha", stale_after=60)
        assert not index.claim("f/b.pdf", "beta", stale_after=60)
        index.retire("alpha")
        assert not index.owner_alive("alpha", 60)
        assert index.claim("f/b.pdf", "gamma"), "a retired owner's claims are gone"
    finally:
        store.close()


def _inbox(folder: Path, count: int) -> None:
    folder.mkdir()
    for n in range(count):
        (folder / f"scan-{n:02d}.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", n))


@pytest.mark.slow
def test_two_watchers_on_one_folder_take_each_file_once(tmp_path: Path, pg_url: str) -> None:
    """Two watchers (as on two machines) on one folder, sharing a PostgreSQL index."""
    folder = tmp_path / "hot"
    _inbox(folder, 8)
    settings = Settings(store=str(tmp_path / "store"), index=pg_url)
    options = WatchOptions(
        workers=1, stable_seconds=0, poll_interval=0.05, use_inotify=False, once=True,
        handle_signals=False, shared_claims=True,
    )  # fmt: skip
    reports = []
    stores = [open_store(settings.store, settings.index) for _ in range(2)]

    def run(n: int) -> None:
        reports.append(watch(folder, settings, stores[n], options))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    try:
        assert sum(report.done for report in reports) == 8
        assert sorted(p.name for p in (folder / "done").iterdir()) == [f"scan-{n:02d}.pdf" for n in range(8)]
        assert len(stores[0].index.documents()) == 8
        assert not list((folder / ".processing").iterdir()), "both watchers tidied up"
        assert stores[0].index.claim(f"{(folder / SharedClaims.ID_FILE).read_text()}/scan-00.pdf", "x"), (
            "no claim left behind"
        )
    finally:
        for store in stores:
            store.close()


def test_a_dead_watchers_files_are_taken_over(tmp_path: Path, index_location: str | None) -> None:
    folder = tmp_path / "hot"
    folder.mkdir()
    store_dir = str(tmp_path / "store")
    store = open_store(store_dir, index=index_location)
    # A watcher on another machine claimed a file, then died (its heartbeat stopped long ago).
    (folder / SharedClaims.ID_FILE).write_text("share1")
    dead = folder / ".processing" / "otherhost-123-abc"
    dead.mkdir(parents=True)
    (dead / "scan.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", 99))
    store.index.heartbeat("otherhost-123-abc")
    assert store.index.claim("share1/scan.pdf", "otherhost-123-abc")
    execute_sql(store.index, "UPDATE claim_owners SET heartbeat = ?", (time.time() - 3600,))
    os.utime(dead, (time.time() - 3600, time.time() - 3600))
    store.close()
    args = ["watch", str(folder), "--once", "--poll", "--stable-seconds", "0", "--store", store_dir]
    if index_location:
        args += ["--index", index_location]
    assert main([*args, "--cluster", "local:1"]) == 0
    assert [p.name for p in (folder / "done").iterdir()] == ["scan.pdf"]
    assert not dead.exists()
    again = open_store(store_dir, index=index_location)
    try:
        (row,) = again.index.documents()
        assert row["source_name"] == "scan.pdf"
    finally:
        again.close()


def test_watch_cluster_refuses_a_directory_store_for_a_remote_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["watch", str(tmp_path), "--once", "--store", str(tmp_path / "s"), "--cluster", "tcp://10.0.0.9:8786"]
    )
    assert code == 2
    assert re.search(r"workers on other machines cannot see", capsys.readouterr().err)
