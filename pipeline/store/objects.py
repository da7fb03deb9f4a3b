"""Object storage: one interface, the local-directory backend (S3 shares the key layout).

Keys are content-addressed by the SHA-256 of the original file::

    documents/<id[:2]>/<id>/original          the file as received (create-only)
    documents/<id[:2]>/<id>/pages/<n>.png     normalised page images
    documents/<id[:2]>/<id>/result.json       the result; written last, so its presence
                                              means the record is complete
    failed/<id[:2]>/<id>/error.json           why a document could not be processed
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
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


def failure_key(document_id: str) -> str:
    return f"failed/{document_id[:2]}/{document_id}/error.json"


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
            raise StorageError(f"cannot write {key} in {self.root}: {exc.strerror}") from exc

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
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return
        for path in base.rglob("*"):
            name = path.name
            if path.is_file() and not name.endswith(self.META_SUFFIX) and not name.startswith(".tmp-"):
                relative = path.relative_to(self.root).as_posix()
                if not relative.startswith("index"):
                    yield relative

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
