"""The SQLite index (the embedded default): one row per document, rebuilt from the store at any time.

SQLite in WAL mode (readers never wait for the writer). ``documents`` holds every field value,
the status, confidences, the review state and the object keys; ``documents_fts`` (FTS5, trigram
tokenizer so Chinese names match by substring) covers the source name, buyer, seller and vendor
names and the recognised text. Fuzzy name filters compare a normalised name key with rapidfuzz
over the distinct keys, then look documents up by that key's B-tree index.

Other tables in the same file (``reconciliation``, written by ``pipeline.reconcile``; the hot
folder's ``claims`` and ``claim_owners``) are left alone: ``reindex`` rebuilds only what is derived
from the store. The protocol and the helpers both backends share are in ``pipeline.store.index``;
the logic they run alike (listings, search, statistics, claims) is ``pipeline.store.index_base``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import StorageError
from pipeline.store.index import (
    DOCUMENT_COLUMN_TYPES,
    FTS_COLUMNS,
    FailureEntry,
    IndexEntry,
    document_row,
    like_pattern,
    search_values,
    text_terms,
)
from pipeline.store.index_base import NOT_IN_LEDGER_DOCUMENTS, IndexBase, with_differences

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3

_DOCUMENT_COLUMNS = ",\n    ".join(f"{name} {kind}" for name, kind in DOCUMENT_COLUMN_TYPES)
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS documents (
    {_DOCUMENT_COLUMNS}
);
CREATE INDEX IF NOT EXISTS documents_number ON documents (invoice_number);
CREATE INDEX IF NOT EXISTS documents_code ON documents (invoice_code, invoice_number);
CREATE INDEX IF NOT EXISTS documents_day ON documents (issue_day, source_name, document_id);
CREATE INDEX IF NOT EXISTS documents_status_day ON documents (status, issue_day, source_name, document_id);
CREATE INDEX IF NOT EXISTS documents_amount ON documents (total_amount_num);
CREATE INDEX IF NOT EXISTS documents_seller_tax ON documents (seller_tax_id);
CREATE INDEX IF NOT EXISTS documents_buyer_tax ON documents (buyer_tax_id);
CREATE INDEX IF NOT EXISTS documents_seller_key ON documents (seller_key, issue_day);
CREATE INDEX IF NOT EXISTS documents_buyer_key ON documents (buyer_key, issue_day);
CREATE INDEX IF NOT EXISTS documents_review ON documents (review_state);
-- issue 16: cover the statistics view's aggregates, so they scan these, not the wide rows
CREATE INDEX IF NOT EXISTS documents_stats ON documents (issue_day, seller_key, doc_type, status, review_state,
    ingested_at, total_amount_num, amount_excl_tax, tax_amount, document_id);
CREATE INDEX IF NOT EXISTS documents_stats_seller ON documents (seller_key, total_amount_num, amount_excl_tax,
    tax_amount, issue_day, doc_type, status, review_state);
CREATE TABLE IF NOT EXISTS failures (
    document_id TEXT PRIMARY KEY,
    source_name TEXT NOT NULL,
    error_type TEXT NOT NULL,
    message TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""

# Not derived from the store: kept across layout changes and reindex.
CLAIMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS claim_owners (owner TEXT PRIMARY KEY, heartbeat REAL NOT NULL);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, claimed_at REAL NOT NULL);
"""


