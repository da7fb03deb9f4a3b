"""`invoices verify`: each kind of damage, one at a time, is found, and `--repair` restores what it can.

A real store: text-layer sample PDFs ingested through the CLI, one field corrected in review, one
failed file; a backup of it taken with `invoices backup` for the repairs that need one.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.model import DocType, Field, FieldSource, FieldStatus, InvoiceResult, PageInfo
from pipeline.ops.verify import verify
from pipeline.review.corrections import apply_correction
from pipeline.store import open_store, original_key, page_key, result_key
from tests.bad_inputs import truncated_jpeg
from tests.conftest import SAMPLES

SAMPLE_PDFS = ["vat_e_general.pdf", "fully_digital_general.pdf", "en_invoice.pdf"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store (with its index inside) and its backup, made once; each test works on a copy."""
    root = tmp_path_factory.mktemp("verify")
    store = root / "store"
    bad = root / "broken.jpg"
    bad.write_bytes(truncated_jpeg())
    files = [str(SAMPLES / name) for name in SAMPLE_PDFS] + [str(bad)]
    assert main(["-q", "ingest", *files, "--store", str(store), "--workers", "1"]) == 1
    opened = open_store(str(store))
    try:
        doc = next(row for row in opened.index.documents() if row["source_name"] == "vat_e_general.pdf")
        apply_correction(opened, doc["document_id"], "buyer_name", "北京测试采购有限公司", "clerk")
    finally:
        opened.close()
    assert main(["-q", "backup", str(root / "backup"), "--store", str(store)]) == 0
    return root


@pytest.fixture
def site(pristine: Path, tmp_path: Path) -> Path:
    shutil.copytree(pristine, tmp_path / "site")
    return tmp_path / "site"


def ids(store: Path) -> dict[str, str]:
    opened = open_store(str(store))
    try:
        return {row["source_name"]: row["document_id"] for row in opened.index.documents()}
    finally:
        opened.close()


def run_verify(store: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict]:
    code = main(["verify", "--json", "--store", str(store), *flags])
    return code, json.loads(capsys.readouterr().out)


def kinds(report: dict) -> list[str]:
    return sorted(problem["kind"] for problem in report["problems"])


