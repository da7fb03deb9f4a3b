"""Re-matching one invoice after a review correction: only its outcome changes, one-to-one with the
ledger rows other invoices claim, with the options of the last run, and nothing without a ledger."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pipeline.reconcile import (
    InvoiceRecord,
    Outcome,
    ReconcileOptions,
    Reconciliation,
    invoices_from_index,
    load_ledger_rows,
    load_outcomes,
    reconcile,
    save_outcomes,
)
from pipeline.reconcile.sources import read_ledger
from tests.reconcile_scenarios import store_invoices, xlsx_ledger

if TYPE_CHECKING:
    from pipeline.store import Store


REMATCH_IDS = 0xA1  # these tests store documents a1a1…, a2a2…
REVIEW_DAY = date(2026, 1, 1)
CORRECTED_INVOICES = [
    # (source name, number as read, date, total as read, seller)
    ("a.jpg", "10631331", "2024-03-01", "113.00", "金桥（北京）建筑工程有限责任公司"),
    ("b.jpg", "10631332", "2024-03-02", "262.00", "北京智源信息技术股份有限公司"),  # total misread (226.00)
    ("c.pdf", "18531846", "2024-03-05", "339.00", "北京新纪元商贸有限责任公司"),  # number misread (10631340)
    ("d.png", "10631350", "2024-03-09", "452.00", "北京启明医疗器械有限公司"),
]
CORRECTION_LEDGER = [
    ["1100214130", "10631331", date(2024, 3, 1), "金桥(北京)建筑工程有限公司", 113.0, "A"],  # row 2
    ["1100214130", "10631332", date(2024, 3, 2), "北京智源信息技术股份有限公司", 226.0, "A"],  # row 3
    ["1100214130", "10631340", date(2024, 3, 5), "北京新纪元商贸有限责任公司", 339.0, "B"],  # row 4
    ["1100214130", "10631350", date(2024, 3, 9), "北京启明医疗器械有限公司", 452.0, "B"],  # row 5
    ["1100214130", "10631360", date(2024, 4, 2), "北京凯德网络科技股份有限公司", 565.0, "C"],  # row 6
]


@dataclass
class LedgerStore:
    root: Path
    ledger: Path
    ids: dict[str, str]  # source name -> document id
    index: str | None = None  # a PostgreSQL URL, or None: the SQLite file in the store

    def open(self) -> Store:
        from pipeline.store import open_store

        return open_store(str(self.root), index=self.index)


def _reconcile_store(
    store: Store, ledger_path: Path, options: ReconcileOptions | None = None
) -> Reconciliation:
    imported = read_ledger(ledger_path)
    result = reconcile(invoices_from_index(store.index.documents()), imported.rows, options)
    save_outcomes(store.index, result, imported)
    return result


def _by_document(db_path: Path) -> dict[str, tuple[int | None, str]]:
    return {
        r["document_id"]: (r["ledger_row"], r["outcome"]) for r in load_outcomes(db_path) if r["document_id"]
    }


def _lone_rows(db_path: Path) -> dict[int, str]:
    return {r["ledger_row"]: r["outcome"] for r in load_outcomes(db_path) if r["document_id"] is None}


@pytest.fixture
def ledger_store(tmp_path: Path, index_location: str | None) -> LedgerStore:
    """Four stored invoices (one total and one number misread) reconciled against a five-row ledger,
    on each index backend."""
    root = tmp_path / "store"
    ids = store_invoices(root, CORRECTED_INVOICES, index_location, REMATCH_IDS)
    built = LedgerStore(root, xlsx_ledger(tmp_path / "ledger.xlsx", CORRECTION_LEDGER), ids, index_location)
    store = built.open()
    try:
        _reconcile_store(store, built.ledger)
    finally:
        store.close()
    return built


def test_rematch_after_review_corrections(ledger_store: LedgerStore) -> None:
    from pipeline.errors import NotFound
    from pipeline.reconcile import ledger_values, rematch_document
    from pipeline.review import apply_correction
    from pipeline.review.corrections import ledger_values as shown_ledger_values

    ids = ledger_store.ids
    store = ledger_store.open()
    db_path = store.index
    try:
        before = load_outcomes(db_path)
        assert _by_document(db_path) == {
            ids["a.jpg"]: (2, "matched"),
            ids["b.jpg"]: (3, "matched_with_differences"),
            ids["c.pdf"]: (None, "not_in_ledger"),
            ids["d.png"]: (5, "matched"),
        }
        assert _lone_rows(db_path) == {4: "no_invoice_scanned", 6: "no_invoice_scanned"}
        assert ledger_values(store, ids["c.pdf"]) == {}

        # the wrong total: matched with differences -> matched (apply_correction re-matches it)
        apply_correction(store, ids["b.jpg"], "total_amount", "226.00", "alice", today=REVIEW_DAY)
        after_b = _by_document(db_path)
        assert after_b[ids["b.jpg"]] == (3, "matched")
        stored_b = next(r for r in load_outcomes(db_path) if r["document_id"] == ids["b.jpg"])
        assert stored_b["differences"] == [] and "every compared field agrees" in stored_b["reason_en"]
        assert stored_b["reconciled_at"] > before[0]["reconciled_at"]
        expected_b = {
            "invoice_code": "1100214130",
            "invoice_number": "10631332",
            "issue_date": "2024-03-02",
            "total_amount": "226.00",
            "seller_name": "北京智源信息技术股份有限公司",
        }
        assert ledger_values(store, ids["b.jpg"]) == expected_b
        assert ledger_values(store, ids["b.jpg"][:12]) == expected_b  # an id prefix, as the CLI takes
        assert shown_ledger_values(store, ids["b.jpg"]) == expected_b  # what the review tool shows

        # the misread number: not in the ledger -> matched, and row 4 is no longer unscanned
        apply_correction(store, ids["c.pdf"][:12], "invoice_number", "10631340", "alice", today=REVIEW_DAY)
        assert _by_document(db_path) == {
            ids["a.jpg"]: (2, "matched"),
            ids["b.jpg"]: (3, "matched"),
            ids["c.pdf"]: (4, "matched"),
            ids["d.png"]: (5, "matched"),
        }
        assert _lone_rows(db_path) == {6: "no_invoice_scanned"}
        assert ledger_values(store, ids["c.pdf"])["invoice_number"] == "10631340"
        # the invoices nobody corrected keep their outcome rows as the run wrote them
        untouched = {r["document_id"]: r for r in before if r["document_id"] in (ids["a.jpg"], ids["d.png"])}
        for row in load_outcomes(db_path):
            if row["document_id"] in untouched:
                assert row == untouched[row["document_id"]]

        # called again, nothing changes: the same outcome, one row per invoice
        entry = rematch_document(store, ids["c.pdf"])
        assert entry is not None and entry.outcome == Outcome.MATCHED
        assert entry.invoice is not None and entry.invoice.invoice_number == "10631340"
        assert entry.ledger_row is not None and entry.ledger_row.row_number == 4
        stored = load_outcomes(db_path)
        assert (
            len(stored) == 5
            and Counter(r["document_id"] for r in stored if r["document_id"])[ids["c.pdf"]] == 1
        )
        # the index answers from the new outcomes
        from pipeline.store.index import Query

        assert store.index.query(Query(status="not_in_ledger")) == []
        assert {r["document_id"] for r in store.index.query(Query(status="matched"))} == set(ids.values())
        with pytest.raises(NotFound, match="no document"):
            rematch_document(store, "ff" * 32)
        assert load_outcomes(db_path) == stored
    finally:
        store.close()


def test_rematch_keeps_other_claims_and_releases_rows(ledger_store: LedgerStore) -> None:
    from pipeline.reconcile import ledger_values, rematch_document
    from pipeline.review import apply_correction

    ids = ledger_store.ids
    store = ledger_store.open()
    db_path = store.index
    try:
        a_before = next(r for r in load_outcomes(db_path) if r["document_id"] == ids["a.jpg"])
        # d.png's number typed as a.jpg's: the same invoice scanned twice; a.jpg keeps row 2 and
        # the row d.png released (5) has no invoice again
        apply_correction(store, ids["d.png"], "invoice_number", "10631331", "bob", today=REVIEW_DAY)
        outcomes = _by_document(db_path)
        assert outcomes[ids["d.png"]] == (2, "duplicate")
        assert outcomes[ids["a.jpg"]] == (2, "matched")
        assert _lone_rows(db_path) == {
            4: "no_invoice_scanned",
            5: "no_invoice_scanned",
            6: "no_invoice_scanned",
        }
        duplicate = next(r for r in load_outcomes(db_path) if r["document_id"] == ids["d.png"])
        assert duplicate["reason_en"].startswith("Scanned twice: the same invoice as a.jpg")
        assert ledger_values(store, ids["d.png"]) == {}  # a duplicate shows no ledger row
        # and back: d.png takes row 5 again
        apply_correction(store, ids["d.png"], "invoice_number", "10631350", "bob", today=REVIEW_DAY)
        assert _by_document(db_path)[ids["d.png"]] == (5, "matched")
        assert _lone_rows(db_path) == {4: "no_invoice_scanned", 6: "no_invoice_scanned"}
        a_after = next(r for r in load_outcomes(db_path) if r["document_id"] == ids["a.jpg"])
        assert a_after["outcome"] == "matched" and a_after["ledger_row"] == 2

        # c.pdf corrected to one digit off a.jpg's number with a.jpg's total: alone with row 2 it would
        # match it, but row 2 is a.jpg's (one-to-one), so c.pdf stays not in the ledger
        apply_correction(store, ids["c.pdf"], "total_amount", "113.00", "bob", today=REVIEW_DAY)
        apply_correction(store, ids["c.pdf"], "invoice_number", "10631381", "bob", today=REVIEW_DAY)
        (c_row,) = store.index.get(ids["c.pdf"])
        row_2 = next(row for row in load_ledger_rows(db_path) if row.row_number == 2)
        alone = reconcile([InvoiceRecord.from_index_row(c_row)], [row_2])
        assert alone.entries[0].outcome == Outcome.MATCHED_WITH_DIFFERENCES
        entry = rematch_document(store, ids["c.pdf"])
        assert entry is not None and entry.outcome == Outcome.NOT_IN_LEDGER and entry.ledger_row is None
        outcomes = _by_document(db_path)
        assert outcomes[ids["c.pdf"]] == (None, "not_in_ledger")
        assert outcomes[ids["a.jpg"]] == (2, "matched")
        assert next(r for r in load_outcomes(db_path) if r["document_id"] == ids["a.jpg"]) == a_after
        assert a_before["ledger_row"] == a_after["ledger_row"]
    finally:
        store.close()


def test_rematch_a_scan_whose_duplicate_was_read_the_same(tmp_path: Path) -> None:
    """The same paper scanned twice, the number misread the same way both times: one scan is reconciled,
    the other is its duplicate. Correcting the reconciled scan re-matches the duplicate too."""
    from pipeline.reconcile import rematch_document
    from pipeline.review import apply_correction

    misread = ("c.pdf", "18531846", "2024-03-05", "339.00", "北京新纪元商贸有限责任公司")
    ids = store_invoices(tmp_path / "store", [misread, ("c-again.pdf", *misread[1:])], first_id=REMATCH_IDS)
    ledger = xlsx_ledger(tmp_path / "ledger.xlsx", CORRECTION_LEDGER[2:3])
    from pipeline.store import open_store

    store = open_store(str(tmp_path / "store"))
    db_path = store.index.path
    try:
        _reconcile_store(store, ledger)
        assert _by_document(db_path) == {
            ids["c.pdf"]: (None, "not_in_ledger"),
            ids["c-again.pdf"]: (None, "duplicate"),
        }
        apply_correction(store, ids["c.pdf"], "invoice_number", "10631340", "carol", today=REVIEW_DAY)
        # the second scan still has the misread number: no longer the same invoice as c.pdf
        assert _by_document(db_path) == {
            ids["c.pdf"]: (2, "matched"),
            ids["c-again.pdf"]: (None, "not_in_ledger"),
        }
        assert _lone_rows(db_path) == {}
        apply_correction(store, ids["c-again.pdf"], "invoice_number", "10631340", "carol", today=REVIEW_DAY)
        assert _by_document(db_path) == {
            ids["c.pdf"]: (2, "matched"),
            ids["c-again.pdf"]: (2, "duplicate"),
        }
        entry = rematch_document(store, ids["c-again.pdf"])
        assert entry is not None and entry.related_document == ids["c.pdf"]
    finally:
        store.close()


def test_rematch_uses_the_options_of_the_last_run(tmp_path: Path) -> None:
    from pipeline.reconcile import load_options, rematch_document

    invoices = [("b.jpg", "10631332", "2024-03-02", "226.50", "北京智源信息技术股份有限公司")]
    ids = store_invoices(tmp_path / "store", invoices, first_id=REMATCH_IDS)
    ledger = xlsx_ledger(tmp_path / "ledger.xlsx", CORRECTION_LEDGER[1:2])
    from pipeline.store import open_store

    store = open_store(str(tmp_path / "store"))
    db_path = store.index.path
    options = ReconcileOptions(amount_tolerance=Decimal("1.00"), date_from=date(2024, 1, 1), workers=1)
    try:
        assert load_options(db_path) is None  # never reconciled
        _reconcile_store(store, ledger, options)
        assert load_options(db_path) == options
        entry = rematch_document(store, ids["b.jpg"])
        assert entry is not None and entry.outcome == Outcome.MATCHED  # 0.50 apart: within 1.00
        assert "within the 1.00 tolerance" in entry.reason_en
        # without stored options (an index reconciled before they were kept): the defaults
        with sqlite3.connect(db_path) as db:
            db.execute("DELETE FROM reconciliation_options")
        db.close()
        entry = rematch_document(store, ids["b.jpg"])
        assert entry is not None and entry.outcome == Outcome.MATCHED_WITH_DIFFERENCES
        assert [d.field for d in entry.differences] == ["total_amount"]
    finally:
        store.close()


def test_rematch_without_a_ledger_changes_nothing(tmp_path: Path) -> None:
    from pipeline.reconcile import ledger_values, rematch_document
    from pipeline.review import apply_correction
    from pipeline.store import open_store

    ids = store_invoices(tmp_path / "store", CORRECTED_INVOICES[1:2], first_id=REMATCH_IDS)
    store = open_store(str(tmp_path / "store"))
    db_path = store.index.path

    def tables() -> set[str]:
        with sqlite3.connect(db_path) as db:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        db.close()
        return names

    try:
        before = tables()
        assert rematch_document(store, ids["b.jpg"]) is None
        assert ledger_values(store, ids["b.jpg"]) == {}
        result = apply_correction(store, ids["b.jpg"], "total_amount", "226.00", "alice", today=REVIEW_DAY)
        assert result.value("total_amount") == "226.00"
        assert tables() == before and "reconciliation" not in before and load_outcomes(db_path) == []
        # reconciled without a ledger import (outcomes only): still nothing to match against
        invoices = invoices_from_index(store.index.documents())
        save_outcomes(db_path, reconcile(invoices, []), None)
        stored = load_outcomes(db_path)
        assert [r["outcome"] for r in stored] == ["not_in_ledger"]
        assert rematch_document(store, ids["b.jpg"]) is None
        assert load_outcomes(db_path) == stored
    finally:
        store.close()


def test_rematch_leaves_a_second_booking_of_another_invoice_alone(tmp_path: Path) -> None:
    """A row that repeats a row another invoice claims (booked twice) is not free for a re-match."""
    from pipeline.reconcile import rematch_document
    from pipeline.review import apply_correction
    from pipeline.store import open_store

    seller = "北京凯德网络科技股份有限公司"
    ids = store_invoices(
        tmp_path / "store",
        [
            ("e.jpg", "10631360", "2024-04-02", "565.00", seller),
            ("f.jpg", "77777777", "2024-04-02", "565.00", seller),
        ],
        first_id=REMATCH_IDS,
    )
    row = ["1100214130", "10631360", date(2024, 4, 2), seller, 565.0, "C"]
    ledger = xlsx_ledger(tmp_path / "ledger.xlsx", [row, row])  # rows 2 and 3: booked twice
    store = open_store(str(tmp_path / "store"))
    db_path = store.index.path
    try:
        _reconcile_store(store, ledger)
        assert _by_document(db_path) == {
            ids["e.jpg"]: (2, "duplicate"),
            ids["f.jpg"]: (None, "not_in_ledger"),
        }
        assert _lone_rows(db_path) == {3: "duplicate"}
        # one digit off row 3's number with its amount: alone with row 3, f.jpg would take it
        apply_correction(store, ids["f.jpg"], "invoice_number", "10631361", "dave", today=REVIEW_DAY)
        (f_row,) = store.index.get(ids["f.jpg"])
        row_3 = load_ledger_rows(db_path)[1]
        assert reconcile([InvoiceRecord.from_index_row(f_row)], [row_3]).entries[0].ledger_row == row_3
        entry = rematch_document(store, ids["f.jpg"])
        assert entry is not None and entry.outcome == Outcome.NOT_IN_LEDGER
        assert _by_document(db_path) == {
            ids["e.jpg"]: (2, "duplicate"),
            ids["f.jpg"]: (None, "not_in_ledger"),
        }
        assert _lone_rows(db_path) == {3: "duplicate"}
    finally:
        store.close()
