"""The queryable index: one row per document, rebuilt from the store at any time.

One protocol (``Index``), two backends that pass the same tests:

* ``pipeline.store.index_sqlite.SqliteIndex``: one SQLite file (the embedded default), beside a
  directory store or in the cache for an S3 store;
* ``pipeline.store.index_postgres.PostgresIndex``: a PostgreSQL database shared by every machine
  that works on one store (``--index postgresql://USER@HOST:PORT/DB``).

This module holds what both share: the filters (``Query``), the row written for a document
(``document_row``), the name keys fuzzy search compares, and ``open_index``, which picks the
backend from the index setting. The hot folder's claims (``claim``, ``heartbeat``…) live in the
index too, so that watchers on several machines share them. What both backends do the same way
(listings, search, statistics, claims) is written once in ``pipeline.store.index_base``.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pipeline.fapiao import as_date, parse_amount
from pipeline.model import FieldSource, FieldStatus, InvoiceResult

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

DOCUMENT_STATUSES = ("ok", "needs_review", "not_an_invoice")
# Outcomes of ``invoices reconcile`` (issue 4), kept in its ``reconciliation`` table.
RECONCILIATION_OUTCOMES = ("matched", "matched_with_differences", "not_in_ledger", "duplicate")
REVIEW_STATES = ("none", "pending", "reviewed")

# What free-text search looks in.
FTS_COLUMNS = ("source_name", "buyer_name", "seller_name", "vendor_name", "text")

# Every column of a document row, in table order, with its SQL type (both backends).
DOCUMENT_COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("document_id", "TEXT PRIMARY KEY"),
    ("source_name", "TEXT NOT NULL"),
    ("doc_type", "TEXT NOT NULL"),
    ("status", "TEXT NOT NULL"),
    *((name, "TEXT") for name in INDEXED_FIELDS),
    ("issue_day", "TEXT"),
    ("total_amount_num", "REAL"),
    ("seller_key", "TEXT"),
    ("buyer_key", "TEXT"),
    ("confidence", "REAL"),
    ("review_fields", "TEXT NOT NULL DEFAULT ''"),
    ("review_state", "TEXT NOT NULL DEFAULT 'none'"),
    ("review_count", "INTEGER NOT NULL DEFAULT 0"),
    ("reviewed_at", "REAL"),
    ("page_count", "INTEGER NOT NULL"),
    ("engine", "TEXT NOT NULL"),
    ("result_key", "TEXT NOT NULL"),
    ("original_key", "TEXT NOT NULL"),
    ("page_keys", "TEXT NOT NULL DEFAULT '[]'"),
    ("ingested_at", "REAL NOT NULL"),
    ("fields_json", "TEXT NOT NULL"),
    ("field_details_json", "TEXT NOT NULL DEFAULT '{}'"),
)
DOCUMENT_COLUMNS = frozenset(name for name, _ in DOCUMENT_COLUMN_TYPES)

# A claim whose owner has not beaten its heart for this long belongs to a dead watcher.
CLAIM_STALE_SECONDS = 60.0

_LEGAL_SUFFIXES = re.compile(
    r"(股份有限公司|有限责任公司|有限公司|分公司|公司|集团|"
    r"co\.?,?ltd\.?|co\.?ltd|company|limited|ltd\.?|inc\.?|llc|gmbh|corp\.?|corporation)$"
)
_NAME_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def name_key(name: str | None) -> str | None:
    """A name reduced for fuzzy matching: NFKC, case-folded, no punctuation or legal-form suffix."""
    if not name:
        return None
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    text = _NAME_NOISE.sub("", text)
    stripped = _LEGAL_SUFFIXES.sub("", text)
    while stripped and stripped != text:  # "…有限公司分公司"
        text, stripped = stripped, _LEGAL_SUFFIXES.sub("", stripped)
    return text or None


def normalize_tax_id(value: str | None) -> str | None:
    if not value:
        return None
    return "".join(unicodedata.normalize("NFKC", value).split()).upper() or None


def fuzzy_matches(target: str, keys: Iterable[str], cutoff: float) -> list[str]:
    """The keys close to ``target`` (a name key): containing it, or a few characters off."""
    from rapidfuzz import fuzz, process

    keys = [key for key in keys if key]
    found = {key for key in keys if target in key}
    found.update(
        key
        for key, _, _ in process.extract(
            target, keys, scorer=fuzz.WRatio, score_cutoff=cutoff, limit=None, processor=None
        )
    )
    return sorted(found)


def text_terms(text: str) -> list[str]:
    """The words of a free-text search (each must occur)."""
    return [term for term in unicodedata.normalize("NFKC", text).split() if term]


def like_pattern(term: str) -> str:
    """``%term%`` for LIKE with ``\\`` as the escape: wildcards in the term are plain characters."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class IndexEntry:
    """One document as the index sees it: the result, where it is stored, and its history."""

    result: InvoiceResult
    result_key: str
    original_key: str
    ingested_at: float
    page_keys: tuple[str, ...] = ()
    review_count: int = 0
    reviewed_at: float | None = None