def _enable_wal(db: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch to WAL, retrying: SQLite refuses the switch at once, without waiting on its busy
    timeout, while another process opening the same new index holds the lock."""
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class SqliteIndex(IndexBase):
    _EVERY_COLUMN = "d.*"
    _ORDER_BY = " ORDER BY d.issue_day, d.source_name, d.document_id"
    _NULLS_ORDER = ("", "")  # SQLite's own: first ascending, last descending
    _LIKE_ESCAPED = "LIKE ? ESCAPE '\\'"
    _POSITION = "instr"
    _FAILURE = "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)"
    _FAILURES_PER_HOUR = "SELECT CAST(failed_at / 3600 AS INTEGER), COUNT(*) FROM failures GROUP BY 1"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = str(path)
        self.is_new = not path.exists()
        self.schema_replaced = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            _enable_wal(self._db)
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            # Listings read rows scattered over the file: keep them in memory, not in read() calls.
            self._db.execute("PRAGMA cache_size=-32768")
            self._db.execute("PRAGMA mmap_size=268435456")
            self._tokenizer = _fts_tokenizer(self._db)
            self._migrate()
            self._db.isolation_level = ""  # back to implicit transactions for ``with self._db``
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the index {path}: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"cannot create the index {path}: {exc.strerror}") from exc

    def _migrate(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION and self._has_table("documents"):
                # Everything here is derived from the store: the caller re-fills it (reindex).
                log.warning("the index %s has an older layout: rebuilding it from the store", self.path)
                for table in ("documents_fts", "documents", "failures"):
                    db.execute(f"DROP TABLE IF EXISTS {table}")
                self.schema_replaced = True
            for statement in (SCHEMA + CLAIMS_SCHEMA).split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5("
                f"{', '.join(FTS_COLUMNS)}, tokenize='{self._tokenizer}')"
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # refresh planner statistics where they are stale
            self._db.execute("PRAGMA optimize")
        self._db.close()

    def _has_table(self, name: str) -> bool:
        row = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return row.fetchone() is not None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.Error as exc:
            raise StorageError(f"index write failed ({self.path}): {exc}") from exc

    @staticmethod
    def _sql(statement: str) -> str:
        return statement  # already in SQLite's placeholders

    def _read(self, statement: str, params: Sequence[Any] = (), what: str = "query") -> list[tuple[Any, ...]]:
        return self._fetch(statement, params, what)[1]

    def _dicts(self, statement: str, params: Sequence[Any] = (), what: str = "query") -> list[dict[str, Any]]:
        names, rows = self._fetch(statement, params, what)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _fetch(
        self, statement: str, params: Sequence[Any], what: str
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The column names and rows of a read."""
        try:
            cursor = self._db.cursor()
            cursor.row_factory = None  # plain tuples: a third faster than sqlite3.Row on big listings
            rows = cursor.execute(statement, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"index {what} failed ({self.path}): {exc}") from exc
        return [column[0] for column in cursor.description], rows

    # ---- writing --------------------------------------------------------------------------

    def upsert_many(self, entries: Iterable[IndexEntry]) -> int:
        """Insert or replace documents in one transaction; returns how many."""
        count = 0
        with self._write() as db:
            for entry in entries:
                _upsert(db, entry)
                count += 1
        return count

    def rebuild(self, entries: Iterable[IndexEntry], failures: Iterable[FailureEntry]) -> tuple[int, int]:
        """Replace every document and failure in one transaction (readers see old or new, never half).

        If ``entries`` raises part-way the transaction rolls back and the old index stays.
        """
        documents = 0
        with self._write() as db:
            db.execute("DELETE FROM documents")
            db.execute("DELETE FROM documents_fts")
            db.execute("DELETE FROM failures")
            for failure in failures:
                db.execute(
                    self._FAILURE,
                    (
                        failure.document_id,
                        failure.source_name,
                        failure.error_type,
                        failure.message,
                        failure.failed_at,
                    ),
                )
            for entry in entries:
                _upsert(db, entry)
                documents += 1
        with self._write() as db:
            db.execute("INSERT INTO documents_fts(documents_fts) VALUES ('optimize')")
        # A failure of a document stored since (a re-run fixed it) was dropped by its upsert.
        return documents, int(self._db.execute("SELECT COUNT(*) FROM failures").fetchone()[0])

    # ---- reading: SQLite's own clauses -----------------------------------------------------

    def _outcome_clause(self, outcome: str, params: list[Any]) -> str | None:
        if not self._has_table("reconciliation"):
            return None  # nothing reconciled yet: no document has that outcome
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(reconciliation)")}
        if "reconciled_at" in columns:
            return super()._outcome_clause(outcome, params)
        # Reconciled before runs were dated: every outcome row of a document counts.
        params.append(outcome)
        return "d.document_id IN (SELECT r.document_id FROM reconciliation r WHERE r.outcome = ?)"

    def _keys_filter(self, column: str, keys: list[str], params: list[Any]) -> str:
        if len(keys) > 10_000:
            return super()._keys_filter(column, keys, params)
        # Literal placeholders: the planner then sees the name index beats date order.
        params += keys
        return f"d.{column} IN ({', '.join('?' * len(keys))})"

    def _any_key(self, column: str, keys: list[str], params: list[Any]) -> str:
        params.append(json.dumps(keys, ensure_ascii=False))
        return f"d.{column} IN (SELECT value FROM json_each(?))"

    def _text_clause(self, text: str, params: list[Any]) -> str | None:
        terms = text_terms(text)
        clauses: list[str] = []
        long_terms = [term for term in terms if len(term) >= 3 or self._tokenizer != "trigram"]
        if long_terms:
            clauses.append("d.rowid IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?)")
            params.append(" AND ".join('"' + term.replace('"', '""') + '"' for term in long_terms))
        for term in terms:
            if term in long_terms:
                continue
            # Under three characters a trigram index cannot help: scan the (compact) FTS content.
            pattern = like_pattern(term)
            likes = " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for column in FTS_COLUMNS)
            clauses.append(f"d.rowid IN (SELECT rowid FROM documents_fts WHERE {likes})")
            params += [pattern] * len(FTS_COLUMNS)
        return " AND ".join(clauses) if clauses else None

    def _key_candidates(self, column: str, target: str) -> list[str]:
        return [row[0] for row in self._db.execute(f"SELECT DISTINCT {column} FROM documents") if row[0]]

    # ---- the reconciliation's tables ------------------------------------------------------------

    def reconciliation_tables(self, write: bool = False) -> contextlib.AbstractContextManager[Any]:
        """The reconciliation's tables (``pipeline.reconcile.tables``): a connection in SQLite's
        dialect; ``write`` makes it one transaction that one writer holds at a time."""
        return reconciliation_connection(self.path, write)

    # ==== issue 16 (web app): the SQLite side of statistics, reconciliation, batches =============
    # Read-only queries of the web app; search and the statistics' totals are ``IndexBase``'s.

    def _has_three_way_lines(self) -> bool:
        return self._has_table("reconciliation_lines")

    def _statistics_sums(self) -> str:
        return (
            "COUNT(*) AS count, ROUND(COALESCE(SUM(CAST(d.amount_excl_tax AS REAL)), 0), 2) AS amount, "
            "ROUND(COALESCE(SUM(CAST(d.tax_amount AS REAL)), 0), 2) AS tax, "
            "ROUND(COALESCE(SUM(d.total_amount_num), 0), 2) AS total"
        )

    def _statistics_groups(self, where: str, sums: str) -> str:
        # The rate is the effective one, tax / amount excl. tax, in whole percent: a column of its own
        # (the printed rates are in the JSON of the fields, too slow to read at 100,000 invoices).
        rate = (
            "CASE WHEN CAST(d.amount_excl_tax AS REAL) > 0 AND d.tax_amount IS NOT NULL THEN "
            "CAST(ROUND(100.0 * CAST(d.tax_amount AS REAL) / CAST(d.amount_excl_tax AS REAL)) AS INTEGER) END"
        )
        not_in_ledger = "0"
        if self._has_table("reconciliation"):
            not_in_ledger = f"SUM(d.document_id IN ({NOT_IN_LEDGER_DOCUMENTS}))"
        return (
            f"SELECT substr(d.issue_day, 1, 7) AS month, d.doc_type AS kind, {rate} AS rate, "
            f"CAST(d.ingested_at / 3600 AS INTEGER) AS hour, {sums}, "
            f"SUM(d.review_state != 'none') AS reviewed, {not_in_ledger} AS not_in_ledger "
            f"FROM documents d{where} GROUP BY month, kind, rate, hour"
        )

    def reconciliation_of(self, document_id: str) -> dict[str, Any] | None:
        """The latest reconciliation outcome of one document, with its differences, or None."""
        if not self._has_table("reconciliation"):
            return None
        row = self._db.execute(
            "SELECT * FROM reconciliation WHERE document_id = ? ORDER BY reconciled_at DESC, rowid DESC LIMIT 1",
            (document_id,),
        ).fetchone()
        return None if row is None else with_differences(dict(row))

    def reconciliation_outcomes(
        self, outcome: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        """The latest run's outcomes (invoices and lone ledger rows), newest run first."""
        if not self._has_table("reconciliation"):
            return [], 0
        where, params = "", []
        if outcome:
            where, params = " WHERE r.outcome = ?", [outcome]
        rows = self._db.execute(
            "SELECT r.*, d.source_name, d.invoice_number, d.seller_name, d.total_amount "
            f"FROM reconciliation r LEFT JOIN documents d ON d.document_id = r.document_id{where} "
            "ORDER BY r.reconciled_at DESC, r.rowid LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        ).fetchall()
        total = self._db.execute(f"SELECT COUNT(*) FROM reconciliation r{where}", params).fetchone()[0]
        return [with_differences(dict(row)) for row in rows], int(total)

    def ingest_batches(self, limit: int = 30) -> list[dict[str, Any]]:
        """Documents per day of ingestion (a batch), newest first, with their states and pages."""
        day = "date(ingested_at, 'unixepoch', 'localtime')"
        rows = self._db.execute(
            f"SELECT {day} AS day, COUNT(*) AS documents, SUM(page_count) AS pages, "
            "SUM(status = 'ok') AS ok, SUM(status = 'needs_review') AS needs_review, "
            "SUM(status = 'not_an_invoice') AS not_an_invoice, MIN(ingested_at) AS first, "
            f"MAX(ingested_at) AS last FROM documents GROUP BY day ORDER BY day DESC LIMIT ?",
            (int(limit),),
        ).fetchall()
        failed = {
            row[0]: row[1]
            for row in self._db.execute(
                "SELECT date(failed_at, 'unixepoch', 'localtime'), COUNT(*) FROM failures GROUP BY 1"
            )
        }
        return [{**dict(row), "failed": failed.get(row["day"], 0)} for row in rows]

    # ==== end of the issue-16 block ==========================================================


@contextmanager
def reconciliation_connection(path: Path, write: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection of its own to the index file for ``pipeline.reconcile.tables`` (rows as
    ``sqlite3.Row``). ``write``: one transaction, taken at once (``BEGIN IMMEDIATE``: one writer of
    the reconciliation at a time), committed at the end, rolled back on an error."""
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the index {path}: {exc}") from exc
    db.row_factory = sqlite3.Row
    try:
        if not write:
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    finally:
        db.close()


def _fts_tokenizer(db: sqlite3.Connection) -> str:
    try:
        db.execute("CREATE VIRTUAL TABLE temp._probe USING fts5(x, tokenize='trigram')")
        db.execute("DROP TABLE temp._probe")
        return "trigram"
    except sqlite3.OperationalError:
        log.warning(
            "SQLite %s has no FTS5 trigram tokenizer: text search matches whole words", sqlite3.sqlite_version
        )
        return "unicode61"


def _upsert(db: sqlite3.Connection, entry: IndexEntry) -> None:
    row = document_row(entry)
    columns = ", ".join(row)
    placeholders = ", ".join(f":{name}" for name in row)
    updates = ", ".join(f"{name} = excluded.{name}" for name in row if name != "document_id")
    db.execute(
        f"INSERT INTO documents ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT(document_id) DO UPDATE SET {updates}",
        row,
    )
    rowid = db.execute("SELECT rowid FROM documents WHERE document_id = ?", (row["document_id"],)).fetchone()[
        0
    ]
    result = entry.result
    db.execute("DELETE FROM documents_fts WHERE rowid = ?", (rowid,))
    db.execute(
        f"INSERT INTO documents_fts (rowid, {', '.join(FTS_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
        (rowid, *search_values(result)),
    )
    db.execute("DELETE FROM failures WHERE document_id = ?", (result.document_id,))
