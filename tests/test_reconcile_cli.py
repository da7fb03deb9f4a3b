"""The reconcile command end to end: a small store and XLSX/CSV ledgers through ``invoices reconcile``,
the samples ingested then reconciled, and the reports (page links, formulas defused in the CSV)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipeline.reconcile import Outcome, load_outcomes, reconcile
from pipeline.reconcile.sources import LedgerRow
from tests.reconcile_scenarios import store_invoices, xlsx_ledger

STORE_INVOICES = [
    # (source name, number, date, total, seller)
    ("a.jpg", "10631331", "2024-03-01", "113.00", "金桥（北京）建筑工程有限责任公司"),
    ("b.jpg", "10631332", "2024-03-02", "226.00", "北京智源信息技术股份有限公司"),
    ("c.pdf", "10631340", "2024-03-05", "339.00", "北京新纪元商贸有限责任公司"),
    ("d.png", "10631350", "2024-03-09", "452.00", "北京启明医疗器械有限公司"),
    ("e.jpg", "10631360", "2024-04-02", "565.00", "北京凯德网络科技股份有限公司"),
]


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    store_invoices(root, STORE_INVOICES)
    return root


def test_cli_end_to_end(small_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    ledger = xlsx_ledger(
        tmp_path / "ledger.xlsx",
        [
            ["1100214130", "10631331", date(2024, 3, 1), "金桥(北京)建筑工程有限公司", 113.0, "A"],
            ["1100214130", "10631323", date(2024, 3, 2), "北京智源信息技术股份有限公司", 226.0, "A"],  # typo
            [
                "1100214130",
                "1O63134O",
                date(2024, 3, 5),
                "北京新纪元商贸有限责任公司",
                339.01,
                "B",
            ],  # look-alikes
            ["1100214130", "10631360", date(2024, 4, 2), "北京凯德网络科技股份有限公司", 565.0, "B"],
            ["1100214130", "10631360", date(2024, 4, 2), "北京凯德网络科技股份有限公司", 565.0, "B"],  # twice
            ["1100214130", "99999999", date(2024, 3, 20), "某某商贸有限公司", 56.5, "C"],  # not scanned
        ],
    )
    out = tmp_path / "report"
    args = ["reconcile", "--ledger", str(ledger), "--store", str(small_store), "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "matched with differences" in printed and "reports:" in printed
    assert main([*args, "--fail-on-mismatch", "-q"]) == 1

    outcomes = {
        (r["document_id"], r["ledger_row"]): r["outcome"] for r in load_outcomes(small_store / "index.sqlite")
    }
    ids = {name: f"{k + 1:02x}" * 32 for k, (name, *_rest) in enumerate(STORE_INVOICES)}
    assert outcomes == {
        (ids["a.jpg"], 2): "matched",
        (ids["b.jpg"], 3): "matched_with_differences",
        (ids["c.pdf"], 4): "matched",
        (ids["d.png"], None): "not_in_ledger",
        (ids["e.jpg"], 5): "duplicate",
        (None, 6): "duplicate",
        (None, 7): "no_invoice_scanned",
    }
    # the index answers for the other commands
    assert main(["query", "--status", "not_in_ledger", "--format", "json", "--store", str(small_store)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["source_name"] for row in listed] == ["d.png"]

    # the reports: every entry in CSV and XLSX, a self-contained HTML linking each page image
    with (out / "reconciliation.csv").open(encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == len(outcomes)
    mwd = next(r for r in records if r["outcome"] == "matched_with_differences")
    assert mwd["differences"] == "invoice number (invoice 10631332, ledger 10631323)"
    assert mwd["page_image"].startswith("file://") and mwd["page_image"].endswith("/pages/1.png")
    workbook = openpyxl.load_workbook(out / "reconciliation.xlsx", read_only=True)
    assert workbook.sheetnames[1:6] == [str(o) for o in Outcome]
    assert len(list(workbook["duplicate"].iter_rows())) == 3  # header, the invoice, the second booking
    page = (out / "reconciliation.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    hrefs = [h for h in re.findall(r'href="([^"#][^"]*)"', page)]
    assert len(hrefs) == len(STORE_INVOICES)
    for href in hrefs:
        assert (out / href).resolve().is_file(), href
    assert "价税合计" in page and "Booked twice" in page


def test_cli_mapping_and_period(small_store: Path, tmp_path: Path) -> None:
    from pipeline.cli import main

    path = tmp_path / "erp.csv"
    path.write_text(
        "单据号,供应商,开票时间,含税金额\n"
        "10631331,金桥（北京）建筑工程有限责任公司,2024-03-01,113.00\n"
        "10631360,北京凯德网络科技股份有限公司,2024-04-02,565.00\n",
        encoding="gbk",
    )
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\n"开票时间" = "issue_date"\n', encoding="utf-8")
    code = main(
        [
            "reconcile",
            "--ledger",
            str(path),
            "--map",
            "单据号=invoice_number",
            "--mapping",
            str(mapping),
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-31",
            "--store",
            str(small_store),
            "--out",
            str(tmp_path / "out"),
            "-q",
        ]
    )
    assert code == 0
    stored = load_outcomes(small_store / "index.sqlite")
    # April is outside the period: e.jpg and its row are left out
    assert Counter(r["outcome"] for r in stored) == {"matched": 1, "not_in_ledger": 3}
    assert (
        main(["reconcile", "--ledger", str(path), "--store", str(small_store), "--amount-tolerance", "x"])
        == 2
    )


def test_page_links_for_an_s3_store() -> None:
    from types import SimpleNamespace

    from pipeline.reconcile.report import page_links

    store = SimpleNamespace(objects=SimpleNamespace(location="s3://invoices/acme/"))
    links = page_links(store, ["ab" * 32])  # type: ignore[arg-type]
    assert links == {"ab" * 32: f"s3://invoices/acme/documents/ab/{'ab' * 32}/pages/1.png"}


@pytest.mark.slow
def test_samples_ingested_and_reconciled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Real OCR on samples/, then a ledger written from their ground truth with known faults."""
    from pipeline.cli import main
    from tests.conftest import SAMPLES

    store = tmp_path / "store"
    assert (
        main(["ingest", str(SAMPLES), "--store", str(store), "--workers", "2", "-q"]) == 1
    )  # the corrupt one
    truths = {
        p.name.removesuffix(".expected.json"): json.loads(p.read_text())
        for p in SAMPLES.glob("*.expected.json")
    }
    rows: list[dict[str, str]] = []
    for case, truth in sorted(truths.items()):
        if case == "vat_general_degraded":
            continue  # never booked
        f = truth["fields"]
        number = f["invoice_number"]
        if case == "vat_e_general":
            number = number[:3] + number[4] + number[3] + number[5:]  # transposed digits
        rows.append(
            {
                "发票代码": f.get("invoice_code") or "",
                "发票号码": number,
                "开票日期": f["issue_date"],
                "销售方名称": f.get("seller_name") or f.get("vendor_name") or "",
                "金额": f.get("amount_excl_tax") or "",
                "税额": f.get("tax_amount") or "",
                "价税合计": f["total_amount"],
            }
        )
    rows.append(
        {"发票代码": "", "发票号码": "24110000000000000001", "开票日期": "2024-05-05", "价税合计": "99.00"}
    )
    ledger = tmp_path / "ledger.csv"
    with ledger.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["发票代码", "发票号码", "开票日期", "销售方名称", "金额", "税额", "价税合计"]
        )
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "report"
    assert main(["reconcile", "--ledger", str(ledger), "--store", str(store), "--out", str(out), "-q"]) == 0
    with (out / "reconciliation.csv").open(encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    by_file = {r["source_name"]: r for r in records if r["source_name"]}
    # same invoice, several files: one line, on the first file, naming them all
    by_file.update({name: r for r in records for name in r["documents"].split(" | ") if r["documents"]})
    # expectations follow what ingest stored: a sample it could not read is a booked row without a scan
    stored = {name for case, truth in truths.items() for name in truth["files"] if name in by_file}
    assert len(stored) >= 8, f"too few samples ingested to test anything: {sorted(stored)}"
    unscanned_numbers = {"24110000000000000001"}
    for case, truth in truths.items():
        names = [name for name in truth["files"] if name in stored]
        if case == "corrupt_truncated":
            assert not names
            continue
        number = truth["fields"]["invoice_number"]
        if not names:
            if case != "vat_general_degraded":
                unscanned_numbers.add(
                    number[:3] + number[4] + number[3] + number[5:] if case == "vat_e_general" else number
                )
            continue
        outcomes = sorted(by_file[name]["outcome"] for name in names)
        if case == "vat_general_degraded":
            assert outcomes == ["not_in_ledger"]
        elif case == "en_invoice":  # one invoice, scanned as a PDF and as a PNG: counted once
            assert len(names) == 2 and by_file[names[0]] is by_file[names[1]], names
            line = by_file[names[0]]
            assert line["outcome"] in ("matched", "matched_with_differences"), line
            assert sorted(line["documents"].split(" | ")) == sorted(names)
            assert not line["arrived_separately"]  # one ingest run
        elif case == "vat_e_general":
            (name,) = names
            assert (
                outcomes == ["matched_with_differences"] and "invoice number" in by_file[name]["differences"]
            )
        else:
            (name,) = names
            assert outcomes[0] in ("matched", "matched_with_differences"), by_file[name]
            assert by_file[name]["ledger_invoice_number"] == number
    unscanned = {r["ledger_invoice_number"] for r in records if r["outcome"] == "no_invoice_scanned"}
    assert unscanned == unscanned_numbers
    assert main(["query", "--status", "not_in_ledger", "--format", "json", "--store", str(store)]) == 0
    listed = [r["source_name"] for r in json.loads(capsys.readouterr().out)]
    assert listed == (["vat_general_degraded.jpg"] if "vat_general_degraded.jpg" in stored else [])


def test_csv_report_defuses_formulas(tmp_path: Path) -> None:
    from pipeline.reconcile.report import write_csv

    row = LedgerRow(
        row_number=2, invoice_number="12345678", total_amount=Decimal("-5.00"), seller_name='=HYPERLINK("x")'
    )
    path = write_csv(tmp_path / "r.csv", reconcile([], [row]))
    with path.open(encoding="utf-8-sig") as handle:
        (record,) = list(csv.DictReader(handle))
    assert record["ledger_seller_name"] == '\'=HYPERLINK("x")'
    assert record["ledger_total_amount"] == "-5.00"  # a negative amount stays a number