@dataclass(frozen=True)
class FailureEntry:
    document_id: str
    source_name: str
    error_type: str
    message: str
    failed_at: float


@dataclass(frozen=True)
class Query:
    """Filters of ``invoices query``; every one given must hold (AND)."""

    number: str | None = None
    code: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    seller: str | None = None
    buyer: str | None = None
    tax_id: str | None = None
    amount_min: float | None = None
    amount_max: float | None = None
    status: str | None = None
    needs_review: bool = False
    review_state: str | None = None
    text: str | None = None
    limit: int | None = None
    fuzzy_cutoff: float = 80.0


# The web app's search: its sort keys (columns of ``documents d``) and its box and filters.
SEARCH_SORTS = {
    "date": "d.issue_day",
    "amount": "d.total_amount_num",
    "seller": "d.seller_key",
    "number": "d.invoice_number",
    "status": "d.status",
    "ingested": "d.ingested_at",
    "name": "d.source_name",
}

# The search box: what looks like which key.
BOX_DIGITS = re.compile(r"^\d{6,20}$")
BOX_TAX_ID_LIKE = re.compile(r"^[0-9A-Z]{15,20}$")
BOX_HEX_ID = re.compile(r"^[0-9a-f]{8,64}$")
BOX_HAS_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


@dataclass(frozen=True)
class Search:
    """The search page's box (``q``: any key) and filters; every filter given must hold (AND)."""

    q: str = ""
    date_from: date | None = None
    date_to: date | None = None
    amount_min: float | None = None
    amount_max: float | None = None
    kind: str | None = None  # doc_type
    status: str | None = None  # ok / needs_review / not_an_invoice
    outcome: str | None = None  # the last reconciliation's outcome code (three-way, main or additional)
    platform_status: str | None = None  # the tax platform's status in the last reconciliation
    needs_review: bool = False
    source: str | None = None  # part of the file name (scanner prefix, hot-folder naming)
    batch: date | None = None  # ingested on that day
    fuzzy_cutoff: float = 80.0


def range_filters(
    date_from: date | None,
    date_to: date | None,
    amount_min: float | None,
    amount_max: float | None,
    where: list[str],
    params: list[Any],
    date_column: str = "d.issue_day",
    amount_column: str = "d.total_amount_num",
) -> None:
    """The issue-date and total-amount ranges (of ``Query``, ``Search`` and reconciliation lines)."""
    if date_from:
        where.append(f"{date_column} >= ?")
        params.append(date_from.isoformat())
    if date_to:
        where.append(f"{date_column} <= ?")
        params.append(date_to.isoformat())
    if amount_min is not None:
        where.append(f"{amount_column} >= ?")
        params.append(float(amount_min))
    if amount_max is not None:
        where.append(f"{amount_column} <= ?")
        params.append(float(amount_max))


# A search filter a backend phrases in its own SQL: (value or values, params to append to) -> clause,
# or None when nothing can match.
ClauseBuilder = Callable[..., "str | None"]


def search_where(
    search: Search,
    box_clause: ClauseBuilder,
    status_clause: ClauseBuilder,
    line_clause: ClauseBuilder,
    source_clause: ClauseBuilder,
) -> tuple[str, list[Any]] | None:
    """The WHERE clause of a search (``None``: nothing can match), in ``?`` placeholders. The plain
    filters are the same on every backend; the box, status, reconciliation and file-name clauses are
    the backend's own."""
    where: list[str] = []
    params: list[Any] = []

    def add(clause: str | None) -> bool:
        if clause is None:
            return False
        where.append(clause)
        return True

    box = unicodedata.normalize("NFKC", search.q or "").strip()
    if box and not add(box_clause(box, params, search.fuzzy_cutoff)):
        return None
    range_filters(search.date_from, search.date_to, search.amount_min, search.amount_max, where, params)
    if search.kind:
        where.append("d.doc_type = ?")
        params.append(search.kind)
    if search.needs_review:
        where.append("d.status = 'needs_review'")
    if search.status and not add(status_clause(search.status, params)):
        return None
    if (search.outcome or search.platform_status) and not add(
        line_clause(search.outcome, search.platform_status, params)
    ):
        return None
    if search.source:
        add(source_clause(search.source, params))
    if search.batch:
        start = time.mktime(search.batch.timetuple())
        where.append("d.ingested_at >= ? AND d.ingested_at < ?")
        params += [start, start + 86400]
    return (" WHERE " + " AND ".join(where) if where else ""), params


