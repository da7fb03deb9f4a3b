"""The reconciliation in the index database: outcomes, ledger rows and options saved; one invoice
re-matched after a review correction."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import InputError, NotFound, StorageError
from pipeline.fapiao import as_date
from pipeline.reconcile.sources import AMOUNT_FIELDS, FIELDS, LedgerImport, LedgerRow
from pipeline.reconcile.threeway import Line, ThreeWay
from pipeline.store.index import range_filters

if TYPE_CHECKING:
    from pipeline.store import Store
    from pipeline.store.index import Index

from pipeline.reconcile.match import (
    SCANNED_TWICE_EN,
    SCANNED_TWICE_TAIL_EN,
    _Matcher,
    _show,
    canonical_id,
    reconcile,
)
from pipeline.reconcile.outcomes import (
    Entry,
    Outcome,
    ReconcileOptions,
    Reconciliation,
    invoices_from_index,
)

log = logging.getLogger(__name__)


# ---- the index ---------------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS reconciliation (
    document_id TEXT,
    ledger_row INTEGER,
    outcome TEXT,
    score REAL,
    differences TEXT,
    reason_en TEXT,
    reason_zh TEXT,
    reconciled_at REAL
);
CREATE INDEX IF NOT EXISTS reconciliation_document ON reconciliation (document_id);
CREATE INDEX IF NOT EXISTS reconciliation_outcome ON reconciliation (outcome);
CREATE TABLE IF NOT EXISTS ledger_rows (
    row_number INTEGER PRIMARY KEY,
    ledger_file TEXT NOT NULL,
    invoice_code TEXT,
    invoice_number TEXT,
    issue_date TEXT,
    amount_excl_tax TEXT,
    tax_amount TEXT,
    total_amount TEXT,
    seller_name TEXT,
    seller_tax_id TEXT,
    buyer_name TEXT,
    buyer_tax_id TEXT,
    raw TEXT NOT NULL,
    imported_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS reconciliation_options (
    options TEXT NOT NULL,
    reconciled_at REAL NOT NULL
);
"""
OUTCOME_COLUMNS = "document_id, ledger_row, outcome, score, differences, reason_en, reason_zh, reconciled_at"
_INSERT_OUTCOME = f"INSERT INTO reconciliation ({OUTCOME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _tables(index: Index | Path | str, write: bool = False) -> AbstractContextManager[Any]:
    """The reconciliation's tables in ``index`` (either backend; or an SQLite index file's path):
    a connection spoken to in SQLite's dialect, one transaction with ``write``."""
    if isinstance(index, (str, Path)):
        from pipeline.store.index_sqlite import reconciliation_connection

        return reconciliation_connection(Path(index), write)
    return index.reconciliation_tables(write)


def _where(index: Index | Path | str) -> str:
    return str(index) if isinstance(index, (str, Path)) else index.location


def _create(db: Any, schema: str) -> None:
    """The tables if missing (one statement at a time: ``executescript`` would commit the transaction)."""
    for statement in schema.split(";"):
        if statement.strip():
            db.execute(statement)


def _record(entry: Entry, now: float) -> tuple[Any, ...]:
    """One ``reconciliation`` row."""
    return (
        entry.invoice.document_id if entry.invoice else None,
        entry.ledger_row.row_number if entry.ledger_row else None,
        str(entry.outcome),
        entry.score,
        json.dumps([d.to_dict() for d in entry.differences], ensure_ascii=False),
        entry.reason_en,
        entry.reason_zh,
        now,
    )


def _options_json(options: ReconcileOptions) -> str:
    return json.dumps(
        {
            "amount_tolerance": str(options.amount_tolerance),
            "date_window_days": options.date_window_days,
            "date_from": options.date_from.isoformat() if options.date_from else None,
            "date_to": options.date_to.isoformat() if options.date_to else None,
            "name_threshold": options.name_threshold,
            "workers": options.workers,
        }
    )


