"""``IndexBase``: what the SQLite and the PostgreSQL index do the same way, written once.

``SqliteIndex`` and ``PostgresIndex`` derive from it and supply only their dialect: how they read
and write, how they test a party key against a list of keys, how they search free text, where the
three-way lines are, and the statistics' aggregates. The SQL here is written in ``?`` placeholders
over ``documents d``; each backend's ``_read``, ``_dicts`` and ``_sql`` put it in its own.

Listings, searches, the statistics' totals and the hot folder's claims live here, so that the two
backends give the same answers by construction, not by keeping two copies alike.
"""

from __future__ import annotations

import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from pipeline.errors import StorageError
from pipeline.model import InvoiceResult
from pipeline.store.index import (
    BOX_DIGITS,
    BOX_HAS_LETTER,
    BOX_HEX_ID,
    BOX_TAX_ID_LIKE,
    CLAIM_STALE_SECONDS,
    DOCUMENT_STATUSES,
    RECONCILIATION_OUTCOMES,
    SEARCH_SORTS,
    IndexEntry,
    Query,
    Search,
    amount_number,
    fuzzy_matches,
    like_pattern,
    name_key,
    quality_per_month,
    search_where,
    selected_columns,
    simple_filters,
    text_terms,
)

FAILURE_COLUMNS = "document_id, source_name, error_type, message, failed_at"

# What ``statistics`` answers; each a list of rows.
STATISTICS_PARTS = ("months", "sellers", "rates", "kinds", "quality")

# A search box amount: digits with an optional currency sign, thousands commas and cents.
_BOX_AMOUNT = re.compile(r"[¥￥$€]?[\d,]+(\.\d{1,2})?")


def latest_outcome_documents(outcome: str) -> str:
    """The ids of the documents whose latest reconciliation has ``outcome`` (an SQL expression: ``?``
    or a quoted literal). A re-run of reconcile supersedes the older rows of a document."""
    return (
        f"SELECT r.document_id FROM reconciliation r WHERE r.outcome = {outcome} "
        "AND r.reconciled_at = (SELECT MAX(r2.reconciled_at) FROM reconciliation r2 "
        "WHERE r2.document_id = r.document_id)"
    )


NOT_IN_LEDGER_DOCUMENTS = latest_outcome_documents("'not_in_ledger'")


def with_differences(row: dict[str, Any]) -> dict[str, Any]:
    """A reconciliation row with its ``differences`` JSON read (unreadable: none)."""
    try:
        row["differences"] = json.loads(row.get("differences") or "[]")
    except ValueError:
        row["differences"] = []
    return row