def test_a_fresh_store_with_a_review_is_clean(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_verify(site / "store", capsys, "--deep")
    assert (code, kinds(report)) == (0, [])
    assert report["documents"] == 3 and report["index_rows"] == 3 and report["bytes_hashed"] > 0
    assert main(["verify", "--store", str(site / "store")]) == 0
    assert "clean" in capsys.readouterr().out


def flip_a_byte(store: Path, doc: str) -> None:
    path = store / original_key(doc)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def delete_a_page(store: Path, doc: str) -> None:
    (store / page_key(doc, 0)).unlink()


def swap_the_result(store: Path, doc: str) -> None:
    other = next(d for d in ids(store).values() if d != doc)
    shutil.copyfile(store / result_key(other), store / result_key(doc))


DAMAGE: dict[str, tuple[Callable[[Path, str], None], str, bool]] = {
    # what is done, the problem verify must report, whether only --deep sees it
    "flipped byte in an original": (flip_a_byte, "original_altered", True),
    "deleted page image": (delete_a_page, "page_missing", False),
    "result.json replaced by another document's": (swap_the_result, "result_wrong_document", False),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_objects_are_found_and_repaired_from_a_backup(
    site: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    store = site / "store"
    doc = ids(store)["fully_digital_general.pdf"]
    do, kind, deep_only = DAMAGE[damage]
    before = (store / original_key(doc)).read_bytes(), (store / result_key(doc)).read_bytes()
    do(store, doc)

    code, report = run_verify(store, capsys, "--deep")
    assert (code, kinds(report)) == (1, [kind])
    assert report["problems"][0]["document_id"] == doc
    if deep_only:
        assert run_verify(store, capsys)[0] == 0  # the quick pass checks presence and sizes only

    # Without a backup: listed as not repairable, nothing deleted, still exit 1.
    code, report = run_verify(store, capsys, "--deep", "--repair")
    assert code == 1 and [p["kind"] for p in report["unrepaired"]] == [kind]
    assert "--from BACKUP" in report["unrepaired"][0]["why"]
    assert (store / original_key(doc)).exists()

    # From the backup: the good copy comes back, checked, and the store is clean again.
    code, report = run_verify(store, capsys, "--deep", "--repair", "--from", str(site / "backup"))
    assert code == 0, report
    assert [p["kind"] for p in report["repaired"]] == [kind] and report["problems"] == []
    assert ((store / original_key(doc)).read_bytes(), (store / result_key(doc)).read_bytes()) == before
    assert (store / page_key(doc, 0)).exists()


def test_a_deleted_index_row_is_rebuilt_from_the_store(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = site / "store"
    doc = ids(store)["en_invoice.pdf"]
    with sqlite3.connect(store / "index.sqlite") as db:
        db.execute("DELETE FROM documents WHERE document_id = ?", (doc,))
    code, report = run_verify(store, capsys)
    assert (code, kinds(report)) == (1, ["index_missing"])
    code, report = run_verify(store, capsys, "--repair")
    assert code == 0 and [p["kind"] for p in report["repaired"]] == ["index_missing"]
    assert ids(store)["en_invoice.pdf"] == doc


def test_a_stray_index_row_is_removed_by_rebuilding_the_index(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = site / "store"
    ghost = InvoiceResult(
        document_id="0f" * 32,
        source_name="ghost.pdf",
        doc_type=DocType.VAT_GENERAL_PAPER,
        fields={"invoice_number": Field("00000001", 0.99, FieldStatus.OK, FieldSource.OCR)},
        pages=[PageInfo(0, 100, 80, "ocr")],
    )
    opened = open_store(str(store))
    try:
        opened.index.upsert(ghost, result_key(ghost.document_id), original_key(ghost.document_id), 1.0)
    finally:
        opened.close()
    code, report = run_verify(store, capsys)
    assert (code, kinds(report)) == (1, ["index_stray"])
    assert report["problems"][0]["document_id"] == ghost.document_id
    code, report = run_verify(store, capsys, "--repair")
    assert code == 0 and [p["kind"] for p in report["repaired"]] == ["index_stray"]
    assert "ghost.pdf" not in ids(store) and len(ids(store)) == 3


def test_a_result_that_disagrees_with_its_review_is_found(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = site / "store"
    doc = ids(store)["vat_e_general.pdf"]
    path = store / result_key(doc)
    result = json.loads(path.read_text(encoding="utf-8"))
    assert result["fields"]["buyer_name"]["value"] == "北京测试采购有限公司"
    result["fields"]["buyer_name"]["value"] = "别的公司"
    path.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    code, report = run_verify(store, capsys)
    assert code == 1 and "review_mismatch" in kinds(report)
    mismatch = next(p for p in report["problems"] if p["kind"] == "review_mismatch")
    assert "buyer_name" in mismatch["detail"] and "别的公司" in mismatch["detail"]


def test_an_interrupted_save_is_incomplete_not_a_problem(site: Path) -> None:
    store = site / "store"
    (store / "documents" / "ee" / ("ee" * 32)).mkdir(parents=True)
    (store / original_key("ee" * 32)).write_bytes(b"%PDF-1.4 cut short")
    opened = open_store(str(store))
    try:
        report = verify(opened)
    finally:
        opened.close()
    assert report.clean and report.incomplete == ["ee" * 32]


def test_a_deleted_row_of_a_postgres_index_is_found_and_rebuilt(
    site: Path, capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    from tests.conftest import execute_sql

    store = site / "store"
    opened = open_store(str(store), index=pg_url)  # a new PostgreSQL index, filled from the store
    try:
        assert opened.index.location.startswith("postgresql://") and len(opened.index.documents()) == 3
        doc = next(r["document_id"] for r in opened.index.documents() if r["source_name"] == "en_invoice.pdf")
        execute_sql(opened.index, "DELETE FROM documents WHERE document_id = ?", (doc,))
    finally:
        opened.close()
    code, report = run_verify(store, capsys, "--index", pg_url)
    assert (code, kinds(report)) == (1, ["index_missing"])
    code, report = run_verify(store, capsys, "--index", pg_url, "--repair")
    assert code == 0 and [p["kind"] for p in report["repaired"]] == ["index_missing"]
    code, report = run_verify(store, capsys, "--index", pg_url)
    assert (code, report["clean"], report["index_rows"]) == (0, True, 3)
    opened = open_store(str(store), index=pg_url)
    try:
        assert opened.index.has_document(doc)
    finally:
        opened.close()
