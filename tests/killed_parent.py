"""Killing a parent process with SIGKILL mid-batch and checking that none of its workers is left behind.

``scans(folder, count)`` writes a batch slow enough to be caught mid-way; ``kill_parent_and_check(command,
tmp_path)`` starts the command in a session of its own, kills only the parent once its workers run, and
asserts every process of that session is gone within 5 s.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from tests.bad_inputs import distinct_pdf
from tests.conftest import REPO, SAMPLES


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()  # [state, ppid, pgrp, session, ...]


def running(pid: int) -> bool:
    """Whether the process is still running (a zombie has exited: only its exit status is left)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


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


def scans(folder: Path, count: int) -> None:
    """Images that need OCR (slow enough to be caught mid-batch), each a distinct file."""
    folder.mkdir()
    data = (SAMPLES / "vat_special_clean.png").read_bytes()
    for n in range(count):
        (folder / f"scan {n}.png").write_bytes(data + b"\0" * (n + 1))  # PNG ignores trailing bytes
    for n in range(4):
        (folder / f"pdf {n}.pdf").write_bytes(distinct_pdf("vat_e_general.pdf", n))
