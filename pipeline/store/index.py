"""The queryable index: one SQLite row per document, rebuilt from the store at any time."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import StorageError
from pipeline.model import FieldStatus, InvoiceResult

INDEXED_FIELDS = (
    "invoice_code",
    "invoice_number",
    "issue_date",
    "buyer_name",
    "buyer_tax_id",
    "seller_name",
    "seller_tax_id",
    "amount_excl_tax",
    "tax_amount",
    "total_amount",
    "vendor_name",
    "currency",
)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS documents (
    document_id TEXT PRIMARY KEY,
    source_name TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    status TEXT NOT NULL,
    {", ".join(f"{name} TEXT" for name in INDEXED_FIELDS)},
    review_fields TEXT NOT NULL DEFAULT '',
    page_count INTEGER NOT NULL,
    engine TEXT NOT NULL,
    result_key TEXT NOT NULL,
    original_key TEXT NOT NULL,
    ingested_at REAL NOT NULL,
    fields_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_number ON documents (invoice_number);
CREATE INDEX IF NOT EXISTS documents_date ON documents (issue_date);
CREATE INDEX IF NOT EXISTS documents_status ON documents (status);
CREATE TABLE IF NOT EXISTS failures (
    document_id TEXT PRIMARY KEY,
    source_name TEXT NOT NULL,
    error_type TEXT NOT NULL,
    message TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


class Index:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the index {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as exc:
            raise StorageError(f"index write failed ({self.path}): {exc}") from exc

    def upsert(self, result: InvoiceResult, result_key: str, original_key: str, ingested_at: float) -> None:
        review = [
            name
            for name, found in result.fields.items()
            if found.status == FieldStatus.NEEDS_REVIEW
            or (found.status == FieldStatus.MISSING and found.reasons)
        ]
        row: dict[str, Any] = {
            "document_id": result.document_id,
            "source_name": result.source_name,
            "doc_type": str(result.doc_type),
            "status": str(result.status),
            **{name: _text(result.value(name)) for name in INDEXED_FIELDS},
            "review_fields": ",".join(review),
            "page_count": len(result.pages),
            "engine": result.engine,
            "result_key": result_key,
            "original_key": original_key,
            "ingested_at": ingested_at,
            "fields_json": json.dumps(
                {name: found.value for name, found in result.fields.items()}, ensure_ascii=False
            ),
        }
        columns = ", ".join(row)
        placeholders = ", ".join(f":{name}" for name in row)
        with self._write() as db:
            db.execute(f"INSERT OR REPLACE INTO documents ({columns}) VALUES ({placeholders})", row)
            db.execute("DELETE FROM failures WHERE document_id = ?", (result.document_id,))

    def record_failure(self, document_id: str, source_name: str, error_type: str, message: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                (document_id, source_name, error_type, message, time.time()),
            )

    def has_document(self, document_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM documents WHERE document_id = ?", (document_id,)).fetchone()
        return row is not None

    def get(self, document_id_prefix: str) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT * FROM documents WHERE document_id LIKE ? ORDER BY document_id LIMIT 2",
            (document_id_prefix + "%",),
        ).fetchall()
        return [dict(row) for row in rows]

    def documents(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM documents ORDER BY issue_date, source_name").fetchall()
        return [dict(row) for row in rows]

    def failures(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._db.execute("SELECT * FROM failures ORDER BY failed_at").fetchall()]

    def counts(self) -> dict[str, int]:
        counts = {
            row["status"]: row["n"]
            for row in self._db.execute("SELECT status, COUNT(*) AS n FROM documents GROUP BY status")
        }
        counts["failed"] = self._db.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
        return counts


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)
