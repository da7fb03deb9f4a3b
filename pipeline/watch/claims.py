"""Claims: how a file becomes one watcher's, so that watchers sharing a folder take each file once.

A file is claimed by renaming it into the watcher's own ``.processing/<owner>/`` folder (``Claim``).
With ``shared_claims`` (watchers on several machines, where ``flock`` is not reliable) it is also
claimed in the shared index (``SharedClaims``), and a watcher is alive while its heartbeat is fresh.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError, StorageError
from pipeline.store import Store

# One logger for the whole package: log lines (``--log-json``'s "logger") and docs name ``pipeline.watch``.
log = logging.getLogger("pipeline.watch")


@dataclass
class Claim:
    path: Path  # in our processing folder
    name: str  # the name it had in the inbox


def owner_id() -> str:
    """This watcher's name: host, pid and a random part (a pid is reused after a restart)."""
    host = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class SharedClaims:
    """The hot folder's claims in the shared index, keyed by the folder's id and the file name.

    The folder's id is kept in ``HOTFOLDER/.hotfolder-id`` (created once), so watchers that mount the
    share at different paths agree on the keys.
    """

    ID_FILE = ".hotfolder-id"

    def __init__(self, store: Store, stale_seconds: float) -> None:
        self.index = store.index
        self.stale_seconds = stale_seconds
        self.folder_id = ""
        self._next_beat = 0.0

    def start(self, root: Path, owner: str) -> None:
        path = root / self.ID_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, secrets.token_hex(8).encode())
            os.close(fd)
        except FileExistsError:
            pass
        for _ in range(50):  # another watcher may be writing it this instant
            self.folder_id = path.read_text().strip()
            if self.folder_id:
                break
            time.sleep(0.02)
        if not self.folder_id:
            raise ConfigError(f"{path} is empty: delete it and start the watchers again")
        self.beat(owner, force=True)

    def beat(self, owner: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now >= self._next_beat:
            self.index.heartbeat(owner)
            self._next_beat = now + self.stale_seconds / 6

    def alive(self, owner: str) -> bool:
        return self.index.owner_alive(owner, self.stale_seconds)

    def claim(self, name: str, owner: str) -> bool:
        return self.index.claim(f"{self.folder_id}/{name}", owner, self.stale_seconds)

    def release(self, name: str, owner: str) -> None:
        try:
            self.index.release(f"{self.folder_id}/{name}", owner)
        except StorageError as exc:  # the claim goes stale and is taken over: nothing is lost
            log.warning("could not release the claim on %s: %s", name, exc)

    def retire(self, owner: str) -> None:
        with contextlib.suppress(StorageError):
            self.index.retire(owner)
