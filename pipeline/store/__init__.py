"""Beside the stages: object storage plus the index (SQLite or PostgreSQL), behind one ``Store``.

The objects (a directory or an S3 bucket) are the source of truth; the index is derived from
them and ``Store.reindex`` rebuilds it from the objects alone.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import S3Settings, default_index_dir
from pipeline.errors import NotFound, StorageError, UnsupportedFormat
from pipeline.load import sniff_format
from pipeline.model import InvoiceResult
from pipeline.store.index import FailureEntry, Index, IndexEntry, Query, open_index
from pipeline.store.objects import (
    LocalObjectStore,
    ObjectInfo,
    ObjectStore,
    document_prefix,
    failure_key,
    original_key,
    page_key,
    result_key,
    review_key,
    reviews_prefix,
)

log = logging.getLogger(__name__)

INDEX_FILE = "index.sqlite"


@dataclass
class ReindexReport:
    documents: int = 0
    failures: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    seconds: float = 0.0


class Store:
    """Where results live: objects are the source of truth, the index answers queries."""

    def __init__(self, objects: ObjectStore, index: Index) -> None:
        self.objects = objects
        self.index = index

    @property
    def location(self) -> str:
        return self.objects.location

    def close(self) -> None:
        self.index.close()

    def is_stored(self, document_id: str) -> bool:
        """The record is complete (its result.json exists); the index is repaired if it missed it."""
        if not self.objects.exists(result_key(document_id)):
            return False
        if not self.index.has_document(document_id):
            # Stored by another machine, or the index write failed after the result was written.
            log.info("indexing %s, stored but missing from the index", document_id[:12])
            self._index_stored(document_id)
        return True

    def save(
        self,
        data: bytes,
        source_name: str,
        result: InvoiceResult,
        page_pngs: list[tuple[int, bytes]],
        body: bytes | None = None,
    ) -> bool:
        """Store the original, its pages, then the result (the commit point), then index it.

        Returns False when the document was already stored: nothing is overwritten. If a write
        fails part-way, ``StorageError`` is raised and there is no result.json: the record does not
        exist yet (``is_stored`` is False) and a re-run completes it. ``body`` is ``result_body(result)``
        when the caller has it already (a worker serialised it).
        """
        document_id = result.document_id
        if self.is_stored(document_id):
            return False
        put_original(self.objects, data, source_name, document_id)
        written = write_document(self.objects, source_name, result, page_pngs, body)
        self.index_written(result, written)
        return written.created

    def index_written(self, result: InvoiceResult, written: Written) -> None:
        """Index a document ``write_document`` wrote (here, or on a cluster worker)."""
        document_id = result.document_id
        if written.created:
            self.index.upsert(
                result,
                result_key(document_id),
                original_key(document_id),
                written.ingested_at,
                page_keys=written.page_keys,
            )
        else:  # another writer committed the same document first: index what it stored
            self._index_stored(document_id)

    def save_failure(self, document_id: str, source_name: str, error_type: str, message: str) -> None:
        failed_at = time.time()
        record = {
            "document_id": document_id,
            "source_name": source_name,
            "error_type": error_type,
            "message": message,
            "failed_at": failed_at,
        }
        self.objects.put(
            failure_key(document_id),
            json.dumps(record, ensure_ascii=False).encode(),
            "application/json",
            {"source_name": source_name},
        )
        self.index.record_failure(document_id, source_name, error_type, message, failed_at)

    def save_review(self, result: InvoiceResult, record: dict[str, Any], stamp: str | None = None) -> str:
        """Keep one review record (never overwritten) and the corrected result, then re-index.

        ``record`` is whatever the review tool wants to keep (who, when, what changed); the
        corrected ``result`` replaces result.json. Returns the review record's key.
        """
        key = self.save_review_record(result.document_id, record, stamp)
        self.replace_result(result)
        return key

    def save_review_record(self, document_id: str, record: dict[str, Any], stamp: str | None = None) -> str:
        """Store one review record, create-only: records are the audit trail and are never rewritten."""
        if stamp is None:
            now = time.time()
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{now % 1:.6f}"[1:] + "Z"
        key = review_key(document_id, stamp)
        body = json.dumps(record, ensure_ascii=False, indent=1).encode()
        if not self.objects.put(
            key, body, "application/json", {"document_id": document_id}, create_only=True
        ):
            raise StorageError(f"review record {key} already exists in {self.location}")
        return key

    def review_records(self, document_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Every review record of one document with its key, oldest first (keys sort by time)."""
        keys = sorted(key for key in self.objects.keys(reviews_prefix(document_id)) if key.endswith(".json"))
        return [(key, json.loads(self.objects.get(key))) for key in keys]

    def replace_result(self, result: InvoiceResult) -> None:
        """Write a reviewed result.json over the stored one (ingest metadata kept), then re-index."""
        document_id = result.document_id
        reviewed_at = time.time()
        try:
            _, old_meta = self.objects.get_with_metadata(result_key(document_id))
        except NotFound:
            old_meta = {}
        meta = {
            "source_name": old_meta.get("source_name", result.source_name),
            "ingested_at": old_meta.get("ingested_at", f"{reviewed_at:.6f}"),
            "reviewed_at": f"{reviewed_at:.6f}",
        }
        corrected = result_body(result)
        self.objects.put(result_key(document_id), corrected, "application/json", meta)
        self._index_stored(document_id)

    def load_result(self, document_id: str) -> InvoiceResult:
        matches = self.index.get(document_id)
        if not matches:
            raise NotFound(f"no document with id {document_id!r} in the store")
        if len(matches) > 1:
            raise NotFound(f"id prefix {document_id!r} is ambiguous: give more characters")
        data = self.objects.get(matches[0]["result_key"])
        return InvoiceResult.from_dict(json.loads(data))

    def query(self, query: Query) -> list[dict[str, Any]]:
        return self.index.query(query)

    # ---- rebuilding the index -------------------------------------------------------------

    def reindex(self, workers: int = 16) -> ReindexReport:
        """Rebuild the index from the objects alone, in one index transaction.

        Reads every ``documents/*/*/result.json`` (the current one, after reviews) and every
        ``failed/*/*/error.json``. A store error aborts and leaves the old index as it was;
        a result that cannot be parsed is skipped and reported.
        """
        started = time.perf_counter()
        report = ReindexReport()
        by_document: dict[str, list[ObjectInfo]] = defaultdict(list)
        for info in self.objects.list("documents/"):
            parts = info.key.split("/")
            if len(parts) >= 4:
                by_document[parts[2]].append(info)
        complete = {doc: infos for doc, infos in by_document.items() if _find(infos, result_key(doc))}
        failure_keys = [
            info.key
            for info in self.objects.list("failed/")
            if info.key.endswith("/error.json") and info.key.split("/")[2] not in complete
        ]
        with ThreadPoolExecutor(max(1, workers)) as pool:
            failures = list(_bounded_map(pool, self._load_failure, failure_keys, report))
            entries = _bounded_map(
                pool, lambda doc: self._load_entry(doc, complete[doc]), sorted(complete), report
            )
            report.documents, report.failures = self.index.rebuild(entries, failures)
        report.seconds = time.perf_counter() - started
        log.info(
            "reindexed %s: %d documents, %d failures, %d skipped in %.1f s",
            self.location,
            report.documents,
            report.failures,
            len(report.skipped),
            report.seconds,
        )
        return report

    def _index_stored(self, document_id: str) -> None:
        infos = list(self.objects.list(document_prefix(document_id) + "/"))
        self.index.upsert_many([self._load_entry(document_id, infos)])

    def _load_entry(self, document_id: str, infos: list[ObjectInfo]) -> IndexEntry:
        key = result_key(document_id)
        try:
            data, meta = self.objects.get_with_metadata(key)
        except NotFound as exc:  # deleted since it was listed
            raise _Unreadable(key, "vanished while reindexing") from exc
        try:
            result = InvoiceResult.from_dict(json.loads(data))
        except (ValueError, KeyError, TypeError) as exc:
            raise _Unreadable(key, f"{type(exc).__name__}: {exc}") from exc
        if result.document_id != document_id:
            raise _Unreadable(key, f"holds document {result.document_id[:12]}, not {document_id[:12]}")
        original = _find(infos, original_key(document_id))
        stored = _find(infos, key)
        ingested_at = (
            _float(meta.get("ingested_at")) or (original or stored or ObjectInfo("", 0, 0.0)).modified
        )
        pages = sorted(
            (info for info in infos if "/pages/" in info.key and info.key.endswith(".png")),
            key=lambda info: _page_number(info.key),
        )
        reviews = [info for info in infos if "/reviews/" in info.key and info.key.endswith(".json")]
        reviewed_at = _float(meta.get("reviewed_at")) or (
            max(r.modified for r in reviews) if reviews else None
        )
        return IndexEntry(
            result=result,
            result_key=key,
            original_key=original_key(document_id),
            ingested_at=ingested_at,
            page_keys=tuple(info.key for info in pages),
            review_count=len(reviews),
            reviewed_at=reviewed_at,
        )

    def _load_failure(self, key: str) -> FailureEntry:
        try:
            record = json.loads(self.objects.get(key))
            return FailureEntry(
                document_id=str(record["document_id"]),
                source_name=str(record["source_name"]),
                error_type=str(record["error_type"]),
                message=str(record["message"]),
                failed_at=float(record["failed_at"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise _Unreadable(key, f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Written:
    """What ``write_document`` did: whether it committed the record, when, and the page keys."""

    created: bool
    ingested_at: float
    page_keys: tuple[str, ...]


def result_body(result: InvoiceResult, indent: int | None = None) -> bytes:
    """result.json's bytes. Stored unindented: with ``indent`` json falls back to its pure-Python
    encoder, which took ~12 ms of every text-layer PDF's saving (lines carry many boxes); a
    download for a person to read can ask for it."""
    return json.dumps(result.to_dict(), ensure_ascii=False, indent=indent).encode()


def put_original(objects: ObjectStore, data: bytes, source_name: str, document_id: str) -> bool:
    """Store the original file, create-only (content-addressed: a second upload writes nothing)."""
    meta = {"source_name": source_name}
    return objects.put(original_key(document_id), data, _content_type(data), meta, create_only=True)


def write_document(
    objects: ObjectStore,
    source_name: str,
    result: InvoiceResult,
    page_pngs: list[tuple[int, bytes]],
    body: bytes | None = None,
) -> Written:
    """Write the page images, then result.json (create-only: the commit point). The original must be
    stored already (``put_original``). No index involved: a cluster worker calls this."""
    document_id = result.document_id
    now = round(time.time(), 6)  # kept as text in the object's metadata: reindex reads it back exact
    meta = {"source_name": source_name}
    pages = sorted(page_pngs)
    for index, png in pages:
        objects.put(page_key(document_id, index), png, "image/png", meta)
    body = result_body(result) if body is None else body
    created = objects.put(
        result_key(document_id),
        body,
        "application/json",
        {**meta, "ingested_at": f"{now:.6f}"},
        create_only=True,
    )
    return Written(created, now, tuple(page_key(document_id, index) for index, _ in pages))


class _Unreadable(Exception):
    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}")
        self.key = key
        self.why = why


def _bounded_map(
    pool: ThreadPoolExecutor, function: Any, items: Iterable[Any], report: ReindexReport
) -> Iterator[Any]:
    """``pool.map`` with a bounded number in flight; unreadable records are reported and skipped."""
    batch: list[Any] = []

    def drain() -> Iterator[Any]:
        futures = [pool.submit(function, item) for item in batch]
        batch.clear()
        for future in futures:
            try:
                yield future.result()
            except _Unreadable as exc:
                log.warning("skipped %s", exc)
                report.skipped.append((exc.key, exc.why))

    for item in items:
        batch.append(item)
        if len(batch) >= 256:
            yield from drain()
    yield from drain()


def _find(infos: list[ObjectInfo], key: str) -> ObjectInfo | None:
    return next((info for info in infos if info.key == key), None)


def _page_number(key: str) -> int:
    try:
        return int(key.rsplit("/", 1)[1].split(".")[0])
    except ValueError:
        return 1 << 30


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


CONTENT_TYPES = {
    "pdf": "application/pdf",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "heif": "image/heif",
    "ofd": "application/ofd",
    "xml": "application/xml",
    "zip": "application/zip",
}


def _content_type(data: bytes) -> str:
    try:
        return CONTENT_TYPES.get(sniff_format(data), "application/octet-stream")
    except UnsupportedFormat:
        return "application/octet-stream"


def is_s3_location(location: str) -> bool:
    return location.strip().lower().startswith("s3://")


def open_objects(location: str, s3: S3Settings | None = None) -> ObjectStore:
    """The object store alone (a cluster worker needs no index); an S3 store is checked on open."""
    if is_s3_location(location):
        from pipeline.store.s3 import S3ObjectStore

        s3_objects = S3ObjectStore(location.strip(), s3)
        s3_objects.check()
        return s3_objects
    return LocalObjectStore(Path(location).expanduser())


def open_store(
    location: str,
    index: Path | str | None = None,
    s3: S3Settings | None = None,
    rebuild_missing_index: bool = True,
) -> Store:
    """A store from a directory path (embedded default) or an ``s3://bucket/prefix`` URL.

    The index is ``index`` if given (an SQLite file, or a ``postgresql://`` URL: see
    ``pipeline.store.index.open_index``); otherwise ``<dir>/index.sqlite`` for a directory store and
    ``~/.cache/invoices/index/<bucket>-<hash>.sqlite`` for an S3 store. An S3 store is checked
    on open (endpoint reachable, credentials accepted, bucket exists) so a wrong configuration
    fails before any work is done. A missing index (first use of a bucket on this machine, or a
    deleted file) is rebuilt from the store unless ``rebuild_missing_index`` is False.
    """
    objects = open_objects(location, s3)
    index_location: Path | str
    if index is not None:
        index_location = index
    elif is_s3_location(location):
        from pipeline.store.s3 import S3ObjectStore, default_index_name

        assert isinstance(objects, S3ObjectStore)
        index_location = default_index_dir() / default_index_name(location.strip(), objects.endpoint)
    else:
        index_location = Path(location).expanduser() / INDEX_FILE
    store = Store(objects, open_index(index_location))
    if store.index.schema_replaced or (store.index.is_new and rebuild_missing_index):
        if store.index.is_new:
            log.info("building the index %s from %s (first use)", store.index.location, store.location)
        try:
            store.reindex()
        except BaseException:
            store.close()
            raise
    return store


__all__ = [
    "Index",
    "Query",
    "ReindexReport",
    "Store",
    "Written",
    "is_s3_location",
    "open_objects",
    "open_store",
    "original_key",
    "page_key",
    "put_original",
    "result_key",
    "review_key",
    "write_document",
]