def _options_from_json(text: str) -> ReconcileOptions:
    data = json.loads(text)
    defaults = ReconcileOptions()
    day_from, day_to = data.get("date_from"), data.get("date_to")
    return ReconcileOptions(
        amount_tolerance=Decimal(str(data.get("amount_tolerance", defaults.amount_tolerance))),
        date_window_days=int(data.get("date_window_days", defaults.date_window_days)),
        date_from=date.fromisoformat(day_from) if day_from else None,
        date_to=date.fromisoformat(day_to) if day_to else None,
        name_threshold=float(data.get("name_threshold", defaults.name_threshold)),
        workers=int(data.get("workers", defaults.workers)),
    )


def save_outcomes(
    index: Index | Path | str, result: Reconciliation, ledger: LedgerImport | None = None
) -> int:
    """Replace the previous outcomes (and ledger rows) in the index database; returns rows written.

    The run's options are kept too (``load_options``), for ``rematch_document`` to match the same way.
    """
    now = time.time()
    records = [_record(entry, now) for entry in result.entries]
    try:
        with _tables(index, write=True) as db:
            _create(db, SCHEMA)
            db.execute("DELETE FROM reconciliation")
            db.executemany(_INSERT_OUTCOME, records)
            db.execute("DELETE FROM reconciliation_options")
            db.execute(
                "INSERT INTO reconciliation_options VALUES (?, ?)", (_options_json(result.options), now)
            )
            if ledger is not None:
                db.execute("DELETE FROM ledger_rows")
                db.executemany(
                    f"INSERT INTO ledger_rows VALUES (?, ?, {', '.join('?' for _ in FIELDS)}, ?, ?)",
                    (
                        (
                            row.row_number,
                            str(ledger.path),
                            *(_show(name, row.value(name)) for name in FIELDS),
                            json.dumps(row.raw, ensure_ascii=False),
                            now,
                        )
                        for row in ledger.rows
                    ),
                )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot write the reconciliation to {_where(index)}: {exc}") from exc
    return len(records)


