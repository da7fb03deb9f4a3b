"""inotify for the hot folder: what happens to the inbox's files, as ``(kind, name)`` events on a queue.

The watcher reads the events on its own thread (``Watcher._drain_events``): a file closed after
writing, or renamed in, is complete at once; one created or modified waits for its close. Without
inotify (network shares, no ``watchdog``) the watcher polls, and nothing here runs.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

# One logger for the whole package: log lines (``--log-json``'s "logger") and docs name ``pipeline.watch``.
log = logging.getLogger("pipeline.watch")


def start_inotify(
    root: Path,
    events: queue.SimpleQueue[tuple[str, str]],
    wake: threading.Event,
    poll_interval: float,
) -> Any:
    """Start a watchdog observer on ``root`` (not its subfolders) that puts ``(kind, name)`` on
    ``events`` and sets ``wake`` when a file is complete; None if inotify is not available here.

    ``poll_interval`` is only named in the log line saying the watcher polls instead.
    """
    try:
        from watchdog.events import (
            FileClosedEvent,
            FileCreatedEvent,
            FileDeletedEvent,
            FileModifiedEvent,
            FileMovedEvent,
            FileSystemEvent,
            FileSystemEventHandler,
        )
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:
        log.info("inotify is not available here: polling every %.1f s", poll_interval)
        return None

    folder = str(root)

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if event.is_directory:
                return
            kind = event.event_type
            if kind not in ("closed", "moved", "created", "modified", "deleted"):
                return
            path = os.fsdecode(event.dest_path if kind == "moved" else event.src_path)
            if str(Path(path).parent) == folder:
                events.put((kind, Path(path).name))
                if kind in ("closed", "moved"):
                    wake.set()

    # Full events: a file renamed in from elsewhere is a move (complete), not a creation.
    observer = InotifyObserver(generate_full_events=True)
    try:
        observer.schedule(
            Handler(),
            folder,
            recursive=False,
            event_filter=[
                FileClosedEvent,
                FileCreatedEvent,
                FileModifiedEvent,
                FileMovedEvent,
                FileDeletedEvent,
            ],
        )
        observer.start()
    except OSError as exc:  # the inotify watch limit, or a file system without inotify
        log.info("inotify unavailable (%s): polling every %.1f s", exc, poll_interval)
        return None
    return observer
