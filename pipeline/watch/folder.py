"""The hot folder on disk: its layout, which names are never taken, and moves that never overwrite.

Nothing here processes a document; the watcher (``pipeline.watch.watcher``) decides what moves where.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from pathlib import Path

from pipeline.errors import ConfigError, StorageError

PROCESSING = ".processing"
DONE = "done"
FAILED = "failed"
ERROR_SUFFIX = ".error.txt"
LOCK_NAME = ".lock"

# Names writers use while a file is not finished, and names that are not documents.
IGNORED_PREFIXES = (".", "~$", "~lock.")
IGNORED_SUFFIXES = (
    ".part",
    ".partial",
    ".tmp",
    ".temp",
    ".crdownload",
    ".download",
    ".filepart",
    ".swp",
    ".lock",
    "~",
    ERROR_SUFFIX,
)


def ignored(name: str) -> bool:
    """Temporary, partial, hidden and lock-file names: never taken from the inbox."""
    lower = name.lower()
    return lower.startswith(IGNORED_PREFIXES) or lower.endswith(IGNORED_SUFFIXES)


class HotFolder:
    """Paths and moves; nothing here processes a document."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processing = root / PROCESSING
        self.done = root / DONE
        self.failed = root / FAILED

    def create(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(f"hot folder {self.root} does not exist or is not a folder")
        try:
            for folder in (self.processing, self.done, self.failed):
                folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the folders of the hot folder {self.root}: {exc.strerror}"
            ) from exc

    def inbox(self) -> list[os.DirEntry[str]]:
        """The entries waiting in the inbox: files, links and special files; not folders, not ignored."""
        try:
            with os.scandir(self.root) as entries:
                return sorted(
                    (
                        entry
                        for entry in entries
                        if not ignored(entry.name) and not entry.is_dir(follow_symlinks=False)
                    ),
                    key=lambda entry: entry.name,
                )
        except OSError as exc:
            raise StorageError(f"cannot list the hot folder {self.root}: {exc.strerror}") from exc

    def counts(self) -> dict[str, int]:
        """Files per state: inbox, processing, done, failed."""

        def files(folder: Path, skip: tuple[str, ...] = ()) -> int:
            try:
                return sum(1 for p in folder.iterdir() if not p.is_dir() and not p.name.endswith(skip))
            except OSError:
                return 0

        processing = 0
        with contextlib.suppress(OSError):
            for owner in self.processing.iterdir():
                if owner.is_dir():
                    processing += sum(1 for p in owner.iterdir() if p.name != LOCK_NAME)
        return {
            "inbox": len(self.inbox()) if self.root.is_dir() else 0,
            "processing": processing,
            "done": files(self.done),
            "failed": files(self.failed, (ERROR_SUFFIX,)),
        }


def move_unique(source: Path, folder: Path, name: str) -> Path:
    """Move ``source`` into ``folder`` as ``name``, or ``name (2)`` ... if taken; never overwrites.

    ``link`` + ``unlink`` fails atomically when the target exists (a plain rename would replace
    it); file systems without hard links fall back to check-then-rename.
    """
    stem, suffix = split_name(name)
    for n in range(1, 10_000):
        target = folder / (name if n == 1 else f"{stem} ({n}){suffix}")
        try:
            os.link(source, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            if target.exists() or target.is_symlink():
                continue
            source.rename(target)
            return target
        os.unlink(source)
        return target
    raise StorageError(f"no free name for {name} in {folder}")


def split_name(name: str) -> tuple[str, str]:
    """``"scan.pdf"`` -> ``("scan", ".pdf")``; a leading dot is part of the stem, not a suffix."""
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary name, fsync, then rename)."""
    temp = path.with_name(f".tmp-{secrets.token_hex(4)}-{path.name}")
    with open(temp, "w", encoding="utf-8", errors="replace") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def older_than(path: Path, seconds: float) -> bool:
    """Whether ``path`` was last modified more than ``seconds`` ago (False if it is gone)."""
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False
