"""Object storage: one interface, the local-directory backend (S3 shares the key layout).

Keys are content-addressed by the SHA-256 of the original file::

    documents/<id[:2]>/<id>/original          the file as received (create-only)
    documents/<id[:2]>/<id>/pages/<n>.png     normalised page images
    documents/<id[:2]>/<id>/result.json       the result; written last, so its presence
                                              means the record is complete
    documents/<id[:2]>/<id>/reviews/<stamp>.json  review records (one per review, create-only)
    failed/<id[:2]>/<id>/error.json           why a document could not be processed

Every backend must give the same guarantees: ``put(create_only=True)`` is atomic (exactly one of
two racing writers wins, the other gets False), a plain ``put`` replaces the object whole, and a
reader never sees a half-written object.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import NotFound, StorageError


def document_prefix(document_id: str) -> str:
    return f"documents/{document_id[:2]}/{document_id}"


def original_key(document_id: str) -> str:
    return f"{document_prefix(document_id)}/original"


def page_key(document_id: str, index: int) -> str:
    return f"{document_prefix(document_id)}/pages/{index + 1}.png"


def result_key(document_id: str) -> str:
    return f"{document_prefix(document_id)}/result.json"


def reviews_prefix(document_id: str) -> str:
    return f"{document_prefix(document_id)}/reviews/"


def review_key(document_id: str, stamp: str) -> str:
    return f"{reviews_prefix(document_id)}{stamp}.json"


def failure_key(document_id: str) -> str:
    return f"failed/{document_id[:2]}/{document_id}/error.json"


def write_error(exc: OSError) -> str:
    """Why a write failed, in words an operator acts on (a full disk is the usual one)."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full (No space left on device)"
    if exc.errno == errno.EDQUOT:
        return "the disk quota is used up (Disk quota exceeded)"
    if exc.errno == errno.EROFS:
        return "the store is on a read-only file system (Read-only file system)"
    return exc.strerror or str(exc)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float  # seconds since the epoch


class ObjectStore(ABC):
    """Bytes under string keys, with content type and small text metadata."""

    location: str

    @abstractmethod
    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        create_only: bool = False,
    ) -> bool:
        """Write an object; with ``create_only`` return False (and write nothing) if it exists."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """Read an object; raise ``NotFound`` if it is absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under ``prefix``, in no particular order."""

    @abstractmethod
    def delete(self, key: str) -> None: ...

    def metadata(self, key: str) -> dict[str, str]:
        return {}

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` with its size and modification time."""
        for key in self.keys(prefix):
            yield ObjectInfo(key, 0, 0.0)

    def get_with_metadata(self, key: str) -> tuple[bytes, dict[str, str]]:
        """The object and its metadata (one request where the backend allows it)."""
        return self.get(key), self.metadata(key)


class LocalObjectStore(ObjectStore):
    """A directory tree; metadata sits beside each object as ``<name>.meta.json``."""

    META_SUFFIX = ".meta.json"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the store directory {root}: {exc.strerror}") from exc

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"invalid object key {key!r}")
        return self.root / key

    def _write_atomic(self, path: Path, data: bytes, create_only: bool) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as temp:
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            if create_only:
                # link() fails if the target exists: two writers can never clobber each other.
                try:
                    os.link(temp_name, path)
                except FileExistsError:
                    return False
            else:
                os.replace(temp_name, path)
                temp_name = ""
            return True
        finally:
            if temp_name:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp_name)

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
        create_only: bool = False,
    ) -> bool:
        path = self._path(key)
        meta = json.dumps({"content_type": content_type, **(metadata or {})}, ensure_ascii=False).encode()
        try:
            created = self._write_atomic(path, data, create_only)
            if created:
                self._write_atomic(path.with_name(path.name + self.META_SUFFIX), meta, create_only=False)
            return created
        except OSError as exc:
            raise StorageError(f"cannot write {key} in {self.root}: {write_error(exc)}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no object {key} in {self.root}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {key} in {self.root}: {exc.strerror}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def keys(self, prefix: str = "") -> Iterator[str]:
        for path in self._files(prefix):
            yield path.relative_to(self.root).as_posix()

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for path in self._files(prefix):
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted since the walk saw it
                continue
            yield ObjectInfo(path.relative_to(self.root).as_posix(), stat.st_size, stat.st_mtime)

    def _files(self, prefix: str) -> Iterator[Path]:
        # A prefix is a string prefix of keys (as in S3), not only a folder.
        folder = prefix.rpartition("/")[0]
        base = self.root / folder if folder else self.root
        if not base.is_dir():
            return
        for path in base.rglob("*"):
            name = path.name
            if not path.is_file() or name.endswith(self.META_SUFFIX) or name.startswith(".tmp-"):
                continue
            relative = path.relative_to(self.root).as_posix()
            if relative.startswith(prefix) and not relative.startswith("index"):
                yield path

    def delete(self, key: str) -> None:
        path = self._path(key)
        for target in (path, path.with_name(path.name + self.META_SUFFIX)):
            with contextlib.suppress(FileNotFoundError):
                target.unlink()

    def metadata(self, key: str) -> dict[str, str]:
        meta_path = self._path(key)
        meta_path = meta_path.with_name(meta_path.name + self.META_SUFFIX)
        try:
            return dict(json.loads(meta_path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return {}