def load_outcomes(index: Index | Path | str) -> list[dict[str, Any]]:
    """The stored outcomes (for tests and tools); an index never reconciled gives an empty list."""
    try:
        with _tables(index) as db:
            rows = db.execute("SELECT * FROM reconciliation ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:
        return []
    return [{**dict(row), "differences": json.loads(row["differences"] or "[]")} for row in rows]


def _ledger_rows(db: Any, with_raw: bool = True) -> list[LedgerRow]:
    """The stored ledger rows; none (not an error) when no ledger was ever imported."""
    columns = ", ".join(("row_number", *FIELDS, "raw" if with_raw else "NULL AS raw"))
    try:
        rows = db.execute(f"SELECT {columns} FROM ledger_rows ORDER BY row_number").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    out = []
    for row in rows:
        values: dict[str, Any] = {name: row[k] for k, name in enumerate(FIELDS, start=1)}
        values["issue_date"] = as_date(values["issue_date"])
        for name in AMOUNT_FIELDS:
            values[name] = Decimal(values[name]) if values[name] is not None else None
        raw = json.loads(row[-1]) if with_raw else {}
        out.append(LedgerRow(row_number=row[0], raw=raw, **values))
    return out


def load_ledger_rows(index: Index | Path | str) -> list[LedgerRow]:
    """The ledger rows of the last run, as stored by ``save_outcomes`` (e.g. to re-match one invoice
    after a review correction: ``reconcile([invoice], load_ledger_rows(store.index))``)."""
    with _tables(index) as db:
        return _ledger_rows(db)


def load_options(index: Index | Path | str) -> ReconcileOptions | None:
    """The options of the last run, if ``save_outcomes`` kept them (runs before it did: None)."""
    with _tables(index) as db:
        return _stored_options(db)


def _stored_options(db: Any) -> ReconcileOptions | None:
    try:
        row = db.execute(
            "SELECT options FROM reconciliation_options ORDER BY reconciled_at DESC LIMIT 1"
        ).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    if row is None:
        return None
    try:
        return _options_from_json(row[0])
    except (ValueError, TypeError, ArithmeticError, AttributeError, InputError) as exc:
        log.warning("the stored reconcile options cannot be read (%s): using the defaults", exc)
        return None


# ---- one invoice again, after a review correction ---------------------------------------------------------

_CLAIMING = frozenset({str(Outcome.MATCHED), str(Outcome.MATCHED_WITH_DIFFERENCES), str(Outcome.DUPLICATE)})
_SHOWN = frozenset({str(Outcome.MATCHED), str(Outcome.MATCHED_WITH_DIFFERENCES)})

# The ledger's values the review tool shows beside an invoice's fields.
LEDGER_VALUE_FIELDS = tuple(name for name in FIELDS if name != "buyer_tax_id")


def _is_scanned_twice(outcome: str, reason_en: str | None) -> bool:
    return outcome == Outcome.DUPLICATE and (reason_en or "").startswith(SCANNED_TWICE_EN)


def _scan_of(reason_en: str | None, document_id: str) -> bool:
    """A scanned-twice reason that names ``document_id`` as the scan reconciled instead."""
    return f"({document_id[:12]}){SCANNED_TWICE_TAIL_EN}" in (reason_en or "")


def _latest_outcomes(db: Any) -> tuple[dict[str, list[sqlite3.Row]], list[sqlite3.Row]]:
    """Each document's rows of its latest outcome, and the rows of lone ledger rows."""
    rows = db.execute(
        "SELECT document_id, ledger_row, outcome, reason_en, reconciled_at FROM reconciliation ORDER BY rowid"
    ).fetchall()
    by_document: dict[str, list[sqlite3.Row]] = defaultdict(list)
    lone: list[sqlite3.Row] = []
    for row in rows:
        if row["document_id"] is None:
            lone.append(row)
        else:
            by_document[row["document_id"]].append(row)
    for document_id, found in by_document.items():
        newest = max(row["reconciled_at"] or 0.0 for row in found)
        by_document[document_id] = [row for row in found if (row["reconciled_at"] or 0.0) == newest]
    return by_document, lone


def _resolve(store: Store, document_id: str) -> dict[str, Any]:
    matches = store.index.get(document_id)
    if not matches:
        raise NotFound(f"no document with id {document_id!r} in the store")
    if len(matches) > 1:
        raise NotFound(f"id prefix {document_id!r} is ambiguous: give more characters")
    return matches[0]


def _same_invoice_rows(store: Store, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Other stored documents with this invoice's number (exactly, or in canonical form) and a code
    that does not contradict it: scans of the same invoice, to be reconciled together."""
    from pipeline.store.index import Query

    number = str(row.get("invoice_number") or "").strip()
    key = canonical_id(number)
    if not key:
        return []
    code = canonical_id(row.get("invoice_code"))
    out: dict[str, dict[str, Any]] = {}
    for wanted in dict.fromkeys((number, key)):
        for other in store.index.query(Query(number=wanted)):
            other_code = canonical_id(other.get("invoice_code"))
            if canonical_id(other.get("invoice_number")) == key and (
                not code or not other_code or code == other_code
            ):
                out[other["document_id"]] = other
    out.pop(row["document_id"], None)
    return list(out.values())


def rematch_document(store: Store, document_id: str) -> Entry | None:
    """The ledger outcome (``rematch_ledger``) and then the three-way lines (``rematch_lines``) of
    one invoice again, after a review correction; returns the new ledger outcome (see there)."""
    from pipeline.reconcile.rematch_lines import rematch_lines

    entry = rematch_ledger(store, document_id)
    rematch_lines(store, document_id)
    return entry


def rematch_ledger(store: Store, document_id: str) -> Entry | None:
    """Match one invoice again, from its current index row (after a review correction).

    Returns None, changing nothing, when no ledger was ever imported into the index. Otherwise the
    invoice is reconciled with the options of the last run (defaults if none were kept) against the
    ledger rows no other invoice claims in the latest outcomes: a row matched to another invoice
    stays with it. Other scans of the same invoice (same number, or named as the scan reconciled in
    a scanned-twice outcome of this one) are reconciled with it, so a duplicate scan is still found.
    The invoice's outcome row (and those of its scans) is replaced; the ledger rows it now claims
    lose their ``no_invoice_scanned`` row, and the rows it released get one again. Returns the new
    outcome, or None when the invoice has none (not an invoice, or outside the run's period).
    """
    started = time.perf_counter()
    try:
        with _tables(store.index) as db:
            try:
                if not db.execute("SELECT 1 FROM ledger_rows LIMIT 1").fetchone():
                    return None
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return None
                raise
        index_row = _resolve(store, document_id)
        document_id = str(index_row["document_id"])
        # One re-match at a time: the claims read stay true until written.
        with _tables(store.index, write=True) as db:
            entry = _rematch(store, db, index_row)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot re-match {document_id[:12]} in {store.index.location}: {exc}") from exc
    log.info(
        "re-matched %s against the ledger in %.2fs: %s%s",
        document_id[:12],
        time.perf_counter() - started,
        entry.outcome if entry else "no outcome",
        f" (row {entry.ledger_row.row_number})" if entry and entry.ledger_row else "",
    )
    return entry


def _rematch(store: Store, db: Any, index_row: dict[str, Any]) -> Entry | None:
    document_id = str(index_row["document_id"])
    ledger = _ledger_rows(db, with_raw=False)
    options = _stored_options(db) or ReconcileOptions()
    outcomes, lone = _latest_outcomes(db)

    # The invoices reconciled together: this one and its scans, old and new.
    group: dict[str, dict[str, Any]] = {document_id: index_row}
    for other in _same_invoice_rows(store, index_row):
        group[other["document_id"]] = other
    todo = list(group)
    while todo:
        primary = todo.pop()
        for other_id, rows in outcomes.items():
            if other_id in group or not any(
                _is_scanned_twice(r["outcome"], r["reason_en"]) and _scan_of(r["reason_en"], primary)
                for r in rows
            ):
                continue
            found = store.index.get(other_id)
            if len(found) == 1 and found[0]["document_id"] == other_id:
                group[other_id] = found[0]
                todo.append(other_id)

    # Rows claimed by other invoices stay theirs (a scanned-twice outcome only points at its scan's row),
    # and so do the rows that repeat them (booked twice).
    claimed = {
        int(r["ledger_row"])
        for other_id, rows in outcomes.items()
        if other_id not in group
        for r in rows
        if r["ledger_row"] is not None
        and r["outcome"] in _CLAIMING
        and not _is_scanned_twice(r["outcome"], r["reason_en"])
    }
    free = [row.row_number not in claimed for row in ledger]
    if claimed and any(r["outcome"] == Outcome.DUPLICATE for r in lone):
        bookings = _Matcher([], ledger, options)
        bookings.group_bookings()
        for k, head in enumerate(bookings.booking_of.tolist()):
            if head >= 0 and not free[head]:
                free[k] = False
    pool = [row for row, keep in zip(ledger, free, strict=True) if keep]
    pool_numbers = {row.row_number for row in pool}

    result = reconcile(invoices_from_index(group[k] for k in sorted(group)), pool, options)

    mine = [e for e in result.entries if e.invoice is not None]
    touched = {
        int(r["ledger_row"])
        for rows in (outcomes.get(k, []) for k in group)
        for r in rows
        if r["ledger_row"] is not None
    }
    for e in mine:
        if e.ledger_row is not None:
            touched.add(e.ledger_row.row_number)
        touched.update(e.related_rows)
    touched &= pool_numbers
    rows_out = [
        e for e in result.entries if e.invoice is None and e.ledger_row and e.ledger_row.row_number in touched
    ]
    now = time.time()
    ids = sorted(group)
    db.execute(f"DELETE FROM reconciliation WHERE document_id IN ({', '.join('?' for _ in ids)})", ids)
    if touched:
        numbers = sorted(touched)
        db.execute(
            "DELETE FROM reconciliation WHERE document_id IS NULL "
            f"AND ledger_row IN ({', '.join('?' for _ in numbers)})",
            numbers,
        )
    db.executemany(_INSERT_OUTCOME, [_record(e, now) for e in (*mine, *rows_out)])
    return next((e for e in mine if e.invoice and e.invoice.document_id == document_id), None)


def ledger_values(store: Store, document_id: str) -> dict[str, str]:
    """The ledger row's values (by field name, as stored) for the invoice's latest outcome when it is
    matched or matched with differences; ``{}`` otherwise, or when nothing was reconciled."""
    matches = store.index.get(document_id)
    if len(matches) == 1:
        document_id = str(matches[0]["document_id"])
    try:
        with _tables(store.index) as db:
            latest = db.execute(
                "SELECT ledger_row, outcome FROM reconciliation WHERE document_id = ? "
                "ORDER BY reconciled_at DESC, rowid DESC LIMIT 1",
                (document_id,),
            ).fetchone()
            if latest is None or latest[0] is None or latest[1] not in _SHOWN:
                return {}
            row = db.execute(
                f"SELECT {', '.join(LEDGER_VALUE_FIELDS)} FROM ledger_rows WHERE row_number = ?", (latest[0],)
            ).fetchone()
    except sqlite3.OperationalError as exc:  # never reconciled (no tables), or busy: nothing to show
        log.debug("no ledger values for %s: %s", document_id[:12], exc)
        return {}
    if row is None:
        return {}
    return {
        name: str(value) for name, value in zip(LEDGER_VALUE_FIELDS, row, strict=True) if value is not None
    }


# ---- three-way lines (issue 15) -------------------------------------------------------------------------

LINES_SCHEMA = """
CREATE TABLE IF NOT EXISTS reconciliation_lines (
    document_id TEXT,
    ledger_row INTEGER,
    platform_source TEXT,
    invoice_code TEXT,
    invoice_number TEXT,
    issue_date TEXT,
    total_amount TEXT,
    seller_name TEXT,
    outcome TEXT NOT NULL,
    also TEXT NOT NULL,
    in_held INTEGER NOT NULL,
    in_ledger INTEGER NOT NULL,
    in_platform INTEGER NOT NULL,
    platform_status TEXT,
    risk TEXT,
    deducted INTEGER,
    reversed_amount TEXT,
    remaining_amount TEXT,
    differences TEXT NOT NULL,
    reason_en TEXT NOT NULL,
    reason_zh TEXT NOT NULL,
    reconciled_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reconciliation_lines_outcome ON reconciliation_lines (outcome);
CREATE INDEX IF NOT EXISTS reconciliation_lines_status ON reconciliation_lines (platform_status);
CREATE INDEX IF NOT EXISTS reconciliation_lines_document ON reconciliation_lines (document_id);
"""
LINE_COLUMNS = (
    "document_id",
    "ledger_row",
    "platform_source",
    "invoice_code",
    "invoice_number",
    "issue_date",
    "total_amount",
    "seller_name",
    "outcome",
    "also",
    "in_held",
    "in_ledger",
    "in_platform",
    "platform_status",
    "risk",
    "deducted",
    "reversed_amount",
    "remaining_amount",
    "differences",
    "reason_en",
    "reason_zh",
    "reconciled_at",
)


def line_differences(line: Line) -> list[dict[str, Any]]:
    """Every differing value of a line: held vs ledger, and document vs platform."""
    out = [{"field": d.field, "invoice": d.invoice_value, "ledger": d.ledger_value} for d in line.differences]
    out += [
        {"field": d.field, "document": d.invoice_value, "platform": d.ledger_value}
        for d in line.platform_differences
    ]
    return out


def _line_record(line: Line, now: float) -> tuple[Any, ...]:
    reversal = line.reversal
    return (
        line.invoice.document_id if line.invoice else None,
        line.ledger_row.row_number if line.ledger_row else None,
        line.platform.where if line.platform else None,
        line.invoice_code,
        line.invoice_number,
        line.issue_date.isoformat() if line.issue_date else None,
        _show("total_amount", line.total),
        line.seller_name,
        str(line.outcome),
        ",".join(str(code) for code in line.also),
        int(line.in_held),
        int(line.in_ledger),
        int(line.in_platform),
        line.platform_status,
        line.platform.risk if line.platform else None,
        int(line.platform.deducted) if line.platform else None,
        _show("total_amount", reversal.reversed_amount) if reversal else None,
        _show("total_amount", reversal.remaining) if reversal else None,
        json.dumps(line_differences(line), ensure_ascii=False)
        if line.differences or line.platform_differences
        else "[]",
        line.reason_en,
        line.reason_zh,
        now,
    )


def save_lines(index: Index | Path | str, result: ThreeWay, platform: list[Any] | None = None) -> int:
    """Replace the previous three-way lines in the index database; returns the lines written.

    The platform's records (``platform``, as reconciled) and the run's settings are kept too, so a
    review correction re-matches the invoice's lines (``rematch_lines``)."""
    from pipeline.reconcile.rematch_lines import save_run

    now = time.time()
    try:
        with _tables(index, write=True) as db:
            _create(db, LINES_SCHEMA)
            db.execute("DELETE FROM reconciliation_lines")
            db.executemany(
                f"INSERT INTO reconciliation_lines ({', '.join(LINE_COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in LINE_COLUMNS)})",
                (_line_record(line, now) for line in result.lines),
            )
            save_run(db, result, platform)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot write the reconciliation to {_where(index)}: {exc}") from exc
    return len(result.lines)


def load_lines(
    index: Index | Path | str,
    outcome: str | None = None,
    platform_status: str | None = None,
    limit: int | None = None,
    *,
    number: str | None = None,
    code: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    amount_min: Decimal | float | None = None,
    amount_max: Decimal | float | None = None,
) -> list[dict[str, Any]]:
    """The stored three-way lines; ``outcome`` matches the main outcome or any other that applies."""
    where: list[str] = []
    params: list[Any] = []
    if outcome:
        where.append("(outcome = ? OR instr(',' || also || ',', ?) > 0)")
        params += [outcome, f",{outcome},"]
    if platform_status:
        where.append("platform_status = ?")
        params.append(platform_status)
    for column, value in (("invoice_number", number), ("invoice_code", code)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    range_filters(
        date_from,
        date_to,
        None if amount_min is None else float(amount_min),
        None if amount_max is None else float(amount_max),
        where,
        params,
        date_column="issue_date",
        amount_column="CAST(total_amount AS REAL)",
    )
    sql = "SELECT * FROM reconciliation_lines"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY rowid"
    if limit:
        sql += f" LIMIT {int(limit)}"
    try:
        with _tables(index) as db:
            rows = db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # never reconciled
        raise StorageError(f"cannot read the reconciliation from {_where(index)}: {exc}") from exc
    return [{**dict(row), "differences": json.loads(row["differences"] or "[]")} for row in rows]


def document_lines(index: Index | Path | str, document_ids: list[str]) -> list[dict[str, Any]]:
    """The stored three-way lines of these documents (the web app's invoice view), in the order given;
    none when never reconciled. Read-only."""
    if not document_ids:
        return []
    try:
        with _tables(index) as db:
            rows = db.execute(
                "SELECT * FROM reconciliation_lines WHERE document_id IN "
                f"({', '.join('?' for _ in document_ids)}) ORDER BY rowid",
                list(document_ids),
            ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise StorageError(f"cannot read the reconciliation from {_where(index)}: {exc}") from exc
    order = {document_id: k for k, document_id in enumerate(document_ids)}
    out = [{**dict(row), "differences": json.loads(row["differences"] or "[]")} for row in rows]
    return sorted(out, key=lambda line: order.get(line["document_id"], len(order)))
