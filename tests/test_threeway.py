"""Three-way reconciliation: held invoices, the ledger and the tax platform's exports.

The platform's lists are generated with injected faults (tests/platform_exports.py) and written as
real-looking files; precision and recall per outcome must be at least 0.99.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipeline.cli import main
from pipeline.extract.remarks import extract_remarks, red_letter_reference, remarks_field
from pipeline.model import FieldSource, FieldStatus, TextLine
from pipeline.reconcile import InvoiceRecord
from pipeline.reconcile.platform import (
    PlatformError,
    PlatformInvoice,
    PlatformStatus,
    is_high_risk,
    merge_platform,
    parse_status,
    read_platform,
)
from pipeline.reconcile.sources import LedgerRow
from pipeline.reconcile.threeway import LineOutcome, reconcile_three_way
from tests.platform_exports import (
    FULL_HEADERS,
    line_truth,
    make_scenario,
    precision_recall,
    write_exports,
    write_ledger_csv,
)


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("platform")
    scenario = make_scenario(1000)
    return scenario, write_exports(scenario, folder)


def test_precision_and_recall_per_outcome(scenario_files, capsys: pytest.CaptureFixture[str]) -> None:
    scenario, exports = scenario_files
    imports = [read_platform(path) for path in exports.paths]
    result = reconcile_three_way(scenario.held, scenario.ledger, merge_platform(imports))
    scores = precision_recall(line_truth(scenario, result.lines))
    with capsys.disabled():
        print("\noutcome                      precision  recall  support")
        for outcome, (precision, recall, support) in scores.items():
            print(f"{outcome:28s} {precision:9.3f} {recall:7.3f} {support:8d}")
    assert "(unknown line)" not in scores
    expected = {
        "not_on_platform", "platform_only", "voided_but_booked", "red_reversed_but_booked", "abnormal_but_booked",
        "platform_differs", "high_risk", "deducted_not_booked", "booked_twice", "not_in_ledger",
        "no_invoice_scanned", "matched",
    }  # fmt: skip
    assert expected <= set(scores)
    for outcome, (precision, recall, support) in scores.items():
        assert support > 0 or precision == 1.0, outcome
        assert precision >= 0.99 and recall >= 0.99, (outcome, precision, recall)


def test_the_three_formats_are_recognised_and_bad_rows_listed(scenario_files) -> None:
    scenario, exports = scenario_files
    full, deduction, legacy = (read_platform(path) for path in exports.paths)
    assert (full.format, deduction.format, legacy.format) == ("full_list", "deduction", "deduction_legacy")
    assert full.header_row == 2 and full.sheet == "发票基础信息"  # a title row above the header
    assert (deduction.encoding, legacy.encoding) == ("gbk", "utf-8-sig")
    assert full.item_lines == len(full.invoices) and all(inv.items for inv in full.invoices)
    # the totals row is skipped, the bad rows listed with their row numbers; the run goes on
    totals = [p for p in full.problems if "totals" in p.message]
    assert totals and totals[0].row_number == exports.bad_rows["full"][0] + 1
    for imported, key in ((full, "full"), (deduction, "deduction"), (legacy, "legacy")):
        rows = {p.row_number for p in imported.problems if p.skipped}
        assert set(exports.bad_rows[key]) <= rows, (key, imported.problems)
    assert any(
        p.row_number == exports.bad_rows["deduction"][0] and "一百" in p.value for p in deduction.problems
    )
    # 数电 numbers read from 数电发票号码, the older list's status codes decoded
    assert all(len(inv.invoice_number or "") == 20 for inv in deduction.invoices if not inv.invoice_code)
    assert {inv.status for inv in legacy.invoices} >= {PlatformStatus.NORMAL, PlatformStatus.VOIDED}
    on_platform = [inv for inv in scenario.invoices if inv.on_platform]
    assert len(merge_platform([full, deduction, legacy])) == len(on_platform)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("正常", PlatformStatus.NORMAL),
        ("", PlatformStatus.NORMAL),
        ("已作废", PlatformStatus.VOIDED),
        ("已红冲", PlatformStatus.RED_REVERSED),
        ("全额红冲", PlatformStatus.RED_REVERSED),
        ("部分红冲", PlatformStatus.PARTLY_RED_REVERSED),
        ("失控", PlatformStatus.OUT_OF_CONTROL),
        ("异常", PlatformStatus.ABNORMAL),
        ("0", PlatformStatus.NORMAL),
        ("1", PlatformStatus.OUT_OF_CONTROL),
        ("2", PlatformStatus.VOIDED),
        ("3-红冲", PlatformStatus.RED_REVERSED),
        ("4", PlatformStatus.ABNORMAL),
        ("待定", None),
    ],
)
def test_platform_status(text: str, status: PlatformStatus | None) -> None:
    assert parse_status(text) == status


def test_risk_levels() -> None:
    assert is_high_risk("高风险") and is_high_risk("疑点发票")
    assert not is_high_risk("正常") and not is_high_risk("低风险") and not is_high_risk(None)


def _line(text: str, x0: float, y0: float, x1: float, y1: float) -> TextLine:
    return TextLine(text, 0.6, ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


def test_remarks_beside_a_vertical_label_and_the_red_letter_reference() -> None:
    lines = [
        _line("价税合计（大写）", 10, 400, 100, 420),
        _line("备", 500, 430, 515, 445),
        _line("注", 500, 455, 515, 470),
        _line("对应正数发票代码:011002400111号码:12345678", 530, 432, 800, 448),
        _line("开票人：张三", 10, 500, 100, 515),
    ]
    hit = extract_remarks(lines)
    assert hit is not None and hit.text == "对应正数发票代码:011002400111号码:12345678"
    field = remarks_field(lines, FieldSource.OCR)
    # informational: a weak read (0.6) never sends the invoice to review
    assert field.status == FieldStatus.OK and field.source == FieldSource.DERIVED
    found = red_letter_reference(hit.text)
    assert found is not None and (found.invoice_code, found.invoice_number) == ("011002400111", "12345678")
    digital = red_letter_reference(
        "被红冲蓝字数电发票号码：24112000000000123456 红字发票信息确认单编号：1100240000000001"
    )
    assert digital is not None and digital.invoice_code is None
    assert (digital.invoice_number, digital.confirmation_number) == (
        "24112000000000123456",
        "1100240000000001",
    )
    assert red_letter_reference("对应正数发票代码 0110 0240 0111 号码 1234 5678") is not None  # OCR spacing
    assert red_letter_reference("项目：软件服务") is None
    assert extract_remarks([_line("开票人：张三", 10, 500, 100, 515)]) is None


def _blue_and_reds() -> tuple[list[InvoiceRecord], list[LedgerRow], list[PlatformInvoice]]:
    blue = dict(invoice_code="011002400111", invoice_number="12345678", issue_date=date(2024, 3, 1))
    amounts = dict(
        amount_excl_tax=Decimal("1000.00"), tax_amount=Decimal("130.00"), total_amount=Decimal("1130.00")
    )
    seller = dict(seller_name="北京智源科技有限公司", seller_tax_id="91110108MA01ABCD0X")
    held = [InvoiceRecord("a" * 64, "blue.jpg", **blue, **amounts, **seller)]  # type: ignore[arg-type]
    ledger = [LedgerRow(2, **blue, **amounts, **seller)]  # type: ignore[arg-type]
    remark = "对应正数发票代码:011002400111号码:12345678"
    platform = [
        PlatformInvoice("全量.xlsx", 2, "full_list", **blue, **amounts, **seller, status=PlatformStatus.PARTLY_RED_REVERSED),  # type: ignore[arg-type]
        PlatformInvoice(
            "全量.xlsx", 3, "full_list", invoice_code="011002400111", invoice_number="20000001",
            issue_date=date(2024, 3, 5), amount_excl_tax=Decimal("-300.00"), tax_amount=Decimal("-39.00"),
            total_amount=Decimal("-339.00"), positive=False, remarks=remark, **seller,  # type: ignore[arg-type]
        ),
        PlatformInvoice(
            "全量.xlsx", 4, "full_list", invoice_code="011002400111", invoice_number="20000002",
            issue_date=date(2024, 3, 9), amount_excl_tax=Decimal("-200.00"), tax_amount=Decimal("-26.00"),
            total_amount=Decimal("-226.00"), positive=False, remarks=remark, **seller,  # type: ignore[arg-type]
        ),
    ]  # fmt: skip
    return held, ledger, platform


def test_partial_reversals_are_netted_by_their_running_sum() -> None:
    held, ledger, platform = _blue_and_reds()
    result = reconcile_three_way(held, ledger, platform)
    blue = next(line for line in result.lines if line.invoice is not None)
    assert blue.outcome == LineOutcome.RED_REVERSED_BUT_BOOKED
    assert blue.reversal is not None and blue.reversal.reversed_amount == Decimal("565.00")
    assert blue.reversal.remaining == Decimal("565.00")
    running = [(red.label, total, left) for red, total, left in blue.reversal.running()]
    assert running == [
        ("011002400111/20000001", Decimal("339.00"), Decimal("791.00")),
        ("011002400111/20000002", Decimal("565.00"), Decimal("565.00")),
    ]
    assert "partly reversed: 565.00 of 1130.00, 565.00 remains" in blue.reason_en
    assert "部分红冲 565.00" in blue.reason_zh and "剩余 565.00" in blue.reason_zh
    reds = [line for line in result.lines if line.platform and line.platform.is_red]
    assert {line.outcome for line in reds} == {LineOutcome.PLATFORM_ONLY}
    assert all(line.reverses == "011002400111/12345678" for line in reds)

    # booking the red invoices offsets the reversal: the blue invoice is then in order
    booked_reds = [
        LedgerRow(3 + k, p.invoice_code, p.invoice_number, p.issue_date, p.amount_excl_tax, p.tax_amount,
                  p.total_amount, p.seller_name, p.seller_tax_id)
        for k, p in enumerate(platform[1:])
    ]  # fmt: skip
    settled = reconcile_three_way(held, ledger + booked_reds, platform)
    blue = next(line for line in settled.lines if line.invoice is not None)
    assert blue.outcome == LineOutcome.MATCHED and blue.reversal is not None
    assert {line.outcome for line in settled.lines if line.invoice is None} == {
        LineOutcome.NO_INVOICE_SCANNED
    }


def test_a_scanned_red_invoice_names_its_blue_one_by_its_remarks() -> None:
    held, ledger, _platform = _blue_and_reds()
    red = InvoiceRecord(
        "b" * 64, "red.jpg", invoice_code="011002400111", invoice_number="20000009", issue_date=date(2024, 3, 6),
        amount_excl_tax=Decimal("-1000.00"), tax_amount=Decimal("-130.00"), total_amount=Decimal("-1130.00"),
        seller_name="北京智源科技有限公司", remarks="备注：对应正数发票代码:011002400111 号码:12345678",
    )  # fmt: skip
    result = reconcile_three_way([*held, red], ledger, None)
    blue = next(line for line in result.lines if line.invoice is held[0])
    assert blue.outcome == LineOutcome.RED_REVERSED_BUT_BOOKED
    assert blue.reversal is not None and blue.reversal.full(Decimal("0.01"))
    assert "fully reversed (1130.00) by red invoice(s) 011002400111/20000009" in blue.reason_en
    # OCR lost the minus sign: the remarks still make it a red-letter invoice
    unsigned = replace(
        red, amount_excl_tax=Decimal("1000.00"), tax_amount=Decimal("130.00"), total_amount=Decimal("1130.00")
    )
    result = reconcile_three_way([*held, unsigned], ledger, None)
    assert (
        next(line for line in result.lines if line.invoice is held[0]).outcome
        == LineOutcome.RED_REVERSED_BUT_BOOKED
    )
    # the XML's OriginalInvoiceCode / OriginalInvoiceNo link the same way
    xml_red = InvoiceRecord(
        "c" * 64, "red.xml", invoice_number="24112000000000000009", issue_date=date(2024, 3, 6),
        total_amount=Decimal("-1130.00"), original_invoice_code="011002400111", original_invoice_number="12345678",
    )  # fmt: skip
    result = reconcile_three_way([*held, xml_red], ledger, None)
    assert next(line for line in result.lines if line.invoice is held[0]).reversal is not None


def test_not_on_platform_only_inside_the_exports_dates() -> None:
    held, _ledger, platform = _blue_and_reds()
    later = InvoiceRecord("d" * 64, "later.jpg", invoice_code="011002400111", invoice_number="77777777",
                          issue_date=date(2024, 9, 1), total_amount=Decimal("50.00"))  # fmt: skip
    inside = InvoiceRecord("e" * 64, "inside.jpg", invoice_code="011002400111", invoice_number="77777778",
                           issue_date=date(2024, 3, 3), total_amount=Decimal("60.00"))  # fmt: skip
    result = reconcile_three_way([*held, later, inside], None, platform)  # dates 2024-03-01 to 03-09
    by_name = {line.invoice.source_name: line for line in result.lines if line.invoice}
    assert by_name["inside.jpg"].outcome == LineOutcome.NOT_ON_PLATFORM
    assert "税务平台查无此票" in by_name["inside.jpg"].reason_zh
    assert by_name["later.jpg"].outcome == LineOutcome.MATCHED and not by_name["later.jpg"].platform_judged
    assert "outside the dates" in by_name["later.jpg"].reason_en


# ---- unusable files --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["empty", "whitespace", "png", "no columns", "headers only"])
def test_unusable_exports_stop_with_one_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / ("全量发票查询.xlsx" if case == "png" else "平台.csv")
    content = {
        "empty": b"",
        "whitespace": b"  \n\n",
        "png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        "no columns": "名称,地址\n甲,乙\n".encode(),
        "headers only": (",".join(FULL_HEADERS) + "\n").encode("gbk"),
    }[case]
    path.write_bytes(content)
    with pytest.raises(PlatformError) as caught:
        read_platform(path)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2
    code = main(
        [
            "reconcile",
            "--tax-platform",
            str(path),
            "--store",
            str(tmp_path / "s"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "tax-platform export" in err[0], err


# ---- the command, end to end ------------------------------------------------------------------------------


def _store_scenario(root: Path, held: list[InvoiceRecord], index: str | None = None) -> None:
    from pipeline.model import DocType, Field, InvoiceResult, PageInfo
    from pipeline.store import open_store

    store = open_store(str(root), index=index)
    for k, inv in enumerate(held):
        values = {
            name: str(getattr(inv, name))
            for name in ("invoice_code", "invoice_number", "issue_date", "seller_name", "seller_tax_id",
                         "buyer_name", "amount_excl_tax", "tax_amount", "total_amount")
            if getattr(inv, name) is not None
        }  # fmt: skip
        fields = {name: Field(value, 0.99, FieldStatus.OK, FieldSource.OCR) for name, value in values.items()}
        result = InvoiceResult(
            inv.document_id,
            inv.source_name,
            DocType.VAT_SPECIAL_PAPER,
            fields,
            pages=[PageInfo(0, 10, 10, "ocr")],
        )
        store.save(
            f"original {k}".encode(), inv.source_name, result, [(0, b"\x89PNG\r\n\x1a\n" + bytes([k % 256]))]
        )
    store.close()


def test_cli_three_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], index_location: str | None
) -> None:
    """End to end on each index backend: the same outcomes (the scenario's truth) on SQLite and PostgreSQL."""
    scenario = make_scenario(120, seed=3)
    exports = write_exports(scenario, tmp_path)
    ledger = write_ledger_csv(scenario, tmp_path / "erp.csv")
    root = tmp_path / "store"
    _store_scenario(root, scenario.held, index_location)
    out = tmp_path / "report"
    where = ["--store", str(root), *(["--index", index_location] if index_location else [])]
    args = ["reconcile", "--ledger", str(ledger), *where, "--out", str(out)]
    for path in exports.paths:
        args += ["--tax-platform", str(path)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "tax platform: 全量发票查询.xlsx (全量发票查询" in printed and "not_on_platform" in printed
    assert re.search(r"row \d+: a totals row: skipped", printed)

    with (out / "reconciliation.csv").open(encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    expected = dict(line_truth_by_number(scenario))
    found = {r["invoice_number"]: r["outcome"] for r in records if r["invoice_number"] in expected}
    wrong = {n: (expected[n], f) for n, f in found.items() if expected[n] != f}
    assert not wrong
    red = next(r for r in records if r["outcome"] == "red_reversed_but_booked")
    assert red["reversed_amount"] and red["platform_status"]
    workbook = openpyxl.load_workbook(out / "reconciliation.xlsx", read_only=True)
    assert workbook.sheetnames[0] == "Summary 汇总" and "not_on_platform" in workbook.sheetnames
    summary = [row for row in workbook["Summary 汇总"].iter_rows(values_only=True)]
    assert tuple(next(r for r in summary if r[0] == "platform_only")[:2]) == (
        "platform_only",
        "only on the platform",
    )
    page = (out / "reconciliation.html").read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page
    hrefs = re.findall(r'href="([^"#][^"]*)"', page)
    assert len(hrefs) == len(scenario.held) and all((out / h).resolve().is_file() for h in hrefs)
    assert (out / "import-problems.csv").read_text(encoding="utf-8-sig").count("\n") > 3

    # the index answers: query --outcome / --platform-status
    assert main(["query", "--outcome", "not_on_platform", "--format", "json", *where]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed and {row["outcome"] for row in listed} == {"not_on_platform"}
    assert len(listed) == sum(1 for inv in scenario.invoices if scenario.truth(inv) == "not_on_platform")
    assert main(["query", "--platform-status", "voided", "--format", "json", *where]) == 0
    voided = json.loads(capsys.readouterr().out)
    assert voided and all(row["platform_status"] == "voided" for row in voided)
    assert main(["query", "--outcome", "platform_only", *where]) == 0
    assert "platform_only" in capsys.readouterr().out

    # the platform alone, no ledger
    assert main(["reconcile", "--tax-platform", str(exports.full), *where, "--out", str(out), "-q"]) == 0
    assert main(["reconcile", *where]) == 2  # neither source


def line_truth_by_number(scenario) -> list[tuple[str, str]]:
    return [(inv.number, scenario.truth(inv)) for inv in scenario.invoices]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "remarks"),
    [
        ("vat_special_clean.png", "合同编号：HT202195041"),  # paper: the label between seller and remarks
        ("fully_digital_general.pdf", "合同编号：HT202434654"),  # 全电: the label at the far left
        ("vat_e_general.pdf", None),  # an empty remarks box
    ],
)
def test_remarks_read_by_real_ocr(name: str, remarks: str | None, tmp_path: Path) -> None:
    from pipeline.config import Settings
    from pipeline.process import process_document

    path = Path(__file__).parent.parent / "samples" / name
    result = process_document(path.read_bytes(), name, Settings(engine="onnx", store=str(tmp_path))).result
    found = result.fields.get("remarks")
    assert (found.value if found else None) == remarks
    if remarks:  # informational: never a reason for review
        assert found is not None and found.status == FieldStatus.OK and found.source == FieldSource.DERIVED


def test_several_ledgers_and_an_export_with_odd_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held, _ledger, _platform = _blue_and_reds()
    root = tmp_path / "store"
    _store_scenario(root, held)
    header = "发票代码,发票号码,开票日期,金额,税额,价税合计,销售方名称\n"
    first = tmp_path / "erp-1.csv"
    first.write_text(
        header + "011002400111,12345678,2024-03-01,1000.00,130.00,1130.00,北京智源科技有限公司\n", "gbk"
    )
    second = tmp_path / "erp-2.csv"
    second.write_text(
        header + "011002400111,12345678,2024-03-01,1000.00,130.00,1130.00,北京智源科技有限公司\n", "gbk"
    )
    export = tmp_path / "平台.csv"
    export.write_text(
        "代码,票号,日期,不含税,税,合计,卖方,状况\n011002400111,12345678,2024-03-01,1000.00,130.00,1130.00,北京智源科技有限公司,失控\n",
        "utf-8-sig",
    )
    maps = ["代码=invoice_code", "票号=invoice_number", "日期=issue_date", "不含税=amount_excl_tax", "税=tax_amount",
            "合计=total_amount", "卖方=seller_name", "状况=status"]  # fmt: skip
    args = ["reconcile", "--ledger", str(first), "--ledger", str(second), "--tax-platform", str(export)]
    args += [arg for pair in maps for arg in ("--platform-map", pair)]
    assert main([*args, "--store", str(root), "--out", str(tmp_path / "out"), "-q"]) == 0
    from pipeline.reconcile.tables import load_lines

    lines = load_lines(root / "index.sqlite")
    # the second file's row 2 is row 1000002: booked twice, and 失控 on the platform
    assert sorted(line["ledger_row"] for line in lines) == [2, 1_000_002]
    invoice = next(line for line in lines if line["document_id"])
    assert invoice["outcome"] == "abnormal_but_booked" and "booked_twice" in invoice["also"].split(",")
    assert invoice["platform_status"] == "out_of_control"
    assert main(["query", "--outcome", "booked_twice", "--format", "json", "--store", str(root)]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert (
        main(
            [
                "reconcile",
                "--tax-platform",
                str(export),
                "--platform-map",
                "状况=colour",
                "--store",
                str(root),
            ]
        )
        == 2
    )
