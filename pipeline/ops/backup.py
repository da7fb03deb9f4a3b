"""Backups of a store, and restores from them: ``invoices backup DEST``, ``invoices restore SRC``.

Keys are content-addressed (``documents/<id[:2]>/<id>/...``, the id being the original's SHA-256)
and originals, page images and review records are never rewritten, so an object the backup
already holds at the same size is the same object: a backup copies only what is new. result.json
and error.json can be rewritten (a review, a retry), so those are compared byte for byte.

Every copied object is read back from the destination and compared (SHA-256) with what was
read from the source. An original whose bytes do not match its id, or a result.json that does
not name its document, is not copied (the backup keeps its good copy) and is reported. Within a
document, result.json is copied last, as the store writes it: a backup cut short never holds a
result without its original. Nothing is deleted from the destination.

The index is not copied: it is derived from the objects, and ``restore`` rebuilds it. Tables
that only the index holds (``reconciliation``) are re-made by running ``invoices reconcile``
again on the restored store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import S3Settings
from pipeline.errors import NotFound, StorageError
from pipeline.model import InvoiceResult
from pipeline.ops import HEALTH_KEY_PREFIX
from pipeline.store import Store, is_s3_location
from pipeline.store.objects import LocalObjectStore, ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

# Objects that are written once and never change: present at the same size means the same.
IMMUTABLE_SUFFIXES = ("/original", ".png")


@dataclass
class CopyReport:
    source: str
    destination: str
    copied: int = 0
    copied_bytes: int = 0
    unchanged: int = 0  # the destination had it already
    kept: int = 0  # differs in the destination and was left as it is (restore never overwrites)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (key, why): not copied
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.refused


def open_objects(location: str, s3: S3Settings | None = None) -> ObjectStore:
    """The objects of a backup or a store: a directory, or ``s3://bucket/prefix`` (checked on open)."""
    if is_s3_location(location):
        from pipeline.store.s3 import S3ObjectStore

        objects = S3ObjectStore(location.strip(), s3)
        objects.check()
        return objects
    return LocalObjectStore(Path(location).expanduser())


def _immutable(key: str) -> bool:
    return key.endswith(IMMUTABLE_SUFFIXES) or "/reviews/" in key


def _copied_last(key: str) -> bool:
    return key.endswith(("/result.json", "/error.json"))


def _wanted(key: str) -> bool:
    return key.startswith(("documents/", "failed/")) and not key.startswith(HEALTH_KEY_PREFIX)


def copy_store(
    source: ObjectStore,
    destination: ObjectStore,
    overwrite: bool = True,
    workers: int = 8,
    progress: Callable[[str], None] | None = None,
) -> CopyReport:
    """Copy every object of ``source`` that ``destination`` lacks (or holds in an older version).

    With ``overwrite`` False (a restore into a store that has data), an object the destination
    holds in another version is kept, and counted in ``kept``.
    """
    started = time.perf_counter()
    report = CopyReport(source.location, destination.location)
    present = {info.key: info for info in destination.list("") if _wanted(info.key)}
    todo = sorted((info for info in source.list("") if _wanted(info.key)), key=lambda info: info.key)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for last in (False, True):  # originals and pages before the results that name them
            batch = [info for info in todo if _copied_last(info.key) == last]
            for key, outcome, size in pool.map(
                lambda info: _copy_one(source, destination, info, present.get(info.key), overwrite), batch
            ):
                if outcome == "copied":
                    report.copied += 1
                    report.copied_bytes += size
                    if progress is not None:
                        progress(key)
                elif outcome == "unchanged":
                    report.unchanged += 1
                elif outcome == "kept":
                    report.kept += 1
                else:
                    report.refused.append((key, outcome))
    report.seconds = time.perf_counter() - started
    log.info(
        "copied %d objects (%.1f MB) from %s to %s, %d there already, %d refused, in %.1f s",
        report.copied,
        report.copied_bytes / 1e6,
        source.location,
        destination.location,
        report.unchanged,
        len(report.refused),
        report.seconds,
    )
    return report


def _copy_one(
    source: ObjectStore, destination: ObjectStore, info: ObjectInfo, there: ObjectInfo | None, overwrite: bool
) -> tuple[str, str, int]:
    key = info.key
    if there is not None and _immutable(key) and there.size == info.size and info.size:
        return key, "unchanged", 0
    try:
        data, meta = source.get_with_metadata(key)
    except NotFound:
        return key, "unchanged", 0  # deleted since listed: nothing to copy
    except StorageError as exc:
        return key, f"cannot read it: {exc}", 0
    why = _invalid(key, data)
    if why:
        return key, f"not copied: {why} (run invoices verify --deep)", 0
    if there is not None:
        try:
            current = destination.get(key)
        except NotFound:
            current = None
        if current == data:
            return key, "unchanged", 0
        if current is not None and not overwrite:
            return key, "kept", 0
    content_type = meta.pop("content_type", "application/octet-stream")
    try:
        destination.put(key, data, content_type, meta)
        copied = destination.get(key)
    except (StorageError, NotFound) as exc:
        return key, f"cannot write it: {exc}", 0
    if hashlib.sha256(copied).digest() != hashlib.sha256(data).digest():
        return key, "the copy read back differs from the source", 0
    return key, "copied", len(data)


def _invalid(key: str, data: bytes) -> str:
    """Why an object must not be copied (it would spread damage into the backup), or ""."""
    parts = key.split("/")
    if not key.startswith("documents/") or len(parts) < 4:
        return ""
    if key.endswith("/original") and hashlib.sha256(data).hexdigest() != parts[2]:
        return "the original's SHA-256 is not its id"
    if key.endswith("/result.json"):
        try:
            if InvoiceResult.from_dict(json.loads(data)).document_id != parts[2]:
                return "result.json belongs to another document"
        except (ValueError, KeyError, TypeError) as exc:
            return f"result.json cannot be read ({type(exc).__name__})"
    return ""


def backup(store: Store, destination: ObjectStore, workers: int = 8) -> CopyReport:
    """Bring ``destination`` up to date with ``store`` (incremental)."""
    return copy_store(store.objects, destination, overwrite=True, workers=workers)


def restore(source: ObjectStore, store: Store, workers: int = 8) -> CopyReport:
    """Copy a backup into ``store`` (objects the store holds in another version are kept), then
    rebuild the store's index from its objects."""
    report = copy_store(source, store.objects, overwrite=False, workers=workers)
    store.reindex()
    return report
