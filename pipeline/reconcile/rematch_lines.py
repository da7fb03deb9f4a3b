"""The three-way lines of one invoice again, after a review correction changed its values.

``save_lines`` keeps what a run read (the platform's records, whether a ledger and a platform were
given, the options and the dates the exports cover) beside the lines. ``rematch_lines`` then runs the
three-way reconciliation for the corrected invoice (and its other files) only, against the ledger rows
its lines held or its ledger outcome now holds, and the platform records no other line claims:

- its lines are replaced; so are the lines of the ledger rows it held or now holds;
- a platform record it now claims loses its ``platform_only`` line; one it released gets one again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipeline.fapiao import as_date
from pipeline.reconcile.outcomes import ReconcileOptions, invoices_from_index
from pipeline.reconcile.platform import PlatformInvoice, PlatformStatus
from pipeline.reconcile.threeway import Line, ThreeWay, reconcile_three_way

if TYPE_CHECKING:
    from pipeline.store import Store

log = logging.getLogger(__name__)

RUN_SCHEMA = """
CREATE TABLE IF NOT EXISTS reconciliation_run (
    ledger_given INTEGER NOT NULL,
    platform_given INTEGER NOT NULL,
    options TEXT NOT NULL,
    platform_from TEXT,
    platform_to TEXT
);
CREATE TABLE IF NOT EXISTS platform_records (seq INTEGER NOT NULL, record TEXT NOT NULL);
"""
_DECIMALS = ("amount_excl_tax", "tax_amount", "total_amount", "effective_tax")


def _platform_json(record: PlatformInvoice) -> str:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, Decimal | date):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return json.dumps(out, ensure_ascii=False)


def _platform_record(text: str) -> PlatformInvoice:
    data = json.loads(text)
    for name in _DECIMALS:
        if data.get(name) is not None:
            data[name] = Decimal(data[name])
    data["issue_date"] = as_date(data.get("issue_date")) if data.get("issue_date") else None
    data["status"] = PlatformStatus(data["status"])
    data["items"] = tuple(data.get("items") or ())
    data["sources"] = tuple(data.get("sources") or ())
    return PlatformInvoice(**data)


def save_run(db: sqlite3.Connection, result: ThreeWay, platform: list[PlatformInvoice] | None) -> None:
    """Inside ``save_lines``' transaction: what ``rematch_lines`` needs to run one invoice again."""
    from pipeline.reconcile.tables import _create, _options_json

    _create(db, RUN_SCHEMA)
    db.execute("DELETE FROM reconciliation_run")
    db.execute("DELETE FROM platform_records")
    dates = result.platform_dates
    db.execute(
        "INSERT INTO reconciliation_run VALUES (?, ?, ?, ?, ?)",
        (
            int(result.ledger_given),
            int(result.platform_given),
            _options_json(result.options),
            dates[0].isoformat() if dates else None,
            dates[1].isoformat() if dates else None,
        ),
    )
    if platform:
        db.executemany(
            "INSERT INTO platform_records (seq, record) VALUES (?, ?)",
            ((n, _platform_json(p)) for n, p in enumerate(platform)),
        )


