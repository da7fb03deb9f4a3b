"""The SQLite index (the embedded default): one row per document, rebuilt from the store at any time.

SQLite in WAL mode (readers never wait for the writer). ``documents`` holds every field value,
the status, confidences, the review state and the object keys; ``documents_fts`` (FTS5, trigram
tokenizer so Chinese names match by substring) covers the source name, buyer, seller and vendor
names and the recognised text. Fuzzy name filters compare a normalised name key with rapidfuzz
over the distinct keys, then look documents up by that key's B-tree index.

Other tables in the same file (``reconciliation``, written by ``pipeline.reconcile``; the hot
folder's ``claims`` and ``claim_owners``) are left alone: ``reindex`` rebuilds only what is derived
from the store. The protocol and what both backends share are in ``pipeline.store.index``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.errors import StorageError
from pipeline.model import InvoiceResult
from pipeline.store.index import (
    BOX_DIGITS,
    BOX_HAS_LETTER,
    BOX_HEX_ID,
    BOX_TAX_ID_LIKE,
    CLAIM_STALE_SECONDS,
    DOCUMENT_COLUMNS,
    DOCUMENT_STATUSES,
    FTS_COLUMNS,
    INDEXED_FIELDS,
    ORDER_BY,
    RECONCILIATION_OUTCOMES,
    SEARCH_SORTS,
    FailureEntry,
    IndexEntry,
    Query,
    Search,
    amount_number,
    document_row,
    fuzzy_matches,
    like_pattern,
    name_key,
    quality_per_month,
    search_values,
    search_where,
    selected_columns,
    simple_filters,
    text_terms,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS documents (
    document_id TEXT PRIMARY KEY,
    source_name TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    status TEXT NOT NULL,
    {", ".join(f"{name} TEXT" for name in INDEXED_FIELDS)},
    issue_day TEXT,
    total_amount_num REAL,
    seller_key TEXT,
    buyer_key TEXT,
    confidence REAL,
    review_fields TEXT NOT NULL DEFAULT '',
    review_state TEXT NOT NULL DEFAULT 'none',
    review_count INTEGER NOT NULL DEFAULT 0,
    reviewed_at REAL,
    page_count INTEGER NOT NULL,
    engine TEXT NOT NULL,
    result_key TEXT NOT NULL,
    original_key TEXT NOT NULL,
    page_keys TEXT NOT NULL DEFAULT '[]',
    ingested_at REAL NOT NULL,
    fields_json TEXT NOT NULL,
    field_details_json TEXT NOT NULL DEFAULT '{{}}'
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


class SqliteIndex:
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

    # ---- writing --------------------------------------------------------------------------

    def upsert(
        self,
        result: InvoiceResult,
        result_key: str,
        original_key: str,
        ingested_at: float,
        *,
        page_keys: Iterable[str] = (),
        review_count: int = 0,
        reviewed_at: float | None = None,
    ) -> None:
        entry = IndexEntry(
            result, result_key, original_key, ingested_at, tuple(page_keys), review_count, reviewed_at
        )
        self.upsert_many([entry])

    def upsert_many(self, entries: Iterable[IndexEntry]) -> int:
        """Insert or replace documents in one transaction; returns how many."""
        count = 0
        with self._write() as db:
            for entry in entries:
                _upsert(db, entry)
                count += 1
        return count

    def record_failure(
        self,
        document_id: str,
        source_name: str,
        error_type: str,
        message: str,
        failed_at: float | None = None,
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                (document_id, source_name, error_type, message, failed_at or time.time()),
            )

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
                    "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
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

    # ---- reading --------------------------------------------------------------------------

    def has_document(self, document_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM documents WHERE document_id = ?", (document_id,)).fetchone()
        return row is not None

    def get(self, document_id_prefix: str) -> list[dict[str, Any]]:
        prefix = document_id_prefix.lower()
        if not prefix or not all(ch in "0123456789abcdef" for ch in prefix):
            return []
        # A range, not LIKE: the primary key's B-tree answers it directly.
        rows = self._db.execute(
            "SELECT * FROM documents WHERE document_id >= ? AND document_id < ? ORDER BY document_id LIMIT 2",
            (prefix, prefix + "g"),
        ).fetchall()
        return [dict(row) for row in rows]

    def documents(self) -> list[dict[str, Any]]:
        return self.query(Query())

    def failures(self) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self._db.execute("SELECT * FROM failures ORDER BY failed_at, document_id").fetchall()
        ]

    def counts(self) -> dict[str, int]:
        counts = {
            row["status"]: row["n"]
            for row in self._db.execute("SELECT status, COUNT(*) AS n FROM documents GROUP BY status")
        }
        counts["failed"] = self._db.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
        return counts

    def query(self, query: Query, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Documents matching every filter, by issue date (undated first), then source name and id.

        ``columns`` limits what each row holds (default: every column); fewer is faster.
        """
        where, params = simple_filters(query)
        if query.status:
            clause = self._status_clause(query.status, params)
            if clause is None:
                return []
            where.append(clause)
        for column, wanted in (("seller_key", query.seller), ("buyer_key", query.buyer)):
            if wanted:
                keys = self.fuzzy_keys(column, wanted, query.fuzzy_cutoff)
                if not keys:
                    return []
                if len(keys) <= 10_000:
                    # Literal placeholders: the planner then sees the name index beats date order.
                    where.append(f"d.{column} IN ({', '.join('?' * len(keys))})")
                    params += keys
                else:
                    where.append(f"d.{column} IN (SELECT value FROM json_each(?))")
                    params.append(json.dumps(keys, ensure_ascii=False))
        if query.text:
            clause = self._text_clause(query.text, params)
            if clause:
                where.append(clause)
        sql = f"SELECT {selected_columns(columns)} FROM documents d"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += ORDER_BY
        if query.limit:
            sql += " LIMIT ?"
            params.append(int(query.limit))
        try:
            cursor = self._db.cursor()
            cursor.row_factory = None  # plain tuples: a third faster than sqlite3.Row on big listings
            rows = cursor.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"index query failed ({self.path}): {exc}") from exc
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _status_clause(self, status: str, params: list[Any]) -> str | None:
        if status in DOCUMENT_STATUSES:
            params.append(status)
            return "d.status = ?"
        if status not in RECONCILIATION_OUTCOMES:
            raise StorageError(f"unknown status {status!r}")
        if not self._has_table("reconciliation"):
            return None  # nothing reconciled yet: no document has that outcome
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(reconciliation)")}
        params.append(status)
        if "reconciled_at" in columns:
            # The latest outcome per document counts (a re-run of reconcile supersedes older rows).
            return (
                "d.document_id IN (SELECT r.document_id FROM reconciliation r WHERE r.outcome = ? "
                "AND r.reconciled_at = (SELECT MAX(r2.reconciled_at) FROM reconciliation r2 "
                "WHERE r2.document_id = r.document_id))"
            )
        return "d.document_id IN (SELECT r.document_id FROM reconciliation r WHERE r.outcome = ?)"

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

    def fuzzy_keys(self, column: str, wanted: str, cutoff: float = 80.0) -> list[str]:
        """Distinct name keys in ``column`` close to ``wanted`` (substring or a few characters off)."""
        target = name_key(wanted)
        if not target or column not in {"seller_key", "buyer_key"}:
            return []
        keys = [row[0] for row in self._db.execute(f"SELECT DISTINCT {column} FROM documents") if row[0]]
        return fuzzy_matches(target, keys, cutoff)

    # ---- hot-folder claims ------------------------------------------------------------------

    def heartbeat(self, owner: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO claim_owners VALUES (?, ?) ON CONFLICT(owner) DO UPDATE SET heartbeat = excluded.heartbeat",
                (owner, time.time()),
            )

    def owner_alive(self, owner: str, stale_after: float = CLAIM_STALE_SECONDS) -> bool:
        row = self._db.execute("SELECT heartbeat FROM claim_owners WHERE owner = ?", (owner,)).fetchone()
        return row is not None and row[0] >= time.time() - stale_after

    def claim(self, key: str, owner: str, stale_after: float = CLAIM_STALE_SECONDS) -> bool:
        """Take ``key`` for ``owner``: True if it was free or its owner is dead (stale heartbeat)."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "INSERT INTO claims VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "owner = excluded.owner, claimed_at = excluded.claimed_at "
                "WHERE claims.owner = excluded.owner OR NOT EXISTS (SELECT 1 FROM claim_owners o "
                "WHERE o.owner = claims.owner AND o.heartbeat >= ?) RETURNING owner",
                (key, owner, now, now - stale_after),
            ).fetchone()
        return row is not None

    def release(self, key: str, owner: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

    def retire(self, owner: str) -> None:
        """A watcher that stops cleanly: its (released) claims and its heartbeat go."""
        with self._write() as db:
            db.execute("DELETE FROM claims WHERE owner = ?", (owner,))
            db.execute("DELETE FROM claim_owners WHERE owner = ?", (owner,))

    def reconciliation_tables(self, write: bool = False) -> contextlib.AbstractContextManager[Any]:
        """The reconciliation's tables (``pipeline.reconcile.tables``): a connection in SQLite's
        dialect; ``write`` makes it one transaction that one writer holds at a time."""
        return reconciliation_connection(self.path, write)

    # ==== issue 16 (web app): search across keys, statistics, reconciliation, batches ============
    # Read-only queries of the web app; each takes a ``Search`` (the box plus the page's filters).

    def _search_where(self, search: Search) -> tuple[str, list[Any]] | None:
        """The WHERE clause of a search (``None``: nothing can match)."""
        return search_where(
            search, self._box_clause, self._status_clause, self._line_clause, self._source_clause
        )

    @staticmethod
    def _source_clause(source: str, params: list[Any]) -> str:
        params.append("%" + source.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
        return "d.source_name LIKE ? ESCAPE '\\'"

    def _line_clause(self, outcome: str | None, platform_status: str | None, params: list[Any]) -> str | None:
        """Documents whose line in the last three-way reconciliation (``reconciliation_lines``, issue 15)
        has this outcome (main or additional) and platform status. An index reconciled before the
        three-way lines existed answers a ledger outcome from the ``reconciliation`` table."""
        if not self._has_table("reconciliation_lines"):
            if platform_status or outcome not in RECONCILIATION_OUTCOMES:
                return None
            return self._status_clause(str(outcome), params)
        where = ["l.document_id IS NOT NULL"]
        if outcome:
            where.append("(l.outcome = ? OR instr(',' || l.also || ',', ?) > 0)")
            params += [outcome, f",{outcome},"]
        if platform_status:
            where.append("l.platform_status = ?")
            params.append(platform_status)
        return (
            f"d.document_id IN (SELECT l.document_id FROM reconciliation_lines l WHERE {' AND '.join(where)})"
        )

    def _box_clause(self, box: str, params: list[Any], cutoff: float) -> str | None:
        """Any key: number, code, taxpayer ID, amount, id prefix, seller/buyer (fuzzy), page text."""
        options: list[str] = []
        compact = "".join(box.split())
        upper = compact.upper()
        if BOX_DIGITS.match(compact):
            options += ["d.invoice_number = ?", "d.invoice_code = ?"]
            params += [compact, compact]
        if BOX_TAX_ID_LIKE.match(upper):
            options += ["d.seller_tax_id = ?", "d.buyer_tax_id = ?"]
            params += [upper, upper]
        if BOX_HEX_ID.match(compact.lower()):
            options.append("(d.document_id >= ? AND d.document_id < ?)")
            params += [compact.lower(), compact.lower() + "g"]
        amount = amount_number(compact.lstrip("¥￥$€").replace(",", ""))
        if amount is not None and re.fullmatch(r"[¥￥$€]?[\d,]+(\.\d{1,2})?", compact):
            options.append("d.total_amount_num BETWEEN ? AND ?")
            params += [amount - 0.005, amount + 0.005]
        if BOX_HAS_LETTER.search(box):
            for column in ("seller_key", "buyer_key"):
                keys = self.fuzzy_keys(column, box, cutoff)
                if keys:
                    options.append(f"d.{column} IN (SELECT value FROM json_each(?))")
                    params.append(json.dumps(keys, ensure_ascii=False))
        long_terms = " ".join(term for term in box.split() if len(term) >= 3)
        if long_terms:
            text = self._text_clause(long_terms, params)
            if text:
                options.append(text)
        return "(" + " OR ".join(options) + ")" if options else None

    def search(
        self,
        search: Search,
        columns: Sequence[str],
        sort: str = "date",
        descending: bool = True,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of matching documents and how many match in all."""
        built = self._search_where(search)
        if built is None:
            return [], 0
        where, params = built
        unknown = set(columns) - DOCUMENT_COLUMNS
        if unknown:
            raise ValueError(f"not index columns: {sorted(unknown)}")
        order = SEARCH_SORTS.get(sort, SEARCH_SORTS["date"])
        direction = "DESC" if descending else "ASC"
        # NULLs sort first ascending and last descending (SQLite); the id breaks ties stably.
        sql = (
            f"SELECT {', '.join('d.' + c for c in columns)} FROM documents d{where} "
            f"ORDER BY {order} {direction}, d.document_id {direction} LIMIT ? OFFSET ?"
        )
        try:
            cursor = self._db.cursor()
            cursor.row_factory = None
            rows = cursor.execute(sql, [*params, int(limit), int(offset)]).fetchall()
            names = [column[0] for column in cursor.description]
            total = self._db.execute(f"SELECT COUNT(*) FROM documents d{where}", params).fetchone()[0]
        except sqlite3.Error as exc:
            raise StorageError(f"index search failed ({self.path}): {exc}") from exc
        return [dict(zip(names, row, strict=True)) for row in rows], int(total)

    def statistics(self, search: Search, top_sellers: int = 20) -> dict[str, list[dict[str, Any]]]:
        """Counts and amounts per month, seller, tax rate and kind; review/failure/ledger rates per
        month of ingestion. Amounts are sums of the stored values (unread ones count as 0)."""
        built = self._search_where(search)
        empty: dict[str, list[dict[str, Any]]] = {
            "months": [],
            "sellers": [],
            "rates": [],
            "kinds": [],
            "quality": [],
        }
        if built is None:
            return empty
        where, params = built
        sums = (
            "COUNT(*) AS count, ROUND(COALESCE(SUM(CAST(d.amount_excl_tax AS REAL)), 0), 2) AS amount, "
            "ROUND(COALESCE(SUM(CAST(d.tax_amount AS REAL)), 0), 2) AS tax, "
            "ROUND(COALESCE(SUM(d.total_amount_num), 0), 2) AS total"
        )
        # The rate is the effective one, tax / amount excl. tax, in whole percent: a column of its own
        # (the printed rates are in the JSON of the fields, too slow to read at 100,000 invoices).
        rate = (
            "CASE WHEN CAST(d.amount_excl_tax AS REAL) > 0 AND d.tax_amount IS NOT NULL THEN "
            "CAST(ROUND(100.0 * CAST(d.tax_amount AS REAL) / CAST(d.amount_excl_tax AS REAL)) AS INTEGER) END"
        )
        # Months, kinds, rates and the quality per hour of ingestion come from one scan grouped by all
        # four, added up here; the sellers need their own.
        not_in_ledger = "0"
        if self._has_table("reconciliation"):
            not_in_ledger = (
                "SUM(d.document_id IN (SELECT r.document_id FROM reconciliation r WHERE r.outcome = "
                "'not_in_ledger' AND r.reconciled_at = (SELECT MAX(r2.reconciled_at) FROM reconciliation r2 "
                "WHERE r2.document_id = r.document_id)))"
            )
        combined = (
            f"SELECT substr(d.issue_day, 1, 7) AS month, d.doc_type AS kind, {rate} AS rate, "
            f"CAST(d.ingested_at / 3600 AS INTEGER) AS hour, {sums}, "
            f"SUM(d.review_state != 'none') AS reviewed, {not_in_ledger} AS not_in_ledger "
            f"FROM documents d{where} GROUP BY month, kind, rate, hour"
        )
        # In the order of documents_stats_seller: grouped as it is read, without sorting.
        sellers = (
            f"SELECT d.seller_key AS seller_key, {sums} FROM documents d{where} "
            f"GROUP BY d.seller_key ORDER BY total DESC, count DESC LIMIT {int(top_sellers)}"
        )
        out = dict(empty)
        try:
            rows = self._db.execute(combined, params).fetchall()
            out["sellers"] = [dict(row) for row in self._db.execute(sellers, params)]
            failures = (
                []
                if where
                else self._db.execute(
                    "SELECT CAST(failed_at / 3600 AS INTEGER), COUNT(*) FROM failures GROUP BY 1"
                ).fetchall()
            )
        except sqlite3.Error as exc:
            raise StorageError(f"index statistics failed ({self.path}): {exc}") from exc
        for name, key in (("months", "month"), ("kinds", "kind"), ("rates", "rate")):
            totals: dict[Any, dict[str, Any]] = {}
            for row in rows:
                entry = totals.get(row[key])
                if entry is None:
                    entry = totals[row[key]] = {
                        key: row[key],
                        "count": 0,
                        "amount": 0.0,
                        "tax": 0.0,
                        "total": 0.0,
                    }
                entry["count"] += row["count"]
                entry["amount"] += row["amount"]
                entry["tax"] += row["tax"]
                entry["total"] += row["total"]
            for entry in totals.values():
                for column in ("amount", "tax", "total"):
                    entry[column] = round(entry[column], 2)
            if name == "kinds":
                out[name] = sorted(totals.values(), key=lambda e: (-e["count"], e["kind"] or ""))
            else:
                out[name] = sorted(
                    totals.values(), key=lambda e: (e[key] is None, e[key] if e[key] is not None else 0)
                )
        out["quality"] = quality_per_month(
            ((row["hour"], row["count"], row["reviewed"] or 0, row["not_in_ledger"] or 0) for row in rows),
            failures,
        )
        for row in out["rates"]:
            row["rate"] = f"{row['rate']}%" if row["rate"] is not None else ""
        keys = [row["seller_key"] for row in out["sellers"] if row["seller_key"]]
        names = dict(
            self._db.execute(
                "SELECT seller_key, MAX(COALESCE(seller_name, vendor_name)) FROM documents "
                "WHERE seller_key IN (SELECT value FROM json_each(?)) GROUP BY seller_key",
                (json.dumps(keys, ensure_ascii=False),),
            ).fetchall()
        )
        for row in out["sellers"]:
            row["seller"] = names.get(row.pop("seller_key"), "") or ""
        return out

    def reconciliation_of(self, document_id: str) -> dict[str, Any] | None:
        """The latest reconciliation outcome of one document, with its differences, or None."""
        if not self._has_table("reconciliation"):
            return None
        row = self._db.execute(
            "SELECT * FROM reconciliation WHERE document_id = ? ORDER BY reconciled_at DESC, rowid DESC LIMIT 1",
            (document_id,),
        ).fetchone()
        if row is None:
            return None
        out = dict(row)
        try:
            out["differences"] = json.loads(out.get("differences") or "[]")
        except ValueError:
            out["differences"] = []
        return out

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
        out = []
        for row in rows:
            entry = dict(row)
            try:
                entry["differences"] = json.loads(entry.get("differences") or "[]")
            except ValueError:
                entry["differences"] = []
            out.append(entry)
        return out, int(total)

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

    def recent_documents(self, limit: int = 20) -> list[dict[str, Any]]:
        """The documents ingested last, newest first."""
        rows = self._db.execute(
            "SELECT document_id, source_name, doc_type, status, page_count, ingested_at, result_key "
            "FROM documents ORDER BY ingested_at DESC LIMIT ?",
            (int(limit),),
        ).fetchall()
        return [dict(row) for row in rows]

    def recent_failures(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM failures ORDER BY failed_at DESC LIMIT ?", (int(limit),))
        return [dict(row) for row in rows.fetchall()]

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
