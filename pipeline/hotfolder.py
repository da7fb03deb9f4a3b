"""What a person does with a hot folder besides watching it: see what failed and why, retry one.

``pipeline.watch`` moves files; this module only reads ``failed/`` and puts one file back into the
inbox (a rename inside the folder, never overwriting), where the running watcher takes it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError, NotFound, StorageError
from pipeline.watch import ERROR_SUFFIX, HotFolder, ignored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailedFile:
    name: str
    size: int
    failed_at: float
    reason: str  # the first line of <name>.error.txt
    details: str  # the whole error file

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "size": self.size,
            "failed_at": self.failed_at,
            "reason": self.reason,
            "details": self.details,
        }


def failed_files(folder: HotFolder, limit: int = 500) -> list[FailedFile]:
    """The files in ``failed/``, newest first, each with the reason the watcher wrote beside it."""
    try:
        entries = [
            entry
            for entry in os.scandir(folder.failed)
            if entry.is_file(follow_symlinks=False) and not entry.name.endswith(ERROR_SUFFIX)
        ]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot list {folder.failed}: {exc.strerror}") from exc
    out = []
    for entry in entries:
        info = entry.stat(follow_symlinks=False)
        details = ""
        with contextlib.suppress(OSError):
            details = (folder.failed / (entry.name + ERROR_SUFFIX)).read_text("utf-8", errors="replace")
        reason = details.strip().splitlines()[0] if details.strip() else "(no reason was written)"
        out.append(FailedFile(entry.name, info.st_size, info.st_mtime, reason, details))
    out.sort(key=lambda item: (-item.failed_at, item.name))
    return out[:limit]


def retry_failed(folder: HotFolder, name: str) -> Path:
    """Move one failed file back into the inbox (as ``name (2)`` if the inbox has that name); its
    error file goes. Returns where it is now."""
    if not name or name != Path(name).name or name in (".", "..") or ignored(name):
        raise InputError(f"not a file name in failed/: {name!r}")
    source = folder.failed / name
    if not source.is_file() or source.is_symlink():
        raise NotFound(f"no failed file {name!r} in {folder.failed}")
    # A rename, as the watcher's own retry does: inotify reports it as a finished file at once (a
    # hard link would look like a writer still creating the file).
    stem, dot, suffix = name.rpartition(".") if "." in name[1:] else (name, "", "")
    target, n = folder.root / name, 1
    while target.exists() or target.is_symlink():
        n += 1
        target = folder.root / (f"{stem} ({n}).{suffix}" if dot else f"{name} ({n})")
    try:
        source.rename(target)
    except OSError as exc:
        raise StorageError(f"cannot move {name} back into {folder.root}: {exc.strerror}") from exc
    with contextlib.suppress(FileNotFoundError):
        (folder.failed / (name + ERROR_SUFFIX)).unlink()
    log.info("retry: %s moved from failed/ back into the inbox as %s", name, target.name)
    return target
