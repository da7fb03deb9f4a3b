"""Workers die with their parent: a watcher or a batch killed with SIGKILL leaves no process behind.

Real processes: ``invoices watch`` and ``invoices ingest`` are started in a session of their own,
only the parent is killed, and every process of that session must be gone within 5 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest

from pipeline.lifeline import die_with_parent
from tests.bad_inputs import distinct_pdf
from tests.conftest import REPO, SAMPLES


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()  # [state, ppid, pgrp, session, ...]


def live_processes_of_session(session: int) -> list[int]:
    """Processes of the session that are still running (zombies have exited: not counted)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and fields[0] != "Z" and fields[3] == str(session):
            found.append(int(entry.name))
    return found


def workers_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if fields and fields[1] == str(pid) and b"spawn_main" in cmdline:
                children.append(int(entry.name))
    return children


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def kill_parent_and_check(command: list[str], tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    with open(log, "wb") as stderr:
        parent = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
    try:
        started = wait_for(lambda: len(workers_of(parent.pid)) >= 2, 120)
        assert started, f"no workers started:\n{log.read_text(errors='replace')[-2000:]}"
        time.sleep(1.0)  # in the middle of the batch: the workers are loading models or OCRing
        assert parent.poll() is None, "the batch ended before the kill: the test must kill it mid-batch"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        gone = wait_for(lambda: not live_processes_of_session(parent.pid), 5.0)
        left = live_processes_of_session(parent.pid)
        assert gone, f"processes left 5 s after the parent was killed: {left}"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)


def _scans(folder: Path, count: int) -> None:
    """Images that need OCR (slow enough to be caught mid-batch), each a distinct file."""
    folder.mkdir()
    data = (SAMPLES / "vat_special_clean.png").read_bytes()
    for n in range(count):
        (folder / f"scan {n}.png").write_bytes(data + b"\0" * (n + 1))  # PNG ignores trailing bytes
    for n in range(4):
        (folder / f"pdf {n}.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", n))


@pytest.mark.slow
def test_ingest_killed_leaves_no_worker(tmp_path: Path) -> None:
    _scans(tmp_path / "in", 8)
    command = [sys.executable, "-m", "pipeline.cli", "-q", "ingest", str(tmp_path / "in")]
    command += ["--store", str(tmp_path / "store"), "--workers", "2"]
    kill_parent_and_check(command, tmp_path)


@pytest.mark.slow
def test_watcher_killed_leaves_no_worker(tmp_path: Path) -> None:
    _scans(tmp_path / "hot", 8)
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
