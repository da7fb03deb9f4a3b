"""Child processes that die with the process that started them.

A watcher killed with SIGKILL (or by the OOM killer) cannot stop its workers, and an orphaned
worker keeps its OCR models (0.5-1 GB) in memory for ever. Each worker therefore watches its
parent itself and exits as soon as the parent is gone.

``PR_SET_PDEATHSIG`` is not used: Linux sends it when the *thread* that forked the child ends,
and pool workers may be started from any thread of the parent. Polling ``getppid`` is portable
and costs nothing measurable.
"""

from __future__ import annotations

import logging
import os
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
