"""The index and the commands on it: query filters, export, reindex; on both index backends
(the SQLite file, and a real PostgreSQL server started by the ``postgres`` fixture)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.model import Field, FieldSource, FieldStatus
from pipeline.store import Store, open_store
from pipeline.store.index import Query, name_key
from pipeline.store.index_sqlite import SqliteIndex as Index
from pipeline.store.objects import LocalObjectStore, page_key, result_key
from tests.conftest import execute_sql
from tests.query_invoices import INVOICES, make_result


@pytest.fixture
def store(tmp_path: Path, index_location: str | None) -> Store:
    opened = open_store(str(tmp_path / "store"), index=index_location)
    for spec in INVOICES:
        result = make_result(spec)
        assert opened.save(f"original {spec[0]}".encode(), result.source_name, result, [(0, b"png")])
    opened.save_failure("f" * 64, "broken.jpg", "ImageUnreadable", "image is truncated")
    yield opened
    opened.close()


def ids(rows: list[dict]) -> list[str]:  # type: ignore[type-arg]
    return [row["document_id"][0] for row in rows]


def where(store: Store) -> list[str]:
    """The CLI arguments naming this store and its index."""
    args = ["--store", store.location]
    if store.index.location.startswith("postgresql://"):
        args += ["--index", store.index.url]  # type: ignore[attr-defined]
    return args


def is_postgres(store: Store) -> bool:
    return store.index.location.startswith("postgresql://")


def test_exact_filters(store: Store) -> None:
    index = store.index
    assert ids(index.query(Query())) == ["b", "d", "a", "c", "e"]  # by issue date
    assert ids(index.query(Query(number="10631331"))) == ["d"]
    assert ids(index.query(Query(code="011002400604"))) == ["c"]
    assert ids(index.query(Query(number="00000000"))) == []
    assert ids(index.query(Query(tax_id="91110108701741311a"))) == ["a"], "case and spaces do not matter"
    assert ids(index.query(Query(date_from=date(2021, 1, 19), date_to=date(2024, 7, 10)))) == ["d", "a", "c"]
    assert ids(index.query(Query(date_from=date(2025, 1, 1)))) == ["e"]
    assert ids(index.query(Query(amount_min=5000, amount_max=10000))) == ["b", "a"]
    assert ids(index.query(Query(amount_min=4777.70, amount_max=4777.70))) == ["e"], "4,777.70 parsed"
    assert ids(index.query(Query(status="needs_review"))) == ["b"]
    assert ids(index.query(Query(needs_review=True, date_from=date(2020, 1, 1)))) == []
    assert ids(index.query(Query(review_state="pending"))) == ["b"]
    assert ids(index.query(Query(limit=2))) == ["b", "d"]


def test_row_holds_fields_confidence_and_keys(store: Store) -> None:
    (row,) = store.index.query(Query(number="53237011"))
    assert row["status"] == "needs_review"
    assert row["review_fields"] == "seller_name"
    assert row["confidence"] == pytest.approx(0.7)
    assert row["result_key"] == result_key("b" * 64)
    assert json.loads(row["page_keys"]) == [page_key("b" * 64, 0)]
    assert json.loads(row["fields_json"])["tax_rates"] == ["6%"]
    assert json.loads(row["field_details_json"])["seller_name"]["status"] == "needs_review"


def test_fuzzy_names(store: Store) -> None:
    index = store.index
    assert ids(index.query(Query(seller="智源"))) == ["b", "a"], "a part of the name"
    assert ids(index.query(Query(seller="北京智源医疗器戒有限公司"))) == ["a"], "one character misread"
    assert ids(index.query(Query(seller="北京智源医疗器械"))) == ["a"], "without the legal form"
    assert ids(index.query(Query(seller="blauwal software"))) == ["e"], "case-insensitive"
    assert ids(index.query(Query(seller="上海浦东发展银行"))) == []
    assert ids(index.query(Query(buyer="众合(北京)科技"))) == ["a"], "half-width brackets match full-width"
    assert ids(index.query(Query(buyer="天润", seller="凯德"))) == ["c"]
    assert name_key("北京智源医疗器械有限公司") == "北京智源医疗器械"


def test_free_text(store: Store) -> None:
    index = store.index
    assert ids(index.query(Query(text="广告发布费"))) == ["a"], "recognised text, Chinese substring"
    assert ids(index.query(Query(text="软件"))) == ["b", "d"], "two characters: buyer name d, text b"
    assert ids(index.query(Query(text="licence support"))) == ["e"], "every word must occur"
    assert ids(index.query(Query(text="licence 打印纸"))) == []
    assert ids(index.query(Query(text="scan-c"))) == ["c"], "the source file name"
    assert ids(index.query(Query(text='50%_"x'))) == [], "quotes and wildcards are plain characters"


def test_reconciliation_statuses(store: Store) -> None:
    index = store.index
    assert index.query(Query(status="matched")) == [], "no reconciliation table yet: empty, no error"
    if not is_postgres(store):
        execute_sql(
            index,
            "CREATE TABLE reconciliation (document_id TEXT, ledger_row INTEGER, outcome TEXT, score REAL, "
            "differences TEXT, reason_en TEXT, reason_zh TEXT, reconciled_at REAL)",
        )
    rows = [
        ("a" * 64, 1, "matched", 1.0, "", "", "", 100.0),
        ("b" * 64, 2, "matched", 1.0, "", "", "", 100.0),
        ("b" * 64, 2, "matched_with_differences", 0.9, "total", "", "", 200.0),  # a later run
        ("c" * 64, None, "not_in_ledger", 0.0, "", "", "", 100.0),
    ]
    for row in rows:
        execute_sql(
            index,
            "INSERT INTO reconciliation (document_id, ledger_row, outcome, score, differences, reason_en, "
            "reason_zh, reconciled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )
    assert ids(index.query(Query(status="matched"))) == ["a"], "the latest outcome counts"
    assert ids(index.query(Query(status="matched_with_differences"))) == ["b"]
    assert ids(index.query(Query(status="not_in_ledger", seller="凯德"))) == ["c"]
    assert ids(index.query(Query(status="duplicate"))) == []


def test_cli_query_formats(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    where_ = where(store)
    assert main(["query", *where_, "--seller", "智源", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["invoice_number"] for r in records] == ["53237011", "18582132"]
    assert records[0]["review_state"] == "pending"
    assert main(["query", *where_, "--amount-min", "40000", "--format", "csv"]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["invoice_number"], r["total_amount"]) for r in parsed] == [("10631331", "48360.72")]
    assert main(["query", *where_, "--number", "78739086"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["document_id", "source_name"]
    assert len(table) == 3 and "cccccccccccc" in table[2] and "北京凯德网络科技股份有限公司" in table[2]
    assert main(["query", *where_, "--status", "failed", "--format", "json"]) == 0
    (failure,) = json.loads(capsys.readouterr().out)
    assert failure["source_name"] == "broken.jpg"
    assert main(["query", *where_, "--status", "duplicate"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2, "header and rule, no rows"


def test_cli_rejects_bad_filters(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    where_ = where(store)
    with pytest.raises(SystemExit) as exit_info:
        main(["query", *where_, "--date-from", "2024-13-01"])
    assert exit_info.value.code == 2
    assert "not a date" in capsys.readouterr().err
    assert main(["query", *where_, "--amount-min", "10", "--amount-max", "5"]) == 2
    assert "--amount-min is larger" in capsys.readouterr().err


def test_export_csv_and_xlsx(store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openpyxl import load_workbook

    where_ = where(store)
    out_csv = tmp_path / "out" / "invoices.csv"
    assert main(["export", *where_, "--out", str(out_csv), "--date-from", "2021-01-01"]) == 0
    assert "wrote 4 invoices" in capsys.readouterr().out
    raw = out_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM for Excel"
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["invoice_number"] for r in rows] == ["10631331", "18582132", "78739086", "INV-2025-7285"]
    assert rows[1]["seller_name"] == "北京智源医疗器械有限公司"
    assert rows[1]["tax_rates"] == "6%"

    out_xlsx = tmp_path / "invoices.xlsx"
    assert main(["export", *where_, "--out", str(out_xlsx)]) == 0
    sheet = load_workbook(out_xlsx).active
    header = [cell.value for cell in sheet[1]]
    values = [
        dict(zip(header, [cell.value for cell in row], strict=True)) for row in sheet.iter_rows(min_row=2)
    ]
    assert len(values) == 5
    blauwal = next(v for v in values if v["invoice_number"] == "INV-2025-7285")
    assert blauwal["total_amount"] == pytest.approx(4777.70), "an amount is a number"
    zhiyuan = next(v for v in values if v["invoice_number"] == "18582132")
    assert zhiyuan["issue_date"].date() == date(2023, 2, 15), "the issue date is a date"
    assert zhiyuan["invoice_code"] == "011002300711", "a code keeps its leading zero"
    assert main(["export", *where_, "--out", str(tmp_path / "x.txt")]) == 2


def test_reindex_rebuilds_identical_index(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    where_ = where(store)
    assert main(["query", *where_, "--format", "json"]) == 0
    before = capsys.readouterr().out
    assert main(["query", *where_, "--status", "failed", "--format", "json"]) == 0
    failures_before = capsys.readouterr().out
    db_before = _dump(store)
    if is_postgres(store):
        execute_sql(store.index, "DELETE FROM documents")
        execute_sql(store.index, "DELETE FROM failures")
    store.close()
    if not is_postgres(store):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store.index.path}{suffix}").unlink(missing_ok=True)
    assert main(["reindex", *where_]) == 0
    assert "indexed 5 documents and 1 failures" in capsys.readouterr().out
    assert _dump(store) == db_before, "every column, ingested_at included"
    assert main(["query", *where_, "--format", "json"]) == 0
    assert capsys.readouterr().out == before
    assert main(["query", *where_, "--status", "failed", "--format", "json"]) == 0
    assert capsys.readouterr().out == failures_before


def test_missing_index_is_rebuilt_on_open(store: Store) -> None:
    if is_postgres(store):  # an empty database: no tables at all
        execute_sql(store.index, "DROP TABLE documents, failures, schema_version, claims")
    store.close()
    if not is_postgres(store):
        store.index.path.unlink()
    again = open_store(store.location, index=getattr(store.index, "url", None))
    assert ids(again.index.query(Query())) == ["b", "d", "a", "c", "e"]
    again.close()


def test_reindex_picks_up_reviews_and_skips_broken(store: Store) -> None:
    corrected = make_result(INVOICES[1])
    corrected.fields["seller_name"] = Field(
        "北京智源信息技术股份有限公司", 1.0, FieldStatus.OK, FieldSource.REVIEW
    )
    key = store.save_review(corrected, {"reviewer": "clerk", "changed": ["seller_name"]})
    assert key.startswith("documents/bb/" + "b" * 64 + "/reviews/")
    (row,) = store.index.query(Query(number="53237011"))
    assert (row["status"], row["review_state"], row["review_count"]) == ("ok", "reviewed", 1)
    # A review tool that rewrites result.json by itself: reindex reads the current one.
    edited = make_result(INVOICES[2])
    edited.fields["total_amount"] = Field("1518.00", 1.0, FieldStatus.OK, FieldSource.REVIEW)
    body = json.dumps(edited.to_dict(), ensure_ascii=False).encode()
    assert store.objects.put(result_key("c" * 64), body, "application/json"), "a plain put overwrites"
    store.objects.put(result_key("d" * 64), b"{not json", "application/json")
    report = store.reindex()
    assert report.documents == 4 and report.failures == 1
    assert report.skipped == [(result_key("d" * 64), report.skipped[0][1])]
    assert ids(store.index.query(Query(review_state="reviewed"))) == ["b", "c"]
    assert store.index.query(Query(number="78739086"))[0]["total_amount"] == "1518.00"
    (row,) = store.index.query(Query(number="53237011"))
    assert row["review_count"] == 1 and row["reviewed_at"] is not None


def test_stored_but_unindexed_is_repaired(tmp_path: Path, index_location: str | None) -> None:
    store = open_store(str(tmp_path), index=index_location)
    result = make_result(INVOICES[0])
    store.save(b"original", result.source_name, result, [])
    execute_sql(store.index, "DELETE FROM documents")
    assert store.is_stored(result.document_id)
    assert ids(store.index.query(Query(number="18582132"))) == ["a"]
    store.close()


def test_old_index_layout_is_rebuilt(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path)
    result = make_result(INVOICES[3])
    Store(objects, Index(tmp_path / "scratch.sqlite")).save(b"x", result.source_name, result, [])
    old = sqlite3.connect(tmp_path / "index.sqlite")
    old.executescript(
        "CREATE TABLE documents (document_id TEXT PRIMARY KEY, source_name TEXT);"
        "CREATE TABLE reconciliation (document_id TEXT, outcome TEXT);"
        "INSERT INTO reconciliation VALUES ('x', 'matched');"
    )
    old.close()
    store = open_store(str(tmp_path))
    assert ids(store.index.query(Query())) == ["d"]
    kept = store.index._db.execute("SELECT COUNT(*) FROM reconciliation").fetchone()[0]
    assert kept == 1, "other tables in the file are not touched"
    store.close()


def test_local_put_overwrites_unless_create_only(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path)
    assert objects.put("documents/x/result.json", b"1", "application/json", {"source_name": "发票.pdf"})
    assert objects.put("documents/x/result.json", b"2", "application/json", {"source_name": "发票 2.pdf"})
    assert objects.get_with_metadata("documents/x/result.json") == (
        b"2",
        {"content_type": "application/json", "source_name": "发票 2.pdf"},
    )
    assert not objects.put("documents/x/result.json", b"3", create_only=True)
    assert [info.key for info in objects.list("documents/x/res")] == ["documents/x/result.json"]
    assert list(objects.keys("documents/y")) == []


def _dump(store: Store) -> list[tuple]:  # type: ignore[type-arg]
    if is_postgres(store):
        import psycopg

        with psycopg.connect(store.index.url) as pg:  # type: ignore[attr-defined]
            rows = pg.execute("SELECT * FROM documents ORDER BY document_id").fetchall()
            failures = pg.execute("SELECT * FROM failures").fetchall()
        return [tuple(row) for row in rows + failures]
    db = sqlite3.connect(store.index.path)
    try:
        rows = db.execute("SELECT * FROM documents ORDER BY document_id").fetchall()
        fts = db.execute("SELECT * FROM documents_fts ORDER BY source_name").fetchall()
        failures = db.execute("SELECT * FROM failures").fetchall()
    finally:
        db.close()
    return [tuple(row) for row in rows + fts + failures]
