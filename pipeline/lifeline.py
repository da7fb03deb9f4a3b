"""Child processes that die with the process that started them.

A watcher killed with SIGKILL (or by the OOM killer) cannot stop its workers, and an orphaned
worker keeps its OCR models (0.5-1 GB) in memory for ever. Each worker therefore watches its
parent itself and exits as soon as the parent is gone.

``PR_SET_PDEATHSIG`` is not used: Linux sends it when the *thread* that forked the child ends,
and pool workers may be started from any thread of the parent. Polling ``getppid`` is portable
and costs nothing measurable.

Servers started for tests and benchmarks (PostgreSQL through ``pg_ctl``, ``weed``) do not run
Python code of ours; ``stop_when_orphaned`` gives each a small watchdog process that stops it
when its starter is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25


def die_with_parent(parent_pid: int, poll_seconds: float = POLL_SECONDS) -> threading.Thread | None:
    """Exit this process at once when ``parent_pid`` is no longer its parent.

    Call it first thing in a child process, with the parent's pid as the parent saw it (passed
    down, since the parent may already be gone when the child starts). Returns the watchdog
    thread, or None when the parent was already gone (the process then exits).
    """
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                # No clean-up: the parent owns every result; a worker only computes.
                os._exit(1)
            threading.Event().wait(poll_seconds)

    thread = threading.Thread(target=watch, name="die-with-parent", daemon=True)
    thread.start()
    return thread


def process_pool(workers: int) -> ProcessPoolExecutor:
    """Spawned worker processes that die with this one (a killed benchmark leaves none behind)."""
    return ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=die_with_parent, initargs=(os.getpid(),)
    )


# The watchdog of stop_when_orphaned, run by a fresh interpreter (nothing of the pipeline imported):
# wait until the starter is gone, signal the server, wait for it to end, remove its folder.
_WATCHDOG = """
import os, shutil, sys, time
folder = sys.argv[5]
starter, target, sig, group = (int(a) for a in sys.argv[1:5])
while os.getppid() == starter:
    time.sleep(0.25)
try:
    (os.killpg if group else os.kill)(target, sig)
except OSError:
    pass
def ended(pid):  # gone, or a zombie nobody has reaped yet
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] in ("Z", "X")
    except OSError:
        return True
deadline = time.monotonic() + 30
while not ended(target) and time.monotonic() < deadline:
    time.sleep(0.1)
if folder:
    shutil.rmtree(folder, ignore_errors=True)
"""


def stop_when_orphaned(
    pid: int, sig: signal.Signals, *, group: bool = False, remove: os.PathLike[str] | str | None = None
) -> subprocess.Popen[bytes]:
    """Send ``sig`` to ``pid`` (to its process group with ``group``) once this process is gone,
    then remove the folder ``remove``.

    For servers that do not die with their starter: ``pg_ctl`` detaches PostgreSQL, and ``weed``
    runs in a session of its own. A test run or a benchmark killed with SIGKILL would leave them
    running for ever. The watchdog is a small process in a session of its own; stop the server
    normally by killing it first (``Popen.kill``), so that it does nothing.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WATCHDOG,
            str(os.getpid()),
            str(pid),
            str(int(sig)),
            str(int(group)),
            os.fspath(remove) if remove is not None else "",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def end_watchdog(watchdog: subprocess.Popen[bytes] | None) -> None:
    """Stop a ``stop_when_orphaned`` watchdog (its server is being stopped normally)."""
    if watchdog is not None and watchdog.poll() is None:
        watchdog.kill()
        watchdog.wait(10)