class IndexBase(ABC):
    """The ``Index`` protocol's logic that does not depend on the database; see the module."""

    location: str  # a file path or a URL without its password, for messages

    # The select list of a whole document row (``documents d``).
    _EVERY_COLUMN: str
    # The listing order: by issue date (undated first), then source name and id.
    _ORDER_BY: str
    # Where NULLs sort in a search, ascending and descending (what SQLite does by itself: first, last).
    _NULLS_ORDER: tuple[str, str]
    # ``LIKE ?`` with a backslash escaping the wildcards.
    _LIKE_ESCAPED: str
    # The function giving the position of a string in another (SQLite's instr, PostgreSQL's strpos).
    _POSITION: str
    # Insert or replace one failure (its five columns), in the backend's own placeholders.
    _FAILURE: str
    # (hour since the epoch, failures) per hour of failure.
    _FAILURES_PER_HOUR: str

    # ---- what each backend supplies ------------------------------------------------------------

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """One transaction; yields a connection whose ``execute`` takes the backend's placeholders."""

    @abstractmethod
    def _sql(self, statement: str) -> str:
        """A statement in ``?`` placeholders, in the backend's own."""

    @abstractmethod
    def _read(self, statement: str, params: Sequence[Any] = (), what: str = "query") -> list[tuple[Any, ...]]:
        """The rows of a read (``?`` placeholders); a database error is a ``StorageError`` naming ``what``."""

    @abstractmethod
    def _dicts(self, statement: str, params: Sequence[Any] = (), what: str = "query") -> list[dict[str, Any]]:
        """As ``_read``, each row a dict by column name."""

    @abstractmethod
    def _any_key(self, column: str, keys: list[str], params: list[Any]) -> str:
        """``d.<column>`` is one of ``keys``."""

    @abstractmethod
    def _text_clause(self, text: str, params: list[Any]) -> str | None:
        """Every word of ``text`` occurs in the document's searchable text (None: no words)."""

    @abstractmethod
    def _has_three_way_lines(self) -> bool:
        """Whether a three-way reconciliation (``reconciliation_lines``, issue 15) wrote lines."""

    @abstractmethod
    def _statistics_sums(self) -> str:
        """The select list ``count, amount, tax, total`` of a group of ``documents d``, the amounts
        rounded to cents (unread ones count as 0)."""

    @abstractmethod
    def _statistics_groups(self, where: str, sums: str) -> str:
        """``sums`` per (month, kind, rate, hour) over ``documents d{where}``, with the ``reviewed``
        and ``not_in_ledger`` counts: the rate is tax / amount excl. tax in whole percent, the hour
        one since the epoch of ingestion."""

    @abstractmethod
    def upsert_many(self, entries: Iterable[IndexEntry]) -> int: ...

    @abstractmethod
    def _key_candidates(self, column: str, target: str) -> Iterable[str]:
        """The name keys in ``column`` (``seller_key``/``buyer_key``) that may be close to ``target``:
        all of them, or those an index proposes; ``fuzzy_keys`` decides."""

    def _keys_filter(self, column: str, keys: list[str], params: list[Any]) -> str:
        """A listing's filter on a party key (ANDed with the others)."""
        return self._any_key(column, keys, params)

    def _outcome_clause(self, outcome: str, params: list[Any]) -> str | None:
        """Documents whose latest reconciliation has ``outcome`` (None: no document can have it)."""
        params.append(outcome)
        return f"d.document_id IN ({latest_outcome_documents('?')})"

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
                self._FAILURE, (document_id, source_name, error_type, message, failed_at or time.time())
            )

    # ---- reading --------------------------------------------------------------------------

    def has_document(self, document_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM documents WHERE document_id = ?", (document_id,)))

    def get(self, document_id_prefix: str) -> list[dict[str, Any]]:
        prefix = document_id_prefix.lower()
        if not prefix or not all(ch in "0123456789abcdef" for ch in prefix):
            return []
        # A range, not LIKE: the primary key's B-tree answers it directly.
        return self._dicts(
            f"SELECT {self._EVERY_COLUMN} FROM documents d WHERE d.document_id >= ? AND d.document_id < ? "
            "ORDER BY d.document_id LIMIT 2",
            (prefix, prefix + "g"),
        )

    def documents(self) -> list[dict[str, Any]]:
        return self.query(Query())

    def failures(self) -> list[dict[str, Any]]:
        return self._dicts(f"SELECT {FAILURE_COLUMNS} FROM failures ORDER BY failed_at, document_id")

    def counts(self) -> dict[str, int]:
        counts = {
            status: int(n)
            for status, n in self._read("SELECT status, COUNT(*) FROM documents GROUP BY status")
        }
        counts["failed"] = int(self._read("SELECT COUNT(*) FROM failures")[0][0])
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
                where.append(self._keys_filter(column, keys, params))
        if query.text:
            clause = self._text_clause(query.text, params)
            if clause:
                where.append(clause)
        sql = f"SELECT {selected_columns(columns) if columns else self._EVERY_COLUMN} FROM documents d"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += self._ORDER_BY
        if query.limit:
            sql += " LIMIT ?"
            params.append(int(query.limit))
        return self._dicts(sql, params)

    def _status_clause(self, status: str, params: list[Any]) -> str | None:
        """A document status, or the outcome of its latest reconciliation (None: none can have it)."""
        if status in DOCUMENT_STATUSES:
            params.append(status)
            return "d.status = ?"
        if status not in RECONCILIATION_OUTCOMES:
            raise StorageError(f"unknown status {status!r}")
        return self._outcome_clause(status, params)

    def fuzzy_keys(self, column: str, wanted: str, cutoff: float = 80.0) -> list[str]:
        """Distinct name keys in ``column`` close to ``wanted`` (substring or a few characters off)."""
        target = name_key(wanted)
        if not target or column not in {"seller_key", "buyer_key"}:
            return []
        return fuzzy_matches(target, self._key_candidates(column, target), cutoff)

    # ---- hot-folder claims shared by watchers on several machines -----------------------------

    def heartbeat(self, owner: str) -> None:
        with self._write() as db:
            db.execute(
                self._sql(
                    "INSERT INTO claim_owners VALUES (?, ?) "
                    "ON CONFLICT (owner) DO UPDATE SET heartbeat = excluded.heartbeat"
                ),
                (owner, time.time()),
            )

    def owner_alive(self, owner: str, stale_after: float = CLAIM_STALE_SECONDS) -> bool:
        rows = self._read("SELECT heartbeat FROM claim_owners WHERE owner = ?", (owner,))
        return bool(rows) and rows[0][0] >= time.time() - stale_after

    def claim(self, key: str, owner: str, stale_after: float = CLAIM_STALE_SECONDS) -> bool:
        """Take ``key`` for ``owner``: True if it was free or its owner is dead (stale heartbeat)."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                self._sql(
                    "INSERT INTO claims VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                    "owner = excluded.owner, claimed_at = excluded.claimed_at "
                    "WHERE claims.owner = excluded.owner OR NOT EXISTS (SELECT 1 FROM claim_owners o "
                    "WHERE o.owner = claims.owner AND o.heartbeat >= ?) RETURNING owner"
                ),
                (key, owner, now, now - stale_after),
            ).fetchone()
        return row is not None

    def release(self, key: str, owner: str) -> None:
        with self._write() as db:
            db.execute(self._sql("DELETE FROM claims WHERE key = ? AND owner = ?"), (key, owner))

    def retire(self, owner: str) -> None:
        """A watcher that stops cleanly: its (released) claims and its heartbeat go."""
        with self._write() as db:
            db.execute(self._sql("DELETE FROM claims WHERE owner = ?"), (owner,))
            db.execute(self._sql("DELETE FROM claim_owners WHERE owner = ?"), (owner,))

    # ---- the web app (issue 16): search across keys, statistics, recent documents -------------
    # Read-only; each search takes a ``Search`` (the box plus the page's filters).

    def _search_where(self, search: Search) -> tuple[str, list[Any]] | None:
        """The WHERE clause of a search (``None``: nothing can match)."""
        return search_where(
            search, self._box_clause, self._status_clause, self._line_clause, self._source_clause
        )

    def _source_clause(self, source: str, params: list[Any]) -> str:
        params.append(like_pattern(source))
        return f"d.source_name {self._LIKE_ESCAPED}"

    def _line_clause(self, outcome: str | None, platform_status: str | None, params: list[Any]) -> str | None:
        """Documents whose line in the last three-way reconciliation has this outcome (main or
        additional) and platform status. Without three-way lines a ledger outcome comes from the
        ``reconciliation`` table (an index reconciled before the lines existed)."""
        if not self._has_three_way_lines():
            if platform_status or outcome not in RECONCILIATION_OUTCOMES:
                return None
            return self._status_clause(str(outcome), params)
        where = ["l.document_id IS NOT NULL"]
        if outcome:
            where.append(f"(l.outcome = ? OR {self._POSITION}(',' || l.also || ',', ?) > 0)")
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
        if amount is not None and _BOX_AMOUNT.fullmatch(compact):
            options.append("d.total_amount_num BETWEEN ? AND ?")
            params += [amount - 0.005, amount + 0.005]
        if BOX_HAS_LETTER.search(box):
            for column in ("seller_key", "buyer_key"):
                keys = self.fuzzy_keys(column, box, cutoff)
                if keys:
                    options.append(self._any_key(column, keys, params))
        # Words of three characters or more, each in the text (a trigram index answers them).
        long_terms = [term for term in text_terms(box) if len(term) >= 3]
        if long_terms:
            text = self._text_clause(" ".join(long_terms), params)
            if text:
                options.append(f"({text})")
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
        selected = selected_columns(columns)
        order = SEARCH_SORTS.get(sort, SEARCH_SORTS["date"])
        direction = "DESC" if descending else "ASC"
        # NULLs first ascending and last descending (as SQLite sorts them); the id breaks ties stably.
        rows = self._dicts(
            f"SELECT {selected} FROM documents d{where} "
            f"ORDER BY {order} {direction}{self._NULLS_ORDER[descending]}, d.document_id {direction} "
            "LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
            "search",
        )
        total = self._read(f"SELECT COUNT(*) FROM documents d{where}", params, "search")[0][0]
        return rows, int(total)

    def statistics(self, search: Search, top_sellers: int = 20) -> dict[str, list[dict[str, Any]]]:
        """Counts and amounts per month, seller, tax rate and kind; review/failure/ledger rates per
        month of ingestion. Amounts are sums of the stored values (unread ones count as 0)."""
        out: dict[str, list[dict[str, Any]]] = {part: [] for part in STATISTICS_PARTS}
        built = self._search_where(search)
        if built is None:
            return out
        where, params = built
        # Months, kinds, rates and the quality per hour of ingestion come from one read grouped by all
        # four, added up here; the sellers need their own.
        sums = self._statistics_sums()
        rows = self._dicts(self._statistics_groups(where, sums), params, "statistics")
        # SQLite reads these in the order of documents_stats_seller: grouped as read, without sorting.
        sellers = (
            f"SELECT d.seller_key AS seller_key, {sums} FROM documents d{where} "
            f"GROUP BY d.seller_key ORDER BY total DESC, count DESC LIMIT {int(top_sellers)}"
        )
        out["sellers"] = self._dicts(sellers, params, "statistics")
        # Failures have no invoice fields: they count only in an unfiltered view.
        failures = [] if where else self._read(self._FAILURES_PER_HOUR, (), "statistics")
        out["months"] = sorted(_totals(rows, "month"), key=_none_last("month"))
        out["kinds"] = sorted(_totals(rows, "kind"), key=lambda e: (-e["count"], e["kind"] or ""))
        out["rates"] = sorted(_totals(rows, "rate"), key=_none_last("rate"))
        out["quality"] = quality_per_month(
            ((row["hour"], row["count"], row["reviewed"] or 0, row["not_in_ledger"] or 0) for row in rows),
            ((int(hour), int(n)) for hour, n in failures),
        )
        for row in out["rates"]:
            row["rate"] = f"{row['rate']}%" if row["rate"] is not None else ""
        keys = [row["seller_key"] for row in out["sellers"] if row["seller_key"]]
        names_params: list[Any] = []
        names = dict(
            self._read(
                "SELECT d.seller_key, MAX(COALESCE(d.seller_name, d.vendor_name)) FROM documents d "
                f"WHERE {self._any_key('seller_key', keys, names_params)} GROUP BY d.seller_key",
                names_params,
                "statistics",
            )
        )
        for row in out["sellers"]:
            row["seller"] = names.get(row.pop("seller_key"), "") or ""
        return out

    def recent_documents(self, limit: int = 20) -> list[dict[str, Any]]:
        """The documents ingested last, newest first."""
        return self._dicts(
            "SELECT document_id, source_name, doc_type, status, page_count, ingested_at, result_key "
            "FROM documents ORDER BY ingested_at DESC LIMIT ?",
            (int(limit),),
        )

    def recent_failures(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._dicts(
            f"SELECT {FAILURE_COLUMNS} FROM failures ORDER BY failed_at DESC LIMIT ?", (int(limit),)
        )


def _totals(rows: Iterable[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Count, amount, tax and total of ``rows`` added up per value of ``key``, rounded to cents."""
    totals: dict[Any, dict[str, Any]] = {}
    for row in rows:
        entry = totals.get(row[key])
        if entry is None:
            entry = totals[row[key]] = {key: row[key], "count": 0, "amount": 0.0, "tax": 0.0, "total": 0.0}
        entry["count"] += row["count"]
        entry["amount"] += row["amount"]
        entry["tax"] += row["tax"]
        entry["total"] += row["total"]
    for entry in totals.values():
        for column in ("amount", "tax", "total"):
            entry[column] = round(entry[column], 2)
    return list(totals.values())


def _none_last(key: str) -> Callable[[dict[str, Any]], tuple[bool, Any]]:
    """A sort key: by ``key``, None after every value."""
    return lambda entry: (entry[key] is None, entry[key] if entry[key] is not None else 0)
