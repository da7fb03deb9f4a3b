"""Same invoice, several files (issue 14) in the reconciliation: an invoice stored as its OFD and its
XML is counted once, its line names both files, and files that arrived separately are flagged
(double reimbursement), in the ledger-only and the three-way reconciliation."""

from __future__ import annotations

import csv
import importlib.util
import random
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.ingest import State, run_batch
from pipeline.reconcile.tables import load_lines
from pipeline.store import invoices as grouping
from pipeline.store import open_store
from tests.conftest import REPO


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_einvoice_samples", REPO / "scripts" / "make_einvoice_samples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_einvoice_samples", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


LEDGER_HEADERS = ["发票代码", "发票号码", "开票日期", "销售方名称", "金额", "税额", "价税合计"]
PLATFORM_HEADERS = [
    "序号",
    "发票代码",
    "发票号码",
    "数电发票号码",
    "销方识别号",
    "销方名称",
    "购方识别号",
    "购买方名称",
    "开票日期",
    "金额",
    "税额",
    "价税合计",
    "发票状态",
    "发票风险等级",
]


@pytest.fixture
def stored(tmp_path: Path, gen: ModuleType, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Invoice ``apart``: its OFD in one batch, its XML in a later one (two expense claims).
    Invoice ``bundled``: OFD and XML in one ZIP. Invoice ``single``: one XML."""
    apart = gen.random_invoice(random.Random(7), "apart", "fully_digital_general", False, 2)
    bundled = gen.random_invoice(random.Random(8), "bundled", "fully_digital_special", False, 1)
    single = gen.random_invoice(random.Random(9), "single", "fully_digital_general", False, 1)
    for folder in ("a", "b", "c"):
        (tmp_path / folder).mkdir()
    first, second, bundle = (
        tmp_path / "a" / "apart.ofd",
        tmp_path / "b" / "apart.xml",
        tmp_path / "c" / "claim.zip",
    )
    first.write_bytes(gen.ofd_file(apart, with_attachment=False))
    second.write_bytes(gen.digital_xml(apart))
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("bundled.ofd", gen.ofd_file(bundled, with_attachment=False))
        archive.writestr("bundled.xml", gen.digital_xml(bundled))
        archive.writestr("single.xml", gen.digital_xml(single))
    settings = Settings(store=str(tmp_path / "store"))
    store = open_store(settings.store)
    # every batch is another delivery; files of one ZIP stay one delivery whatever the clock says
    monkeypatch.setattr(grouping, "TOGETHER_SECONDS", -1.0)
    try:
        outcomes = [
            *run_batch([first], settings, store, workers=1),
            *run_batch([second], settings, store, workers=1),
            *run_batch([bundle], settings, store, workers=1),
        ]
    finally:
        store.close()
    assert [o.state for o in outcomes] == [State.STORED] * 5, [(o.path, o.state, o.message) for o in outcomes]
    truths = {inv.case: inv.truth([f"{inv.case}.xml"], "test")["fields"] for inv in (apart, bundled, single)}
    ledger = tmp_path / "ledger.csv"
    with ledger.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LEDGER_HEADERS)
        for f in truths.values():
            writer.writerow(
                [
                    f.get("invoice_code") or "",
                    f["invoice_number"],
                    f["issue_date"],
                    f["seller_name"],
                    f["amount_excl_tax"],
                    f["tax_amount"],
                    f["total_amount"],
                ]
            )
    platform = tmp_path / "全量发票查询.csv"
    with platform.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(PLATFORM_HEADERS)
        for n, f in enumerate(truths.values(), 1):
            writer.writerow(
                [
                    n,
                    "",
                    "",
                    f["invoice_number"],
                    f["seller_tax_id"],
                    f["seller_name"],
                    f["buyer_tax_id"],
                    f["buyer_name"],
                    f["issue_date"],
                    f["amount_excl_tax"],
                    f["tax_amount"],
                    f["total_amount"],
                    "正常",
                    "正常",
                ]
            )
    numbers = {case: f["invoice_number"] for case, f in truths.items()}
    return {"store": tmp_path / "store", "ledger": ledger, "platform": platform, "numbers": numbers}


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def test_ledger_only_counts_an_invoice_in_several_files_once(
    stored: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ledger-report"
    args = [
        "reconcile",
        "--ledger",
        str(stored["ledger"]),
        "--store",
        str(stored["store"]),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2 invoice(s) held in several files, counted once; 1 of them arrived separately" in printed
    lines = _csv(out / "reconciliation.csv")
    assert len(lines) == 3, [(r["source_name"], r["outcome"]) for r in lines]  # three invoices, five files
    by_number = {r["invoice_number"]: r for r in lines}
    numbers = stored["numbers"]
    apart, bundled, single = (by_number[numbers[k]] for k in ("apart", "bundled", "single"))
    assert all(r["outcome"] == "matched" for r in lines), lines
    assert apart["documents"].split(" | ") == ["apart.ofd", "apart.xml"]
    assert apart["arrived_separately"]
    assert "arrived separately" in apart["reason_en"] and "注意重复报销" in apart["reason_zh"]
    assert sorted(bundled["documents"].split(" | ")) == ["claim.zip!bundled.ofd", "claim.zip!bundled.xml"]
    assert not bundled["arrived_separately"] and "arrived together" in bundled["reason_en"]
    assert single["documents"] == "" and not single["arrived_separately"]


def test_three_way_counts_once_and_says_when_files_arrived_separately(
    stored: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "three-way-report"
    args = [
        "reconcile",
        "--ledger",
        str(stored["ledger"]),
        "--tax-platform",
        str(stored["platform"]),
        "--store",
        str(stored["store"]),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    capsys.readouterr()
    lines = _csv(out / "reconciliation.csv")
    assert len(lines) == 3, [(r["source_name"], r["outcome"]) for r in lines]
    numbers = stored["numbers"]
    by_number = {r["invoice_number"]: r for r in lines}
    apart, bundled, single = (by_number[numbers[k]] for k in ("apart", "bundled", "single"))
    assert apart["outcome"] == "arrived_separately", apart
    assert "reimbursed twice" in apart["reason_en"] and "重复报销" in apart["reason_zh"]
    assert apart["documents"].split(" | ") == ["apart.ofd", "apart.xml"]
    assert bundled["outcome"] == "matched" and len(bundled["documents"].split(" | ")) == 2
    assert single["outcome"] == "matched"
    # the stored lines: one per invoice, queryable by the new code
    store = open_store(str(stored["store"]))
    db = Path(store.index.path)
    store.close()
    flagged = load_lines(db, outcome="arrived_separately")
    assert [r["invoice_number"] for r in flagged] == [numbers["apart"]]
    assert len(load_lines(db)) == 3


def test_query_shows_an_invoice_once_with_its_files(stored: dict, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    where = ["--store", str(stored["store"])]
    numbers = stored["numbers"]
    assert main(["query", *where, "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 3  # five files, three invoices
    by_number = {r["invoice_number"]: r for r in records}
    assert by_number[numbers["apart"]]["documents"] == 2
    assert by_number[numbers["apart"]]["files"] == "apart.ofd | apart.xml"
    assert by_number[numbers["apart"]]["source_name"] in ("apart.ofd", "apart.xml")
    assert by_number[numbers["single"]]["documents"] == 1
    assert main(["query", *where, "--every-document", "--format", "json"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert len(every) == 5 and len({r["document_id"] for r in every}) == 5
    assert sorted(r["source_name"] for r in every if r["invoice_number"] == numbers["bundled"]) == [
        "claim.zip!bundled.ofd",
        "claim.zip!bundled.xml",
    ]
    assert main(["query", *where, "--number", numbers["apart"]]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-1] == "documents" and len(table) == 3 and table[2].split()[-1] == "2"


def test_a_review_correction_re_matches_the_three_way_lines(
    stored: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrected number re-runs the line of the invoice (not only the ledger outcome): the platform
    record and ledger row it lets go get their own lines again, and back."""
    from datetime import date

    from pipeline.review import apply_correction

    args = ["reconcile", "--ledger", str(stored["ledger"]), "--tax-platform", str(stored["platform"])]
    assert main([*args, "--store", str(stored["store"]), "--out", str(tmp_path / "r"), "-q"]) == 0
    capsys.readouterr()
    right = stored["numbers"]["single"]
    wrong = right[:-1] + ("1" if right[-1] != "1" else "2")
    store = open_store(str(stored["store"]))
    db = Path(store.index.path)
    try:
        (doc,) = [r for r in store.index.documents() if r["invoice_number"] == right]
        document_id = doc["document_id"]

        def line_of() -> tuple[str, str, list[str]]:
            (line,) = [r for r in load_lines(db) if r["document_id"] == document_id]
            return line["outcome"], line["also"], sorted({d["field"] for d in line["differences"]})

        assert line_of() == ("matched", "", [])
        apply_correction(store, document_id, "invoice_number", wrong, "bob", today=date(2026, 1, 5))
        # one digit off, same amount, date and seller: still this row and record, now differing
        assert line_of() == ("platform_differs", "matched_with_differences", ["invoice_number"])
        assert len(load_lines(db)) == 3
        assert [r["invoice_number"] for r in load_lines(db, outcome="arrived_separately")] == [
            stored["numbers"]["apart"]
        ]  # the other invoices' lines are untouched
        apply_correction(store, document_id, "invoice_number", right, "bob", today=date(2026, 1, 5))
        assert line_of() == ("matched", "", [])
        assert len(load_lines(db)) == 3
    finally:
        store.close()


def test_a_correction_that_lets_go_of_the_row_and_the_record(
    stored: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Corrected to another invoice's amount and number: the ledger row and the platform record it held
    get lines of their own (booked, on the platform, no invoice held), and back."""
    from datetime import date

    from pipeline.review import apply_correction

    args = ["reconcile", "--ledger", str(stored["ledger"]), "--tax-platform", str(stored["platform"])]
    assert main([*args, "--store", str(stored["store"]), "--out", str(tmp_path / "r"), "-q"]) == 0
    capsys.readouterr()
    right = stored["numbers"]["single"]
    store = open_store(str(stored["store"]))
    db = Path(store.index.path)
    try:
        (doc,) = [r for r in store.index.documents() if r["invoice_number"] == right]
        document_id = doc["document_id"]

        def shape() -> list[tuple[str, int, int, int, bool]]:
            return sorted(
                (
                    r["outcome"],
                    r["in_held"],
                    r["in_ledger"],
                    r["in_platform"],
                    r["document_id"] == document_id,
                )
                for r in load_lines(db)
                if r["document_id"] == document_id or r["invoice_number"] == right
            )

        assert shape() == [("matched", 1, 1, 1, True)]
        for name, value in (("invoice_number", "24119876543210987654"), ("total_amount", "12.34")):
            apply_correction(store, document_id, name, value, "bob", today=date(2026, 1, 5))
        assert shape() == [("no_invoice_scanned", 0, 1, 1, False), ("not_on_platform", 1, 0, 0, True)]
        assert len(load_lines(db)) == 4
        for name, value in (("invoice_number", right), ("total_amount", doc["total_amount"])):
            apply_correction(store, document_id, name, value, "bob", today=date(2026, 1, 5))
        assert shape() == [("matched", 1, 1, 1, True)]
        assert len(load_lines(db)) == 3
    finally:
        store.close()
