"""The files that go in: found in folders, read safely, split out of ZIP bundles, made into ``Job``s.

Every read refuses symbolic links, special files and oversize files with an ``InputError``
that names the reason; nothing here runs a worker or touches the store.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import Settings
from pipeline.errors import InputError, TooLarge
from pipeline.load import SUPPORTED_EXTENSIONS, sniff_format
from pipeline.load.bundles import expand_bundle
from pipeline.process import content_id


class FileRefused(InputError):
    """A directory entry that is not taken on purpose: a symbolic link, a device, a FIFO."""


class FileUnreadable(InputError):
    """The file could not be read (permissions, I/O error, vanished)."""


@dataclass
class Job:
    """One document to process: its bytes, where they came from and the caller's handle."""

    path: Path
    data: bytes
    name: str
    document_id: str = ""
    tag: Any = None
    followers: list[Job] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.document_id:
            self.document_id = content_id(self.data)


def source_name(path: Path) -> str:
    """The file name as text that can be stored: undecodable bytes become U+FFFD."""
    return os.fsencode(path.name).decode("utf-8", "replace")


def discover(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """Files to ingest, and files in folders that are skipped because of their type.

    A file named on the command line is always tried (its content decides its type);
    inside folders only supported extensions are taken, hidden files and folders never.
    Symbolic links found inside folders are listed (not followed): ``run_batch`` refuses them
    with their target as the reason, unless they are named in its ``follow``.
    """
    chosen: list[Path] = []
    skipped: list[Path] = []
    for path in paths:
        if not path.is_dir():
            chosen.append(path)
            continue
        for folder, dirs, names in os.walk(path, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                candidate = Path(folder) / name
                if name.startswith("."):
                    continue
                if candidate.suffix.lower() in SUPPORTED_EXTENSIONS:
                    chosen.append(candidate)
                else:
                    skipped.append(candidate)
    return chosen, skipped


@dataclass
class Refused:
    """A bundle member that is not processed: refused (failed) or not a document (skipped)."""

    path: Path
    name: str
    error: InputError
    skipped: bool = False


def bundle_members(
    path: Path, data: bytes, settings: Settings, tag: Any = None
) -> list[Job | Refused] | None:
    """The documents of a ZIP bundle as jobs (``bundle.zip!inner/path``), or None for any other file.

    A bundle that cannot be opened is one refusal; a refused member does not stop the others.
    """
    try:
        if sniff_format(data) != "zip":
            return None
    except InputError:
        return None
    if path.suffix.lower() != ".zip" and not zipfile.is_zipfile(io.BytesIO(data)):
        return None  # a damaged ZIP named otherwise (a .docx): one document, refused with its format
    name = source_name(path)
    try:
        members = expand_bundle(data, name, settings)
    except InputError as exc:
        return [Refused(path, name, exc)]
    out: list[Job | Refused] = []
    for member in members:
        member_path = Path(f"{path}!{member.name.split('!', 1)[1]}")
        if member.error is not None:
            out.append(Refused(member_path, member.name, member.error, member.skipped))
        else:
            out.append(Job(member_path, member.data, member.name, tag=tag))
    if not out:
        out.append(Refused(path, name, InputError("the ZIP file holds no files"), skipped=True))
    return out


def read_input(path: Path, max_bytes: int, follow_symlinks: bool = False) -> bytes:
    """A regular file's bytes; raise ``InputError`` for links, special files, oversize and I/O errors.

    The file is opened without following a symbolic link (``O_NOFOLLOW``) and checked with
    ``fstat`` on the open descriptor, so what is checked is what is read.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (not follow_symlinks and path.is_symlink()):
            raise FileRefused(symlink_reason(path)) from exc
        raise FileUnreadable(f"cannot read the file: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("not a regular file (a device, FIFO, socket or folder): refused")
        if info.st_size > max_bytes:
            raise TooLarge(f"file is {info.st_size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit")
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise TooLarge(f"file grew over the {max_bytes / 1e6:.0f} MB limit while being read")
        return data
    except OSError as exc:
        raise FileUnreadable(f"cannot read the file: {exc.strerror}") from exc
    finally:
        os.close(fd)


def symlink_reason(path: Path, folder: Path | None = None) -> str:
    """Why a symbolic link is refused, naming where it points."""
    try:
        target = str(path.readlink())
    except OSError:
        target = "?"
    resolved = Path(os.path.realpath(path))
    where = folder if folder is not None else path.parent
    outside = not resolved.is_relative_to(os.path.realpath(where))
    return (
        f"symbolic link to {target!s}"
        + (" (outside the folder)" if outside else "")
        + ": refused, links are not followed (put the file itself here)"
    )
