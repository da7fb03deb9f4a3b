"""Workers die with their parent: a watcher or a batch killed with SIGKILL leaves no process behind.

Real processes: ``invoices watch`` and ``invoices ingest`` are started in a session of their own,
only the parent is killed, and every process of that session must be gone within 5 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.lifeline import die_with_parent
from tests.conftest import REPO
from tests.killed_parent import kill_parent_and_check, running, scans, wait_for


@pytest.mark.slow
def test_ingest_killed_leaves_no_worker(tmp_path: Path) -> None:
    scans(tmp_path / "in", 8)
    command = [sys.executable, "-m", "pipeline.cli", "-q", "ingest", str(tmp_path / "in")]
    command += ["--store", str(tmp_path / "store"), "--workers", "2"]
    kill_parent_and_check(command, tmp_path)


@pytest.mark.slow
def test_watcher_killed_leaves_no_worker(tmp_path: Path) -> None:
    scans(tmp_path / "hot", 8)
    command = [sys.executable, "-m", "pipeline.cli", "-q", "watch", str(tmp_path / "hot")]
    command += ["--store", str(tmp_path / "store"), "--workers", "2", "--stable-seconds", "0.1"]
    kill_parent_and_check(command, tmp_path)


def test_die_with_parent_exits_when_the_parent_is_not_the_given_one() -> None:
    # A child whose parent is already gone (here: a pid that is not its parent) exits at once.
    code = "import os, sys; from pipeline.lifeline import die_with_parent; die_with_parent(1); sys.exit(0)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=60)
    assert done.returncode == 1


def test_die_with_parent_keeps_running_while_the_parent_lives() -> None:
    thread = die_with_parent(os.getppid(), poll_seconds=0.01)
    assert isinstance(thread, threading.Thread)
    time.sleep(0.1)
    assert thread.is_alive()


@pytest.mark.slow
def test_test_servers_stop_when_their_starter_is_killed(tmp_path: Path) -> None:
    # PostgreSQL (detached by pg_ctl) and weed (a session of its own) do not die with their starter.
    starter = """
import sys, time
from pathlib import Path
from pipeline.store.pglocal import LocalPostgres
from pipeline.store.seaweedfs import LocalSeaweedFS
pg = LocalPostgres()
pg.start()
weed = LocalSeaweedFS(Path(sys.argv[1]) / "weed", "key-id", "secret-key")
weed.start()
print(pg.postmaster_pid, weed._process.pid, pg.root, flush=True)
time.sleep(600)
"""
    process = subprocess.Popen(
        [sys.executable, "-c", starter, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        pg_text, weed_text, pg_root = process.stdout.readline().split()
        pg_pid, weed_pid = int(pg_text), int(weed_text)
        assert running(pg_pid) and running(weed_pid)
    finally:
        process.kill()
        process.wait()
    wait_for(lambda: not (running(pg_pid) or running(weed_pid) or Path(pg_root).exists()), 20)
    assert not running(pg_pid), "PostgreSQL outlived the process that started it"
    assert not running(weed_pid), "weed outlived the process that started it"
    assert not Path(pg_root).exists(), "the PostgreSQL folder was left behind"
