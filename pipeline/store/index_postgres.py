"""The PostgreSQL index: the same rows and answers as the SQLite index, shared by many machines.

``--index postgresql://USER[:PASSWORD]@HOST:PORT/DB`` (or ``$INVOICES_INDEX``; a password can also
come from ``PGPASSWORD`` or ``~/.pgpass``), through psycopg 3. The database must exist; the
tables are created on first use, and ``schema_version`` records the layout so that a newer
program migrates an older database forward (never back: an older program refuses a newer one).

* Text columns sort by code point (``COLLATE "C"``), as SQLite does, and undated documents come
  first: a listing is in the same order on both backends.
* Fuzzy party names: ``party_keys`` holds each name key once; rapidfuzz compares the name with
  them as the SQLite index does. Past ``FUZZY_SCAN_KEYS`` keys, ``pg_trgm`` (a trigram GIN index)
  first picks the candidates (containing the name, or similar to it or to a part of it).
* Free text: ``search_text`` (source name, parties, recognised text) with a trigram GIN index;
  each word must occur (``ILIKE``), Chinese included, since trigrams need no word splitter.
* Every write is one transaction: a document row is there whole or not at all.

Listings, search, the statistics' totals and the claims are ``pipeline.store.index_base.IndexBase``'s,
the same code as the SQLite index runs; this module holds the PostgreSQL side of them.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pipeline.errors import MissingDependency, StorageError
from pipeline.store.index import (
    DOCUMENT_COLUMN_TYPES,
    FailureEntry,
    IndexEntry,
    document_row,
    like_pattern,
    search_values,
    text_terms,
)
from pipeline.store.index_base import NOT_IN_LEDGER_DOCUMENTS, IndexBase, with_differences

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
FUZZY_SCAN_KEYS = 50_000

_COLUMNS = tuple(name for name, _ in DOCUMENT_COLUMN_TYPES)
_ALL = ", ".join(f"d.{name}" for name in _COLUMNS)


def _pg_type(sql_type: str) -> str:
    sql_type = sql_type.replace("REAL", "DOUBLE PRECISION")
    return re.sub(r"^TEXT\b", 'TEXT COLLATE "C"', sql_type)


_DOCUMENTS = (
    "CREATE TABLE IF NOT EXISTS documents ("
    + ", ".join(f"{name} {_pg_type(kind)}" for name, kind in DOCUMENT_COLUMN_TYPES)
    + ", search_text TEXT NOT NULL DEFAULT '')"
)

# Forward migrations: MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        _DOCUMENTS,
        "CREATE INDEX IF NOT EXISTS documents_number ON documents (invoice_number)",
        "CREATE INDEX IF NOT EXISTS documents_code ON documents (invoice_code, invoice_number)",
        "CREATE INDEX IF NOT EXISTS documents_day ON documents "
        "(issue_day NULLS FIRST, source_name, document_id)",
        "CREATE INDEX IF NOT EXISTS documents_status_day ON documents "
        "(status, issue_day NULLS FIRST, source_name, document_id)",
        "CREATE INDEX IF NOT EXISTS documents_amount ON documents (total_amount_num)",
        "CREATE INDEX IF NOT EXISTS documents_seller_tax ON documents (seller_tax_id)",
        "CREATE INDEX IF NOT EXISTS documents_buyer_tax ON documents (buyer_tax_id)",
        "CREATE INDEX IF NOT EXISTS documents_seller_key ON documents (seller_key, issue_day)",
        "CREATE INDEX IF NOT EXISTS documents_buyer_key ON documents (buyer_key, issue_day)",
        "CREATE INDEX IF NOT EXISTS documents_review ON documents (review_state)",
        # Every name key once (a few thousand parties for 100,000 invoices): fuzzy search reads these.
        'CREATE TABLE IF NOT EXISTS party_keys (kind TEXT COLLATE "C" NOT NULL, key TEXT COLLATE "C" NOT NULL, '
        "PRIMARY KEY (kind, key))",
        "CREATE INDEX IF NOT EXISTS party_keys_trgm ON party_keys USING gin (key gin_trgm_ops)",
        "CREATE INDEX IF NOT EXISTS documents_text_trgm ON documents USING gin (search_text gin_trgm_ops)",
        'CREATE TABLE IF NOT EXISTS failures (document_id TEXT COLLATE "C" PRIMARY KEY, '
        "source_name TEXT NOT NULL, error_type TEXT NOT NULL, message TEXT NOT NULL, "
        "failed_at DOUBLE PRECISION NOT NULL)",
        # What ``invoices reconcile`` writes (the same tables as in an SQLite index).
        "CREATE TABLE IF NOT EXISTS reconciliation (id BIGSERIAL PRIMARY KEY, document_id TEXT, "
        "ledger_row INTEGER, outcome TEXT, score DOUBLE PRECISION, differences TEXT, reason_en TEXT, "
        "reason_zh TEXT, reconciled_at DOUBLE PRECISION)",
        "CREATE INDEX IF NOT EXISTS reconciliation_document ON reconciliation (document_id)",
        "CREATE INDEX IF NOT EXISTS reconciliation_outcome ON reconciliation (outcome)",
        "CREATE TABLE IF NOT EXISTS ledger_rows (row_number INTEGER PRIMARY KEY, ledger_file TEXT NOT NULL, "
        "invoice_code TEXT, invoice_number TEXT, issue_date TEXT, amount_excl_tax TEXT, tax_amount TEXT, "
        "total_amount TEXT, seller_name TEXT, seller_tax_id TEXT, buyer_name TEXT, buyer_tax_id TEXT, "
        "raw TEXT NOT NULL, imported_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE IF NOT EXISTS reconciliation_options (options TEXT NOT NULL, "
        "reconciled_at DOUBLE PRECISION NOT NULL)",
        # The hot folder's claims, shared by watchers on several machines.
        "CREATE TABLE IF NOT EXISTS claim_owners (owner TEXT PRIMARY KEY, heartbeat DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
        "claimed_at DOUBLE PRECISION NOT NULL)",
    ),
    (
        # The three-way lines of ``invoices reconcile`` (issue 15), as in an SQLite index; ``id`` keeps
        # the order they were written in (SQLite's rowid).
        "CREATE TABLE IF NOT EXISTS reconciliation_lines (id BIGSERIAL PRIMARY KEY, document_id TEXT, "
        "ledger_row INTEGER, platform_source TEXT, invoice_code TEXT, invoice_number TEXT, issue_date TEXT, "
        "total_amount TEXT, seller_name TEXT, outcome TEXT NOT NULL, also TEXT NOT NULL, "
        "in_held INTEGER NOT NULL, in_ledger INTEGER NOT NULL, in_platform INTEGER NOT NULL, "
        "platform_status TEXT, risk TEXT, deducted INTEGER, reversed_amount TEXT, remaining_amount TEXT, "
        "differences TEXT NOT NULL, reason_en TEXT NOT NULL, reason_zh TEXT NOT NULL, "
        "reconciled_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX IF NOT EXISTS reconciliation_lines_outcome ON reconciliation_lines (outcome)",
        "CREATE INDEX IF NOT EXISTS reconciliation_lines_status ON reconciliation_lines (platform_status)",
        "CREATE INDEX IF NOT EXISTS reconciliation_lines_document ON reconciliation_lines (document_id)",
    ),
)
assert len(MIGRATIONS) == SCHEMA_VERSION

_SCHEMA_LOCK = 0x1D0C5  # pg_advisory_xact_lock key: one process migrates at a time


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1@", url)


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines)) or type(exc).__name__


class PostgresIndex(IndexBase):
    _EVERY_COLUMN = _ALL  # not d.*: the table holds search_text besides
    _ORDER_BY = " ORDER BY d.issue_day NULLS FIRST, d.source_name, d.document_id"
    _NULLS_ORDER = (" NULLS FIRST", " NULLS LAST")  # as SQLite sorts them (PostgreSQL: the other way)
    _LIKE_ESCAPED = "LIKE ?"  # a backslash escapes by default
    _POSITION = "strpos"
    _FAILURE = (
        "INSERT INTO failures VALUES (%s, %s, %s, %s, %s) ON CONFLICT (document_id) DO UPDATE SET "
        "source_name = excluded.source_name, error_type = excluded.error_type, "
        "message = excluded.message, failed_at = excluded.failed_at"
    )
    _FAILURES_PER_HOUR = "SELECT floor(failed_at / 3600)::bigint, COUNT(*) FROM failures GROUP BY 1"

    def __init__(self, url: str, connect_timeout: float = 10.0) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise MissingDependency(
                'the PostgreSQL index needs psycopg: pip install "psycopg[binary]"'
            ) from exc
        self._psycopg = psycopg
        self.url = url
        self.location = redact(url)
        self.connect_timeout = connect_timeout
        self.is_new = False
        self.schema_replaced = False
        self._db = self._connect()
        self._migrate()

    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            db = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, int(self.connect_timeout)),
                application_name="invoices",
            )
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot connect to the PostgreSQL index {self.location}: {_one_line(exc)}"
            ) from exc
        except ValueError as exc:  # a malformed URL
            raise StorageError(f"not a PostgreSQL URL: {self.location}: {exc}") from exc
        return db

    def _connection(self) -> Any:
        """The connection, opened again if the server dropped it (a restart, a failover)."""
        if self._db.closed or self._db.broken:
            log.info("reconnecting to the PostgreSQL index %s", self.location)
            self._db = self._connect()
        return self._db

    def _migrate(self) -> None:
        psycopg = self._psycopg
        try:
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = self._db.execute("SELECT max(version) FROM schema_version").fetchone()
                version = row[0] or 0
                if version > SCHEMA_VERSION:
                    raise StorageError(
                        f"the PostgreSQL index {self.location} has layout {version}, newer than this "
                        f"program's {SCHEMA_VERSION}: upgrade invoice-pipeline"
                    )
                self.is_new = version == 0
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        self._db.execute(statement)
                    log.info("PostgreSQL index %s: layout %d -> %d", self.location, step, step + 1)
                if version != SCHEMA_VERSION:
                    self._db.execute("DELETE FROM schema_version")
                    self._db.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
        except psycopg.Error as exc:
            self._db.close()
            raise StorageError(
                f"cannot prepare the PostgreSQL index {self.location}: {_one_line(exc)}"
            ) from exc
        self._db.execute("SET pg_trgm.similarity_threshold = 0.2")
        self._db.execute("SET pg_trgm.word_similarity_threshold = 0.5")

    @property
    def path(self) -> Any:
        """SQLite's file: a tool that opens the index file itself cannot use a PostgreSQL index."""
        raise StorageError(f"this needs an SQLite index file; {self.location} is PostgreSQL")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _errors_as(self, what: str) -> Iterator[None]:
        """psycopg's errors as ``StorageError``: "index <what> failed"."""
        try:
            yield
        except self._psycopg.Error as exc:
            raise StorageError(f"index {what} failed ({self.location}): {_one_line(exc)}") from exc

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._errors_as("write"):
            db = self._connection()
            with db.transaction():
                yield db

    @staticmethod
    def _sql(statement: str) -> str:
        """Shared SQL uses ``?`` placeholders; psycopg wants ``%s``."""
        return statement.replace("?", "%s")

    def _read(self, statement: str, params: Sequence[Any] = (), what: str = "query") -> list[tuple[Any, ...]]:
        with self._errors_as(what):
            return self._connection().execute(self._sql(statement), params).fetchall()

    def _dicts(self, statement: str, params: Sequence[Any] = (), what: str = "query") -> list[dict[str, Any]]:
        with self._errors_as(what):
            cursor = self._connection().execute(self._sql(statement), params)
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # ---- writing --------------------------------------------------------------------------

    def upsert_many(self, entries: Iterable[IndexEntry]) -> int:
        """Insert or replace documents in one transaction; returns how many."""
        rows = [_values(entry) for entry in entries]
        if not rows:
            return 0
        with self._write() as db, db.cursor() as cursor:
            cursor.executemany(_UPSERT, rows)
            cursor.execute("DELETE FROM failures WHERE document_id = ANY(%s)", ([row[0] for row in rows],))
            _add_party_keys(cursor, rows)
        return len(rows)

    def rebuild(self, entries: Iterable[IndexEntry], failures: Iterable[FailureEntry]) -> tuple[int, int]:
        """Replace every document and failure in one transaction (readers see old or new, never half)."""
        documents = 0
        with self._write() as db, db.cursor() as cursor:
            cursor.execute("DELETE FROM documents")
            cursor.execute("DELETE FROM failures")
            cursor.execute("DELETE FROM party_keys")
            cursor.executemany(
                self._FAILURE,
                [(f.document_id, f.source_name, f.error_type, f.message, f.failed_at) for f in failures],
            )
            batch: list[tuple[Any, ...]] = []
            stored: list[str] = []
            for entry in entries:
                batch.append(_values(entry))
                documents += 1
                if len(batch) >= 1000:
                    cursor.executemany(_UPSERT, batch)
                    _add_party_keys(cursor, batch)
                    stored += [row[0] for row in batch]
                    batch.clear()
            if batch:
                cursor.executemany(_UPSERT, batch)
                _add_party_keys(cursor, batch)
                stored += [row[0] for row in batch]
            # A failure of a document stored since (a re-run fixed it) goes, as with an upsert.
            cursor.execute("DELETE FROM failures WHERE document_id = ANY(%s)", (stored,))
        with self._write() as db:
            db.execute("ANALYZE documents")
        return documents, int(self._read("SELECT COUNT(*) FROM failures")[0][0])

    # ---- reading: PostgreSQL's own clauses -------------------------------------------------

    def _any_key(self, column: str, keys: list[str], params: list[Any]) -> str:
        params.append(keys)
        return f"d.{column} = ANY(?)"

    def _text_clause(self, text: str, params: list[Any]) -> str | None:
        # Each word in the text, whatever its length (the trigram index answers three or more).
        terms = text_terms(text)
        params += [like_pattern(term) for term in terms]
        return " AND ".join("d.search_text ILIKE ?" for _ in terms) or None

    def _key_candidates(self, column: str, target: str) -> list[str]:
        """Every key of ``party_keys``; past ``FUZZY_SCAN_KEYS`` those the trigram index proposes
        (containing ``target``, similar to it, or similar to a part of it)."""
        (count,) = self._read("SELECT COUNT(*) FROM party_keys WHERE kind = ?", (column,))[0]
        if count <= FUZZY_SCAN_KEYS:
            rows = self._read("SELECT key FROM party_keys WHERE kind = ?", (column,))
        else:
            rows = self._read(
                "SELECT key FROM party_keys WHERE kind = ? AND (key LIKE ? OR key %% ? OR key %%> ?)",
                (column, like_pattern(target), target, target),
            )
        return [row[0] for row in rows]

    # ---- the reconciliation's tables ------------------------------------------------------------

    @contextmanager
    def reconciliation_tables(self, write: bool = False) -> Iterator[ReconciliationTables]:
        """The reconciliation's tables (``pipeline.reconcile.tables``) in one transaction, spoken to in
        SQLite's dialect as an SQLite index is; ``write``: one writer at a time (an advisory lock, as
        ``BEGIN IMMEDIATE`` in SQLite), so a re-match's reading of the claims stays true until written."""
        with self._errors_as("reconciliation"):
            db = self._connection()
            with db.transaction():
                if write:
                    db.execute("SELECT pg_advisory_xact_lock(%s)", (_RECONCILE_LOCK,))
                yield ReconciliationTables(db, self._psycopg, self.location)

    # ---- the web app: the PostgreSQL side of statistics, reconciliation, batches -----------------
    # The same answers as SqliteIndex's issue-16 block; read-only.

    def _has_three_way_lines(self) -> bool:
        return bool(self._read("SELECT 1 FROM reconciliation_lines LIMIT 1"))

    def _statistics_sums(self) -> str:
        amount, tax = _number("d.amount_excl_tax"), _number("d.tax_amount")
        return (
            f"COUNT(*) AS count, ROUND(COALESCE(SUM({amount}), 0)::numeric, 2)::float8 AS amount, "
            f"ROUND(COALESCE(SUM({tax}), 0)::numeric, 2)::float8 AS tax, "
            "ROUND(COALESCE(SUM(d.total_amount_num), 0)::numeric, 2)::float8 AS total"
        )

    def _statistics_groups(self, where: str, sums: str) -> str:
        amount, tax = _number("d.amount_excl_tax"), _number("d.tax_amount")
        # The effective rate, tax / amount excl. tax, in whole percent (halves away from zero, as SQLite).
        rate = (
            f"CASE WHEN {amount} > 0 AND d.tax_amount IS NOT NULL THEN "
            f"ROUND((100.0 * COALESCE({tax}, 0) / {amount})::numeric)::integer END"
        )
        not_in_ledger = f"COUNT(*) FILTER (WHERE d.document_id IN ({NOT_IN_LEDGER_DOCUMENTS}))"
        return (
            f"SELECT substr(d.issue_day, 1, 7) AS month, d.doc_type AS kind, {rate} AS rate, "
            f"floor(d.ingested_at / 3600)::bigint AS hour, {sums}, "
            f"COUNT(*) FILTER (WHERE d.review_state <> 'none') AS reviewed, {not_in_ledger} AS not_in_ledger "
            f"FROM documents d{where} GROUP BY 1, 2, 3, 4"
        )

    def reconciliation_of(self, document_id: str) -> dict[str, Any] | None:
        """The latest reconciliation outcome of one document, with its differences, or None."""
        rows = self._dicts(
            f"SELECT {_OUTCOME_COLUMNS} FROM reconciliation WHERE document_id = ? "
            "ORDER BY reconciled_at DESC, id DESC LIMIT 1",
            (document_id,),
        )
        return with_differences(rows[0]) if rows else None

    def reconciliation_outcomes(
        self, outcome: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]:
        """The latest run's outcomes (invoices and lone ledger rows), newest run first."""
        where, params = "", []
        if outcome:
            where, params = " WHERE r.outcome = ?", [outcome]
        columns = ", ".join(f"r.{name}" for name in _OUTCOME_COLUMNS.split(", "))
        rows = self._dicts(
            f"SELECT {columns}, d.source_name, d.invoice_number, d.seller_name, d.total_amount "
            f"FROM reconciliation r LEFT JOIN documents d ON d.document_id = r.document_id{where} "
            "ORDER BY r.reconciled_at DESC, r.id LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
        total = self._read(f"SELECT COUNT(*) FROM reconciliation r{where}", params)[0][0]
        return [with_differences(row) for row in rows], int(total)

    def ingest_batches(self, limit: int = 30) -> list[dict[str, Any]]:
        """Documents per local day of ingestion (a batch), newest first, with their states and pages.

        Grouped per quarter hour here and into this machine's local days in Python (SQLite's
        ``'localtime'``): the server's time zone may differ, and every UTC offset is whole quarters.
        """
        quarters = self._read(
            "SELECT floor(ingested_at / 900)::bigint, COUNT(*), SUM(page_count), "
            "COUNT(*) FILTER (WHERE status = 'ok'), COUNT(*) FILTER (WHERE status = 'needs_review'), "
            "COUNT(*) FILTER (WHERE status = 'not_an_invoice'), MIN(ingested_at), MAX(ingested_at) "
            "FROM documents GROUP BY 1"
        )
        days: dict[str, dict[str, Any]] = {}
        for quarter, documents, pages, ok, review, other, first, last in quarters:
            day = time.strftime("%Y-%m-%d", time.localtime(int(quarter) * 900))
            entry = days.setdefault(
                day,
                {
                    "day": day,
                    "documents": 0,
                    "pages": 0,
                    "ok": 0,
                    "needs_review": 0,
                    "not_an_invoice": 0,
                    "first": first,
                    "last": last,
                },
            )
            entry["documents"] += int(documents)
            entry["pages"] += int(pages or 0)
            entry["ok"] += int(ok)
            entry["needs_review"] += int(review)
            entry["not_an_invoice"] += int(other)
            entry["first"] = min(entry["first"], first)
            entry["last"] = max(entry["last"], last)
        failed: dict[str, int] = {}
        for quarter, n in self._read(
            "SELECT floor(failed_at / 900)::bigint, COUNT(*) FROM failures GROUP BY 1"
        ):
            day = time.strftime("%Y-%m-%d", time.localtime(int(quarter) * 900))
            failed[day] = failed.get(day, 0) + int(n)
        newest = sorted(days, reverse=True)[: int(limit)]
        return [{**days[day], "failed": failed.get(day, 0)} for day in newest]


_UPSERT = (
    f"INSERT INTO documents ({', '.join(_COLUMNS)}, search_text) "
    f"VALUES ({', '.join('%s' for _ in _COLUMNS)}, %s) ON CONFLICT (document_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in (*_COLUMNS, "search_text") if name != "document_id")
)


_RECONCILE_LOCK = 0x1D0C6  # pg_advisory_xact_lock key: one writer of the reconciliation at a time
_ROWID = re.compile(r"\browid\b", re.IGNORECASE)
_INSTR = re.compile(r"\binstr\(", re.IGNORECASE)


def _from_sqlite(statement: str) -> str:
    """SQLite's dialect as the reconciliation writes it, in PostgreSQL's: ``?`` placeholders, the
    tables' ``rowid`` (their ``id`` here: the order rows were written in) and ``instr``."""
    statement = _INSTR.sub("strpos(", _ROWID.sub("id", statement))
    return statement.replace("%", "%%").replace("?", "%s")


class ReconciliationRow(tuple):  # type: ignore[type-arg]
    """A row read by name or position, as ``sqlite3.Row``."""

    names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> ReconciliationRow:
        row = super().__new__(cls, values)
        row.names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        # ``id`` stands in for SQLite's rowid, which ``SELECT *`` does not give: nor does it here.
        return [name for name in self.names if name != "id"]


class _Cursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        description = cursor.description or ()
        self._names = {column.name: k for k, column in enumerate(description)}

    def fetchone(self) -> ReconciliationRow | None:
        row = self._cursor.fetchone() if self._names else None
        return None if row is None else ReconciliationRow(row, self._names)

    def fetchall(self) -> list[ReconciliationRow]:
        rows = self._cursor.fetchall() if self._names else []
        return [ReconciliationRow(row, self._names) for row in rows]

    def __iter__(self) -> Iterator[ReconciliationRow]:
        return iter(self.fetchall())


class ReconciliationTables:
    """``execute``/``executemany`` in SQLite's dialect, inside ``PostgresIndex.reconciliation_tables``'s
    transaction. The tables are made by the migrations, so their ``CREATE … IF NOT EXISTS`` do nothing."""

    def __init__(self, db: Any, psycopg: Any, location: str) -> None:
        self._db, self._psycopg, self._location = db, psycopg, location

    def execute(self, statement: str, params: Sequence[Any] = ()) -> _Cursor:
        try:
            return _Cursor(self._db.execute(_from_sqlite(statement), tuple(params)))
        except self._psycopg.Error as exc:
            raise StorageError(f"index reconciliation failed ({self._location}): {_one_line(exc)}") from exc

    def executemany(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._db.cursor() as cursor:
                cursor.executemany(_from_sqlite(statement), [tuple(row) for row in rows])
        except self._psycopg.Error as exc:
            raise StorageError(f"index reconciliation failed ({self._location}): {_one_line(exc)}") from exc


_OUTCOME_COLUMNS = "document_id, ledger_row, outcome, score, differences, reason_en, reason_zh, reconciled_at"
# A decimal amount stored as text, as a number (NULL when it is not one: SQLite's CAST never fails).
_DECIMAL = "'^-{0,1}[0-9]+([.][0-9]+){0,1}$'"


def _number(column: str) -> str:
    return f"(CASE WHEN {column} ~ {_DECIMAL} THEN {column}::float8 END)"


_SELLER = _COLUMNS.index("seller_key")
_BUYER = _COLUMNS.index("buyer_key")


def _add_party_keys(cursor: Any, rows: list[tuple[Any, ...]]) -> None:
    keys = {("seller_key", row[_SELLER]) for row in rows if row[_SELLER]}
    keys |= {("buyer_key", row[_BUYER]) for row in rows if row[_BUYER]}
    if keys:
        cursor.executemany("INSERT INTO party_keys VALUES (%s, %s) ON CONFLICT DO NOTHING", sorted(keys))


def _values(entry: IndexEntry) -> tuple[Any, ...]:
    row = document_row(entry)
    search = "\n".join(value for value in search_values(entry.result) if value)
    # PostgreSQL text cannot hold NUL (SQLite can): drop it rather than fail the document.
    return tuple(
        value.replace("\x00", "") if isinstance(value, str) else value
        for value in (*(row[name] for name in _COLUMNS), search)
    )