def rematch_lines(store: Store, document_id: str) -> list[Line] | None:
    """Replace the three-way lines of this invoice (and its other files) after a correction.

    Returns its new lines, or None when no three-way run was saved (nothing changes then)."""
    from pipeline.reconcile.tables import (
        LINE_COLUMNS,
        _create,
        _ledger_rows,
        _line_record,
        _options_from_json,
        _resolve,
        _same_invoice_rows,
        _tables,
    )

    started = time.perf_counter()
    # One transaction on either index backend (SQLite: BEGIN IMMEDIATE, one writer at a time).
    with _tables(store.index, write=True) as db:
        if isinstance(db, sqlite3.Connection):
            # An index never reconciled three-way stays as it is (no tables made for nothing).
            if not db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reconciliation_run'"
            ).fetchone():
                return None
        else:  # PostgreSQL: the migrations made the lines' table; the run's are made here once
            _create(db, RUN_SCHEMA)
        run = db.execute("SELECT * FROM reconciliation_run").fetchone()
        if run is None:
            return None
        index_row = _resolve(store, document_id)
        group = {str(index_row["document_id"]): index_row}
        for other in _same_invoice_rows(store, index_row):
            group[str(other["document_id"])] = other
        ids = sorted(group)
        marks = ", ".join("?" for _ in ids)
        options = _options_from_json(run["options"]) if run["options"] else ReconcileOptions()
        dates = (
            (as_date(run["platform_from"]), as_date(run["platform_to"]))
            if run["platform_from"] and run["platform_to"]
            else None
        )
        old = db.execute(
            f"SELECT rowid AS line_id, * FROM reconciliation_lines WHERE document_id IN ({marks})", ids
        ).fetchall()
        ledger = None
        rows_held: set[int] = set()
        if run["ledger_given"]:
            rows_held = {int(r["ledger_row"]) for r in old if r["ledger_row"] is not None}
            # the rows the ledger re-match (run just before) gave these documents
            rows_held |= {
                int(r[0])
                for r in db.execute(
                    f"SELECT ledger_row FROM reconciliation WHERE document_id IN ({marks}) "
                    "AND ledger_row IS NOT NULL",
                    ids,
                )
            }
            ledger = [row for row in _ledger_rows(db, with_raw=False) if row.row_number in rows_held]
        lone_old = [
            r
            for r in db.execute(
                "SELECT rowid AS line_id, * FROM reconciliation_lines WHERE document_id IS NULL AND ledger_row IS NOT NULL"
            )
            if int(r["ledger_row"]) in rows_held
        ]
        released = {r["platform_source"] for r in (*old, *lone_old) if r["platform_source"]}
        replaced = {r["line_id"] for r in (*old, *lone_old)}
        platform = None
        if run["platform_given"]:
            claimed_elsewhere = {
                r["platform_source"]
                for r in db.execute(
                    "SELECT rowid AS line_id, platform_source, in_held, in_ledger FROM reconciliation_lines "
                    "WHERE platform_source IS NOT NULL"
                )
                if r["line_id"] not in replaced and (r["in_held"] or r["in_ledger"])
            }
            platform = [
                _platform_record(r[0]) for r in db.execute("SELECT record FROM platform_records ORDER BY seq")
            ]
            platform = [p for p in platform if p.where not in claimed_elsewhere]
        result = reconcile_three_way(
            invoices_from_index(group[k] for k in ids), ledger, platform, options, dates
        )
        mine = [
            line
            for line in result.lines
            if (line.invoice is not None and line.invoice.document_id in group)
            or (line.invoice is None and line.ledger_row is not None)
        ]
        claimed_now = {line.platform.where for line in mine if line.platform is not None}
        # released records no line claims now: platform_only again (the others keep their line)
        alone = [
            line
            for line in result.lines
            if line.invoice is None
            and line.ledger_row is None
            and line.platform is not None
            and line.platform.where in released - claimed_now
        ]
        if replaced:
            numbers = sorted(replaced)
            db.execute(
                f"DELETE FROM reconciliation_lines WHERE rowid IN ({', '.join('?' for _ in numbers)})",
                numbers,
            )
        if claimed_now:
            wheres = sorted(claimed_now)
            db.execute(
                "DELETE FROM reconciliation_lines WHERE in_held = 0 AND in_ledger = 0 "
                f"AND platform_source IN ({', '.join('?' for _ in wheres)})",
                wheres,
            )
        now = time.time()
        db.executemany(
            f"INSERT INTO reconciliation_lines ({', '.join(LINE_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in LINE_COLUMNS)})",
            [_line_record(line, now) for line in (*mine, *alone)],
        )
    log.info(
        "re-matched the three-way lines of %s in %.2fs: %s",
        document_id[:12],
        time.perf_counter() - started,
        [str(line.outcome) for line in mine],
    )
    return [line for line in mine if line.invoice is not None]
