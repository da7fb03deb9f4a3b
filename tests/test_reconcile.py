"""Reconciliation against generated ledgers with injected faults, scored by precision and recall.

Every scenario is random but seeded: invoices as the index holds them, and a ledger built from
them where some rows carry a known fault (typo, OCR look-alike, transposed digits, a fen off,
wrong amount or date, garbled encoding, blank number), some invoices are missing, some rows are
extra, some invoices are booked twice and some are scanned twice. The ledger goes through a real
file (CSV in several encodings, or XLSX) and ``read_ledger`` before ``reconcile``.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.reconcile import (
    InvoiceRecord,
    Outcome,
    ReconcileError,
    ReconcileOptions,
    canonical_id,
    invoices_from_index,
    load_ledger_rows,
    load_outcomes,
    normalize_name,
    reconcile,
    save_outcomes,
)
from pipeline.reconcile.sources import LedgerRow, read_ledger
from tests.reconcile_scenarios import (
    CENT,
    FAULTS,
    Scenario,
    assert_precision_recall,
    make_scenario,
    score,
    write_csv,
    write_xlsx,
)

N = 2500


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return make_scenario(seed=20240611, n=N)


def test_scenario_has_every_fault(scenario: Scenario) -> None:
    counts = Counter(scenario.fault_of.values())
    assert set(FAULTS) <= set(counts), set(FAULTS) - set(counts)
    assert min(counts[f] for f in FAULTS) >= 20, counts


def test_precision_recall_from_utf8_csv(scenario: Scenario, tmp_path: Path) -> None:
    imported = read_ledger(write_csv(scenario.rows, tmp_path / "ledger.csv", "utf-8"))
    assert imported.encoding == "utf-8"
    assert len(imported.rows) == len(scenario.rows)
    result = reconcile(scenario.invoices, imported.rows)
    metrics = assert_precision_recall(scenario, result)
    print(json.dumps({cls: [round(p, 4), round(r, 4), n] for cls, (p, r, n) in metrics.items()}))
    # every outcome is present, and every entry says why in both languages
    assert all(result.counts()[str(o)] > 0 for o in Outcome)
    assert all(e.reason_en and e.reason_zh for e in result.entries)
    # mojibake rows were repaired (and reported), not silently kept garbled
    repaired = [p for p in imported.problems if "wrong encoding" in p.message]
    assert len(repaired) == sum("mojibake" in fault for fault in scenario.fault_of.values())


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("gbk", ","), ("gb18030", ","), ("utf-8-sig", ","), ("utf-16", "\t"), ("xlsx", None)],
)
def test_precision_recall_other_encodings(tmp_path: Path, encoding: str, delimiter: str | None) -> None:
    # GBK cannot hold Latin-1 mojibake, so that fault is left out of these files
    scenario = make_scenario(seed=7, n=1200, latin1_mojibake=encoding in ("utf-8-sig", "utf-16", "xlsx"))
    if encoding == "xlsx":
        path = write_xlsx(scenario.rows, tmp_path / "ledger.xlsx")
    else:
        assert delimiter is not None
        path = write_csv(scenario.rows, tmp_path / f"ledger-{encoding}.csv", encoding, delimiter)
    imported = read_ledger(path)
    expected_encoding = {"gbk": "gbk", "gb18030": "gbk", "xlsx": None}.get(encoding, encoding)
    assert imported.encoding == expected_encoding
    assert len(imported.rows) == len(scenario.rows)
    result = reconcile(scenario.invoices, imported.rows)
    metrics, wrong = score(scenario, result)
    for cls, (precision, recall, _) in metrics.items():
        assert precision >= 0.99 and recall >= 0.99, (cls, metrics, wrong[:10])


def test_tolerance_decides_a_fen(scenario: Scenario, tmp_path: Path) -> None:
    """With no tolerance, a fen off is a difference: the same data, a different answer."""
    imported = read_ledger(write_csv(scenario.rows, tmp_path / "ledger.csv", "utf-8"))
    strict = reconcile(scenario.invoices, imported.rows, ReconcileOptions(amount_tolerance=Decimal(0)))
    fen_docs = {doc for doc, fault in scenario.fault_of.items() if fault == "fen_off"}
    outcomes = {
        e.invoice.document_id: e for e in strict.entries if e.invoice and e.invoice.document_id in fen_docs
    }
    assert len(outcomes) == len(fen_docs)
    for entry in outcomes.values():
        assert entry.outcome == Outcome.MATCHED_WITH_DIFFERENCES
        assert [d.field for d in entry.differences] == ["total_amount"]
        (difference,) = entry.differences
        gap = abs(Decimal(difference.invoice_value or "0") - Decimal(difference.ledger_value or "0"))
        assert gap == CENT
    # and with the default tolerance the reason still mentions the fen
    default = reconcile(scenario.invoices, imported.rows)
    reasons = [e.reason_en for e in default.entries if e.invoice and e.invoice.document_id in fen_docs]
    assert all("within the 0.01 tolerance" in reason for reason in reasons)


def test_one_to_one_and_scores(scenario: Scenario, tmp_path: Path) -> None:
    imported = read_ledger(write_csv(scenario.rows, tmp_path / "ledger.csv", "utf-8"))
    result = reconcile(scenario.invoices, imported.rows)
    claimed = [
        e.ledger_row.row_number
        for e in result.entries
        if e.invoice is not None and e.ledger_row is not None and not e.related_document
    ]
    assert len(claimed) == len(set(claimed)), "a ledger row was used twice"
    for entry in result.entries:
        if entry.outcome in (Outcome.MATCHED, Outcome.MATCHED_WITH_DIFFERENCES):
            assert 0.5 <= entry.score <= 1.0
        if entry.outcome in (Outcome.NOT_IN_LEDGER, Outcome.NO_INVOICE_SCANNED):
            assert entry.score == 0.0
    # every invoice and every ledger row is accounted for exactly once
    assert Counter(e.invoice.document_id for e in result.entries if e.invoice) == Counter(
        inv.document_id for inv in scenario.invoices
    )
    rows = {e.ledger_row.row_number for e in result.entries if e.ledger_row}
    assert rows == {row.row_number for row in imported.rows}


def test_differences_name_both_values(tmp_path: Path) -> None:
    invoice = InvoiceRecord(
        document_id="a" * 64,
        source_name="a.jpg",
        invoice_code="011002400111",
        invoice_number="12345678",
        issue_date=date(2024, 3, 1),
        seller_name="金桥（北京）建筑工程有限责任公司",
        seller_tax_id="91110115MA56E82N05",
        amount_excl_tax=Decimal("100.00"),
        tax_amount=Decimal("13.00"),
        total_amount=Decimal("113.00"),
    )
    row = LedgerRow(
        row_number=2,
        invoice_code="011002400111",
        invoice_number="12345678",
        issue_date=date(2024, 3, 2),
        seller_name="金桥(北京)建筑工程有限公司",
        seller_tax_id="91110115MA56E82NO5",  # letter O for zero: the same ID
        amount_excl_tax=Decimal("100.00"),
        tax_amount=Decimal("13.00"),
        total_amount=Decimal("131.00"),
    )
    (entry,) = reconcile([invoice], [row]).entries
    assert entry.outcome == Outcome.MATCHED_WITH_DIFFERENCES
    assert [(d.field, d.invoice_value, d.ledger_value) for d in entry.differences] == [
        ("issue_date", "2024-03-01", "2024-03-02"),
        ("total_amount", "113.00", "131.00"),
    ]
    assert "row 2" in entry.reason_en and "total incl. tax (invoice 113.00, ledger 131.00)" in entry.reason_en
    assert "第2行" in entry.reason_zh and "价税合计（发票 113.00，台账 131.00）" in entry.reason_zh
    assert "look-alike" in entry.reason_en
    # a one-day window makes the date agree
    (windowed,) = reconcile([invoice], [row], ReconcileOptions(date_window_days=1)).entries
    assert [d.field for d in windowed.differences] == ["total_amount"]


def test_short_number_alone_is_not_proof() -> None:
    """An 8-digit number without a code, with nothing else in common, is a different invoice."""
    invoice = InvoiceRecord(
        document_id="b" * 64,
        invoice_number="00012345",
        issue_date=date(2024, 1, 5),
        seller_name="上海东方物流有限公司",
        total_amount=Decimal("500.00"),
    )
    row = LedgerRow(
        row_number=7,
        invoice_number="00012345",
        issue_date=date(2024, 9, 30),
        seller_name="成都博锐科技有限公司",
        total_amount=Decimal("8800.00"),
    )
    result = reconcile([invoice], [row])
    assert sorted(str(e.outcome) for e in result.entries) == ["no_invoice_scanned", "not_in_ledger"]
    (missing,) = result.of(Outcome.NOT_IN_LEDGER)
    assert "closest ledger row is 7" in missing.reason_en and "第7行" in missing.reason_zh


def test_period_filter() -> None:
    invoices = [
        InvoiceRecord(document_id=f"{k:064x}", invoice_number=f"1000000{k}", issue_date=date(2024, k, 10))
        for k in (1, 2, 3)
    ]
    ledger = [
        LedgerRow(row_number=k + 1, invoice_number=f"1000000{k}", issue_date=date(2024, k, 10))
        for k in (1, 2, 3)
    ]
    ledger.append(LedgerRow(row_number=9, invoice_number="77777777", issue_date=date(2024, 5, 1)))
    options = ReconcileOptions(date_from=date(2024, 2, 1), date_to=date(2024, 3, 31))
    result = reconcile(invoices, ledger, options)
    assert result.counts()["matched"] == 2
    assert result.counts()["no_invoice_scanned"] == 0  # row 9 is outside the period
    assert {e.invoice.document_id for e in result.entries if e.invoice} == {f"{2:064x}", f"{3:064x}"}
    with pytest.raises(ReconcileError):
        ReconcileOptions(date_from=date(2024, 3, 1), date_to=date(2024, 2, 1))
    with pytest.raises(ReconcileError):
        ReconcileOptions(amount_tolerance=Decimal("-0.01"))


def test_normalisation() -> None:
    assert canonical_id("1O63 I33B") == canonical_id("10631338")
    assert canonical_id("12345678") != canonical_id("12345687")
    assert normalize_name("金桥（北京）建筑工程有限责任公司") == normalize_name(
        "金桥 (北京) 建筑工程有限公司"
    )
    assert normalize_name("Acme Trading Company Limited") == normalize_name("ACME Trading Co., Ltd.")
    assert normalize_name("北京长城软件有限公司") != normalize_name("北京长成软件有限公司")


def test_invoices_from_index_rows() -> None:
    rows = [
        {
            "document_id": "c" * 64,
            "source_name": "x.pdf",
            "doc_type": "vat_special_paper",
            "status": "needs_review",
            "invoice_code": "1100214130",
            "invoice_number": "10631331",
            "issue_date": "2021-01-19",
            "seller_name": None,
            "vendor_name": "金桥（北京）建筑工程有限责任公司",
            "total_amount": "48360.72",
            "amount_excl_tax": "44463.10",
            "tax_amount": "3897.62",
            "review_fields": "seller_name,invoice_number",
            "ingested_at": 5.0,
            "result_key": "documents/cc/x/result.json",
        },
        {"document_id": "d" * 64, "source_name": "cat.jpg", "doc_type": "other", "status": "not_an_invoice"},
    ]
    (record,) = invoices_from_index(rows)
    assert record.issue_date == date(2021, 1, 19)
    assert record.total_amount == Decimal("48360.72")
    assert record.seller_name == "金桥（北京）建筑工程有限责任公司"
    assert record.review_fields == ("seller_name", "invoice_number")


def test_outcomes_replace_previous_run(scenario: Scenario, tmp_path: Path) -> None:
    db_path = tmp_path / "index.sqlite"
    sqlite3.connect(db_path).close()
    imported = read_ledger(write_csv(scenario.rows, tmp_path / "ledger.csv", "utf-8"))
    result = reconcile(scenario.invoices, imported.rows)
    written = save_outcomes(db_path, result, imported)
    assert written == len(result.entries)
    small = reconcile(scenario.invoices[:10], imported.rows[:5])
    save_outcomes(db_path, small, None)
    stored = load_outcomes(db_path)
    assert len(stored) == len(small.entries)
    by_outcome = defaultdict(list)
    for row in stored:
        by_outcome[row["outcome"]].append(row)
    for row in by_outcome["matched_with_differences"]:
        assert row["differences"] and {"field", "invoice", "ledger"} <= set(row["differences"][0])
    for row in stored:
        assert row["reason_en"] and row["reason_zh"] and row["reconciled_at"] > 0
    with sqlite3.connect(db_path) as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(reconciliation)")]
        assert columns == [
            "document_id",
            "ledger_row",
            "outcome",
            "score",
            "differences",
            "reason_en",
            "reason_zh",
            "reconciled_at",
        ]
        assert db.execute("SELECT COUNT(*) FROM ledger_rows").fetchone()[0] == len(imported.rows)
    assert load_ledger_rows(db_path) == imported.rows
    assert [row.raw for row in load_ledger_rows(db_path)] == [row.raw for row in imported.rows]


def test_series_of_equal_invoices_is_not_guessed() -> None:
    """Ten equal invoices from one seller on one day (fuel cards, tolls): the one missing from the
    ledger is not matched to the unscanned row two digits away, but a lone typo still is."""

    def invoice(k: int, number: str) -> InvoiceRecord:
        return InvoiceRecord(
            document_id=f"{k:064x}",
            invoice_code="011002400111",
            invoice_number=number,
            issue_date=date(2024, 6, 1),
            seller_name="中国石化销售股份有限公司北京石油分公司",
            total_amount=Decimal("500.00"),
        )

    invoices = [invoice(k, f"106313{k:02d}") for k in range(1, 11)]
    ledger = [
        LedgerRow(
            row_number=k + 1,
            invoice_code="011002400111",
            invoice_number=f"106313{k:02d}",
            issue_date=date(2024, 6, 1),
            seller_name="中国石化销售股份有限公司北京石油分公司",
            total_amount=Decimal("500.00"),
        )
        for k in [*range(1, 5), *range(6, 12)]  # no 05 (not booked); 11 booked but never scanned
    ]
    result = reconcile(invoices, ledger)
    assert result.counts() == {
        "matched": 9,
        "matched_with_differences": 0,
        "not_in_ledger": 1,
        "duplicate": 0,
        "no_invoice_scanned": 1,
    }
    (missing,) = result.of(Outcome.NOT_IN_LEDGER)
    assert missing.invoice is not None and missing.invoice.invoice_number == "10631305"
    # the same two rows without the series around them: a typo (05 -> 11 is two edits), matched
    alone = reconcile([invoices[4]], [ledger[-1]])
    (entry,) = alone.entries
    assert entry.outcome == Outcome.MATCHED_WITH_DIFFERENCES
    assert [d.field for d in entry.differences] == ["invoice_number"]


def test_scanned_twice_with_a_misread_date() -> None:
    """Code + number name one invoice: a second scan whose date OCR misread is still a duplicate."""
    first = InvoiceRecord(
        document_id="1" * 64,
        source_name="photo.jpg",
        status="ok",
        invoice_code="011002400111",
        invoice_number="12345678",
        issue_date=date(2024, 3, 1),
        total_amount=Decimal("113.00"),
        ingested_at=1.0,
    )
    second = replace(
        first, document_id="2" * 64, source_name="scan.pdf", issue_date=date(2024, 8, 1), ingested_at=2.0
    )
    row = LedgerRow(
        row_number=2,
        invoice_code="011002400111",
        invoice_number="12345678",
        issue_date=date(2024, 3, 1),
        total_amount=Decimal("113.00"),
    )
    result = reconcile([second, first], [row])
    outcomes = {e.invoice.document_id: e for e in result.entries if e.invoice}
    assert outcomes[first.document_id].outcome == Outcome.MATCHED
    assert outcomes[second.document_id].outcome == Outcome.DUPLICATE
    assert outcomes[second.document_id].related_document == first.document_id
    assert "photo.jpg" in outcomes[second.document_id].reason_en
    # a short number without a code is not enough on its own: different amounts, different invoices
    bare = [
        replace(first, invoice_code=None),
        replace(second, invoice_code=None, total_amount=Decimal("9.00")),
    ]
    assert reconcile(bare, []).counts()["duplicate"] == 0