def simple_filters(query: Query) -> tuple[list[str], list[Any]]:
    """The filters both backends write the same way (``?`` placeholders, documents as ``d``)."""
    where: list[str] = []
    params: list[Any] = []
    if query.number:
        where.append("d.invoice_number = ?")
        params.append(query.number.strip())
    if query.code:
        where.append("d.invoice_code = ?")
        params.append(query.code.strip())
    range_filters(query.date_from, query.date_to, query.amount_min, query.amount_max, where, params)
    if query.tax_id:
        tax_id = normalize_tax_id(query.tax_id)
        where.append("(d.seller_tax_id = ? OR d.buyer_tax_id = ?)")
        params += [tax_id, tax_id]
    if query.needs_review:
        where.append("d.status = 'needs_review'")
    if query.review_state:
        where.append("d.review_state = ?")
        params.append(query.review_state)
    return where, params


def selected_columns(columns: Sequence[str]) -> str:
    """``d.<column>, …``; a name that is not a column of ``documents`` is a ``ValueError``."""
    unknown = set(columns) - DOCUMENT_COLUMNS
    if unknown:
        raise ValueError(f"not index columns: {sorted(unknown)}")
    return ", ".join(f"d.{name}" for name in columns)


@runtime_checkable
class Index(Protocol):
    """What the store, the commands and the hot folder need from an index (either backend)."""

    location: str  # a file path or a URL without its password, for messages
    is_new: bool  # created just now: the caller fills it from the store (reindex)
    schema_replaced: bool  # an older layout was dropped: the caller fills it again

    def close(self) -> None: ...

    # writing
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
    ) -> None: ...

    def upsert_many(self, entries: Iterable[IndexEntry]) -> int: ...

    def record_failure(
        self,
        document_id: str,
        source_name: str,
        error_type: str,
        message: str,
        failed_at: float | None = None,
    ) -> None: ...

    def rebuild(self, entries: Iterable[IndexEntry], failures: Iterable[FailureEntry]) -> tuple[int, int]: ...

    # reading
    def has_document(self, document_id: str) -> bool: ...

    def get(self, document_id_prefix: str) -> list[dict[str, Any]]: ...

    def documents(self) -> list[dict[str, Any]]: ...

    def failures(self) -> list[dict[str, Any]]: ...

    def counts(self) -> dict[str, int]: ...

    def query(self, query: Query, columns: Sequence[str] | None = None) -> list[dict[str, Any]]: ...

    def fuzzy_keys(self, column: str, wanted: str, cutoff: float = 80.0) -> list[str]: ...

    # hot-folder claims shared by watchers on several machines
    def heartbeat(self, owner: str) -> None: ...

    def owner_alive(self, owner: str, stale_after: float = CLAIM_STALE_SECONDS) -> bool: ...

    def claim(self, key: str, owner: str, stale_after: float = CLAIM_STALE_SECONDS) -> bool: ...

    def release(self, key: str, owner: str) -> None: ...

    def retire(self, owner: str) -> None: ...

    # the reconciliation's tables (``pipeline.reconcile.tables`` writes SQLite's dialect: ``?``, rowid)
    def reconciliation_tables(self, write: bool = False) -> AbstractContextManager[Any]: ...

    # the web app (read-only)
    def search(
        self,
        search: Search,
        columns: Sequence[str],
        sort: str = "date",
        descending: bool = True,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], int]: ...

    def statistics(self, search: Search, top_sellers: int = 20) -> dict[str, list[dict[str, Any]]]: ...

    def reconciliation_of(self, document_id: str) -> dict[str, Any] | None: ...

    def reconciliation_outcomes(
        self, outcome: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int]: ...

    def ingest_batches(self, limit: int = 30) -> list[dict[str, Any]]: ...

    def recent_documents(self, limit: int = 20) -> list[dict[str, Any]]: ...

    def recent_failures(self, limit: int = 50) -> list[dict[str, Any]]: ...


def is_postgres_url(location: str | Path | None) -> bool:
    return isinstance(location, str) and location.strip().lower().startswith(("postgresql://", "postgres://"))


