"""Beside the stages: object storage plus the SQLite index, behind one ``Store``."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from pipeline.errors import ConfigError, NotFound, UnsupportedFormat
from pipeline.load import sniff_format
from pipeline.model import InvoiceResult
from pipeline.store.index import Index
from pipeline.store.objects import (
    LocalObjectStore,
    ObjectStore,
    failure_key,
    original_key,
    page_key,
    result_key,
)

log = logging.getLogger(__name__)

INDEX_FILE = "index.sqlite"


class Store:
    """Where results live: objects are the source of truth, the index answers queries."""

    def __init__(self, objects: ObjectStore, index: Index) -> None:
        self.objects = objects
        self.index = index

    def close(self) -> None:
        self.index.close()

    def is_stored(self, document_id: str) -> bool:
        return self.objects.exists(result_key(document_id))

    def save(
        self, data: bytes, source_name: str, result: InvoiceResult, page_pngs: list[tuple[int, bytes]]
    ) -> bool:
        """Store the original, its pages, then the result (the commit point), then index it.

        Returns False when the document was already stored: nothing is overwritten.
        """
        document_id = result.document_id
        if self.is_stored(document_id):
            return False
        meta = {"source_name": source_name}
        self.objects.put(original_key(document_id), data, _content_type(data), meta, create_only=True)
        for index, png in page_pngs:
            self.objects.put(page_key(document_id, index), png, "image/png", meta)
        body = json.dumps(result.to_dict(), ensure_ascii=False, indent=1).encode()
        created = self.objects.put(result_key(document_id), body, "application/json", meta, create_only=True)
        self.index.upsert(result, result_key(document_id), original_key(document_id), time.time())
        return created

    def save_failure(self, document_id: str, source_name: str, error_type: str, message: str) -> None:
        record = {
            "document_id": document_id,
            "source_name": source_name,
            "error_type": error_type,
            "message": message,
            "failed_at": time.time(),
        }
        self.objects.put(
            failure_key(document_id),
            json.dumps(record, ensure_ascii=False).encode(),
            "application/json",
            {"source_name": source_name},
        )
        self.index.record_failure(document_id, source_name, error_type, message)

    def load_result(self, document_id: str) -> InvoiceResult:
        matches = self.index.get(document_id)
        if not matches:
            raise NotFound(f"no document with id {document_id!r} in the store")
        if len(matches) > 1:
            raise NotFound(f"id prefix {document_id!r} is ambiguous: give more characters")
        data = self.objects.get(matches[0]["result_key"])
        return InvoiceResult.from_dict(json.loads(data))


CONTENT_TYPES = {
    "pdf": "application/pdf",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "webp": "image/webp",
}


def _content_type(data: bytes) -> str:
    try:
        return CONTENT_TYPES[sniff_format(data)]
    except UnsupportedFormat:
        return "application/octet-stream"


def open_store(location: str) -> Store:
    """A store from a directory path (embedded default) or, later, an ``s3://`` URL."""
    if location.startswith("s3://"):
        raise ConfigError("S3 stores are not available yet: use a local directory")
    root = Path(location).expanduser()
    return Store(LocalObjectStore(root), Index(root / INDEX_FILE))


__all__ = ["Store", "open_store", "original_key", "page_key", "result_key"]