def open_index(location: str | Path) -> Index:
    """The index at ``location``: a ``postgresql://`` URL, or an SQLite file path."""
    if is_postgres_url(location):
        from pipeline.store.index_postgres import PostgresIndex

        return PostgresIndex(str(location).strip())
    from pipeline.store.index_sqlite import SqliteIndex

    return SqliteIndex(Path(location).expanduser())


def document_row(entry: IndexEntry) -> dict[str, Any]:
    """The ``documents`` row of one entry (both backends store exactly this)."""
    result = entry.result
    fields = result.fields
    review = [
        name
        for name, found in fields.items()
        if found.status == FieldStatus.NEEDS_REVIEW or (found.status == FieldStatus.MISSING and found.reasons)
    ]
    status = str(result.status)
    reviewed = entry.review_count > 0 or any(f.source == FieldSource.REVIEW for f in fields.values())
    review_state = "reviewed" if reviewed else ("pending" if status == "needs_review" else "none")
    confidences = [found.confidence for found in fields.values() if found.value is not None]
    issue_day = as_date(_text(result.value("issue_date")))
    total = amount_number(result.value("total_amount"))
    seller = result.value("seller_name") or result.value("vendor_name")
    page_keys = list(entry.page_keys)
    return {
        "document_id": result.document_id,
        "source_name": result.source_name,
        "doc_type": str(result.doc_type),
        "status": status,
        **{name: _text(result.value(name)) for name in INDEXED_FIELDS},
        "buyer_tax_id": normalize_tax_id(_text(result.value("buyer_tax_id"))),
        "seller_tax_id": normalize_tax_id(_text(result.value("seller_tax_id"))),
        "issue_day": issue_day.isoformat() if issue_day else None,
        "total_amount_num": total,
        "seller_key": name_key(_text(seller)),
        "buyer_key": name_key(_text(result.value("buyer_name"))),
        "confidence": round(min(confidences), 4) if confidences else None,
        "review_fields": ",".join(review),
        "review_state": review_state,
        "review_count": entry.review_count,
        "reviewed_at": entry.reviewed_at,
        "page_count": len(result.pages),
        "engine": result.engine,
        "result_key": entry.result_key,
        "original_key": entry.original_key,
        "page_keys": json.dumps(page_keys),
        "ingested_at": entry.ingested_at,
        "fields_json": json.dumps({name: found.value for name, found in fields.items()}, ensure_ascii=False),
        "field_details_json": json.dumps(
            {
                name: {
                    "confidence": round(found.confidence, 4),
                    "status": str(found.status),
                    "source": str(found.source),
                }
                for name, found in fields.items()
            }
        ),
    }


def search_values(result: InvoiceResult) -> tuple[str | None, ...]:
    """What free-text search looks in, in ``FTS_COLUMNS`` order."""
    return (
        result.source_name,
        _text(result.value("buyer_name")),
        _text(result.value("seller_name")),
        _text(result.value("vendor_name")),
        "\n".join(line.text for line in result.lines),
    )


def amount_number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        parsed = parse_amount(str(value))
    except (ValueError, ArithmeticError):
        return None
    return float(parsed) if parsed is not None else None


def quality_per_month(
    hours: Iterable[tuple[int, int, int, int]], failures: Iterable[tuple[int, int]]
) -> list[dict[str, Any]]:
    """(hour of ingestion, documents, reviewed, not in ledger) and (hour, failures) as rates
    per local month of ingestion."""
    months: dict[str, dict[str, Any]] = {}
    names: dict[int, str] = {}

    def bucket(hour: int) -> dict[str, Any]:
        month = names.get(hour)
        if month is None:
            month = names[hour] = time.strftime("%Y-%m", time.localtime(hour * 3600))
        return months.setdefault(
            month, {"month": month, "documents": 0, "reviewed": 0, "not_in_ledger": 0, "failed": 0}
        )

    for hour, documents, reviewed, missing in hours:
        entry = bucket(int(hour))
        entry["documents"] += documents
        entry["reviewed"] += reviewed
        entry["not_in_ledger"] += missing
    for hour, failed in failures:
        bucket(int(hour))["failed"] += failed
    out = []
    for key in sorted(months):
        entry = months[key]
        documents, processed = entry["documents"], entry["documents"] + entry["failed"]
        entry["review_rate"] = round(entry["reviewed"] / documents, 4) if documents else 0.0
        entry["failure_rate"] = round(entry["failed"] / processed, 4) if processed else 0.0
        entry["not_in_ledger_rate"] = round(entry["not_in_ledger"] / documents, 4) if documents else 0.0
        out.append(entry)
    return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)
