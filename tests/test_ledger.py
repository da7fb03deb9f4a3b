"""Ledger import: encodings, delimiters, XLSX, header recognition, mappings, bad rows and bad files."""

from __future__ import annotations

import json
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from pipeline.cli import main
from pipeline.reconcile.sources import (
    EmptyLedger,
    LedgerError,
    LedgerMapping,
    NoLedgerColumns,
    NotASpreadsheet,
    detect_columns,
    parse_ledger_date,
    read_ledger,
    repair_mojibake,
)

ZH_HEADER = "发票代码,发票号码,开票日期,金额,税额,价税合计,销售方名称,销售方纳税人识别号,购买方名称"
ZH_ROWS = [
    "011002400111,12345678,2024-01-05,100.00,13.00,113.00,金桥（北京）建筑工程有限责任公司,91110115MA56E82N05,"
    "北京长城软件有限公司",
    '011002400111,12345679,2024/1/6,"1,000.00",130.00,"1,130.00",𠀾北京物流有限公司,91110108MAUJFMDA5F,'
    "北京长城软件有限公司",
]


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ---- encodings and delimiters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gb18030", "gb18030"), ("utf-16", "utf-16")],
)
def test_encodings_detected(tmp_path: Path, encoding: str, detected: str) -> None:
    # 𠀾 is outside GBK: only GB18030 (and Unicode) can hold it, so GB18030 must be told from GBK
    path = write(tmp_path / "ledger.csv", "\n".join([ZH_HEADER, *ZH_ROWS]) + "\n", encoding)
    ledger = read_ledger(path)
    assert ledger.encoding == detected
    assert [row.seller_name for row in ledger.rows] == [
        "金桥（北京）建筑工程有限责任公司",
        "𠀾北京物流有限公司",
    ]
    second = ledger.rows[1]
    assert second.row_number == 3
    assert second.amount_excl_tax == Decimal("1000.00") and second.total_amount == Decimal("1130.00")
    assert second.issue_date == date(2024, 1, 6)
    assert ledger.problems == []


def test_gbk(tmp_path: Path) -> None:
    path = write(tmp_path / "ledger.csv", "\n".join([ZH_HEADER, ZH_ROWS[0]]), "gbk")
    ledger = read_ledger(path)
    assert ledger.encoding == "gbk"
    assert ledger.rows[0].seller_name == "金桥（北京）建筑工程有限责任公司"


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    lines = ["Invoice No;Date;Vendor;Net;Tax;Total", "INV-001;2024-03-01;Acme Co., Ltd.;100.00;13.00;113.00"]
    path = write(tmp_path / "ledger.csv", "\n".join(line.replace(";", delimiter) for line in lines))
    (row,) = read_ledger(path).rows
    assert row.invoice_number == "INV-001"
    assert row.seller_name == "Acme Co., Ltd."
    assert (row.amount_excl_tax, row.tax_amount, row.total_amount) == (
        Decimal("100.00"),
        Decimal("13.00"),
        Decimal("113.00"),
    )


# ---- headers -------------------------------------------------------------------------------------------


def test_header_detection_chinese_and_english() -> None:
    zh = [
        "序号",
        "发票代码",
        "发票号码",
        "开票日期",
        "金额(元)",
        "税额（元）",
        "价税合计",
        "销方名称",
        "销方税号",
    ]
    assert detect_columns(zh) == {
        "invoice_code": 1,
        "invoice_number": 2,
        "issue_date": 3,
        "amount_excl_tax": 4,
        "tax_amount": 5,
        "total_amount": 6,
        "seller_name": 7,
        "seller_tax_id": 8,
    }
    en = ["Invoice No.", "Invoice Date", "Vendor Name", "Vendor Tax ID", "Net Amount", "VAT", "Total (CNY)"]
    assert detect_columns(en) == {
        "invoice_number": 0,
        "issue_date": 1,
        "seller_name": 2,
        "seller_tax_id": 3,
        "amount_excl_tax": 4,
        "tax_amount": 5,
        "total_amount": 6,
    }
    # "Amount" is the total unless there is a separate total column
    assert detect_columns(["Invoice #", "Amount"]) == {"invoice_number": 0, "total_amount": 1}
    assert detect_columns(["Invoice #", "Amount", "Total"])["amount_excl_tax"] == 1
    # generic words inside other headers are not taken: a voucher number is not the invoice number
    assert "invoice_number" not in detect_columns(["凭证号码", "供应商代码", "摘要"])


def test_title_rows_above_the_header(tmp_path: Path) -> None:
    text = "2024年1月进项发票台账\n编制单位：北京长城软件有限公司,,,\n\n" + "\n".join([ZH_HEADER, ZH_ROWS[0]])
    ledger = read_ledger(write(tmp_path / "ledger.csv", text))
    assert ledger.header_row == 4
    assert ledger.rows[0].row_number == 5
    assert ledger.rows[0].invoice_number == "12345678"


# ---- XLSX ----------------------------------------------------------------------------------------------


def test_xlsx_typed_cells_and_second_sheet(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    cover = workbook.active
    assert cover is not None
    cover.title = "说明"
    cover.append(["本文件由财务系统导出"])
    sheet = workbook.create_sheet("台账")
    sheet.append(["进项发票台账"])
    sheet.append(["发票代码", "发票号码", "开票日期", "税额", "价税合计", "销售方名称"])
    sheet.append([11002400111, 345678, datetime(2024, 2, 3), 13.5, 113.5, "金桥建筑有限公司"])  # numbers
    sheet.append(["011002400111", 2.4442e19, "2024-02-04", 13, "abc", "长城软件有限公司"])
    sheet.append([None, None, None, None, None, None])
    sheet.append(["合计", None, None, 26.5, 113.5, None])
    path = tmp_path / "ledger.xlsx"
    workbook.save(path)
    ledger = read_ledger(path)
    assert ledger.format == "xlsx" and ledger.sheet == "台账" and ledger.header_row == 2
    first, second = ledger.rows
    # Excel dropped the leading zeros of a number cell: the code has 12 digits, the number 8
    assert (first.invoice_code, first.invoice_number) == ("011002400111", "00345678")
    assert first.issue_date == date(2024, 2, 3)
    assert first.total_amount == Decimal("113.50")
    assert second.invoice_number is None and second.total_amount is None
    assert second.tax_amount == Decimal("13.00") and second.issue_date == date(2024, 2, 4)
    problems = {(p.row_number, p.field): p for p in ledger.problems}
    assert "lost digits" in problems[(4, "invoice_number")].message
    assert "abc" in problems[(4, "total_amount")].message
    assert problems[(6, None)].skipped and "totals row" in problems[(6, None)].message
    # the sheet can be chosen, and a missing sheet is named
    assert read_ledger(path, LedgerMapping(sheet="台账")).rows == ledger.rows
    with pytest.raises(LedgerError, match="no sheet named"):
        read_ledger(path, LedgerMapping(sheet="2025"))


# ---- rows and values -----------------------------------------------------------------------------------


def test_bad_rows_are_reported_and_never_stop_the_import(tmp_path: Path) -> None:
    text = "\n".join(
        [
            ZH_HEADER,
            ZH_ROWS[0],
            "011002400111,1.23457E+07,2024-13-45,1OO.00,***,113.00,某公司,,",  # row 3: three bad cells
            ",,,,,,,,",  # row 4: blank, silently skipped
            "备注：以下为手工补录,,,,,,,,",  # row 5: no number and no amount
            "合计,,,100.00,13.00,113.00,,,",  # row 6: totals
            "011002400111,12345680,2024-01-07,100.00,13.00,120.00,某公司,,",  # row 7: 100 + 13 != 120
            ZH_ROWS[1],
        ]
    )
    ledger = read_ledger(write(tmp_path / "ledger.csv", text))
    assert [row.row_number for row in ledger.rows] == [2, 3, 7, 8]
    bad = ledger.rows[1]
    assert bad.invoice_number is None and bad.issue_date is None and bad.amount_excl_tax is None
    assert bad.tax_amount == Decimal("0.00")  # *** on a fapiao means exempt
    assert bad.total_amount == Decimal("113.00")
    found = sorted((p.row_number, p.field or "", p.skipped) for p in ledger.problems)
    assert found == [
        (3, "amount_excl_tax", False),
        (3, "invoice_number", False),
        (3, "issue_date", False),
        (5, "", True),
        (6, "", True),
        (7, "total_amount", False),
    ]
    assert all(p.message and p.message_zh for p in ledger.problems)
    assert "scientific notation" in next(p.message for p in ledger.problems if p.field == "invoice_number")


def test_dates() -> None:
    assert parse_ledger_date("2024-01-05") == date(2024, 1, 5)
    assert parse_ledger_date("2024/1/5 00:00:00") == date(2024, 1, 5)
    assert parse_ledger_date("2024年1月5日") == date(2024, 1, 5)
    assert parse_ledger_date("20240105") == date(2024, 1, 5)
    assert parse_ledger_date("45296") == date(2024, 1, 5)  # an Excel serial exported as text
    assert parse_ledger_date(45296) == date(2024, 1, 5)
    assert parse_ledger_date("5 Jan 2024") == date(2024, 1, 5)
    assert parse_ledger_date("05/01/2024", day_first=True) == date(2024, 1, 5)
    assert parse_ledger_date("05/01/2024", day_first=False) == date(2024, 5, 1)
    assert parse_ledger_date("05.01.24", date_format="%d.%m.%y") == date(2024, 1, 5)
    assert parse_ledger_date("2024-02-30") is None
    assert parse_ledger_date("soon") is None


def test_day_month_order_is_taken_from_the_column(tmp_path: Path) -> None:
    month_first = "Invoice No,Date,Total\nA1,01/13/2024,1.00\nA2,02/03/2024,2.00\n"
    rows = read_ledger(write(tmp_path / "us.csv", month_first)).rows
    assert [r.issue_date for r in rows] == [date(2024, 1, 13), date(2024, 2, 3)]
    ambiguous = read_ledger(write(tmp_path / "amb.csv", "Invoice No,Date,Total\nA1,02/03/2024,2.00\n"))
    assert ambiguous.rows[0].issue_date == date(2024, 3, 2)
    assert any("ambiguous" in p.message for p in ambiguous.problems)


def test_mojibake_is_repaired(tmp_path: Path) -> None:
    garbled = "金桥建筑工程有限公司".encode("gbk").decode("latin-1")
    assert repair_mojibake(garbled) == "金桥建筑工程有限公司"
    assert repair_mojibake("北京长城软件有限公司".encode().decode("latin-1")) == "北京长城软件有限公司"
    assert repair_mojibake("Café Müller GmbH") is None
    assert repair_mojibake("北京长城软件有限公司") is None
    ledger = read_ledger(
        write(tmp_path / "l.csv", f"发票号码,价税合计,销售方名称\n12345678,1.00,{garbled}\n")
    )
    assert ledger.rows[0].seller_name == "金桥建筑工程有限公司"
    assert "wrong encoding" in ledger.problems[0].message


# ---- mappings ------------------------------------------------------------------------------------------


ERP = "单据号,供应商,开票时间,含税金额\nFP-0001,金桥建筑有限公司,2024-05-06,99.50\n"


def test_mapping_flags(tmp_path: Path) -> None:
    path = write(tmp_path / "erp.csv", ERP)
    mapping = LedgerMapping.from_pairs(["单据号=invoice_number", "开票时间=issue_date"])
    (row,) = read_ledger(path, mapping).rows
    assert row.invoice_number == "FP-0001"
    assert row.issue_date == date(2024, 5, 6)
    assert row.seller_name == "金桥建筑有限公司"  # 供应商 still recognised on its own
    assert row.total_amount == Decimal("99.50")


@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_mapping_file(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path / "erp.csv", "导出日期 2024-06-01\n" + ERP.replace("2024-05-06", "06/05/2024"))
    columns = {"单据号": "invoice_number", "开票时间": "issue_date"}
    if suffix == ".json":
        text = json.dumps(
            {"header_row": 2, "date_format": "%d/%m/%Y", "columns": columns}, ensure_ascii=False
        )
    else:
        text = 'header_row = 2\ndate_format = "%d/%m/%Y"\n[columns]\n' + "".join(
            f'"{k}" = "{v}"\n' for k, v in columns.items()
        )
    mapping = LedgerMapping.from_file(write(tmp_path / f"map{suffix}", text))
    (row,) = read_ledger(path, mapping).rows
    assert (row.invoice_number, row.issue_date) == ("FP-0001", date(2024, 5, 6))


def test_mapping_mistakes(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="unknown ledger field"):
        LedgerMapping.from_pairs(["单据号=invoice_no"])
    with pytest.raises(LedgerError, match="COLUMN=FIELD"):
        LedgerMapping.from_pairs(["单据号"])
    with pytest.raises(NoLedgerColumns, match=r"发票编号.*not found.*单据号"):
        read_ledger(write(tmp_path / "erp.csv", ERP), LedgerMapping.from_pairs(["发票编号=invoice_number"]))
    with pytest.raises(LedgerError, match="not valid"):
        LedgerMapping.from_file(write(tmp_path / "bad.json", "{columns: "))


# ---- files that are not ledgers ------------------------------------------------------------------------


def _xlsx_bytes(tmp_path: Path, rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(tmp_path / "tmp.xlsx")
    return (tmp_path / "tmp.xlsx").read_bytes()


def _zip_bytes(tmp_path: Path) -> bytes:
    with zipfile.ZipFile(tmp_path / "x.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    return (tmp_path / "x.zip").read_bytes()


BAD_FILES = {
    "empty": (lambda tmp: b"", EmptyLedger, "is empty"),
    "blank lines": (lambda tmp: b"\n \r\n\t\n", EmptyLedger, "is empty"),
    "header only": (lambda tmp: ZH_HEADER.encode() + b"\n", EmptyLedger, "no data rows"),
    "empty xlsx": (lambda tmp: _xlsx_bytes(tmp, []), EmptyLedger, "is empty"),
    "no columns": (
        lambda tmp: b"name,colour,size\napple,red,3\n",
        NoLedgerColumns,
        r"no recognisable columns.*found name, colour, size; expected .*发票号码/Invoice No",
    ),
    "no columns xlsx": (lambda tmp: _xlsx_bytes(tmp, [["a", "b"], [1, 2]]), NoLedgerColumns, "found a, b"),
    "pdf": (lambda tmp: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", NotASpreadsheet, "is a PDF"),
    "png": (lambda tmp: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", NotASpreadsheet, "is a PNG image"),
    "binary": (lambda tmp: bytes(range(256)) * 8, NotASpreadsheet, "binary file"),
    "zip": (_zip_bytes, NotASpreadsheet, "ZIP archive, not an Excel workbook"),
    "xls": (lambda tmp: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512, NotASpreadsheet, r"\.xls"),
    "damaged xlsx": (
        lambda tmp: _xlsx_bytes(tmp, [["发票号码"], [1]])[:400],
        NotASpreadsheet,
        "damaged|cannot",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_unusable_files_raise_one_clear_error(tmp_path: Path, case: str) -> None:
    make, error, message = BAD_FILES[case]
    path = tmp_path / "ledger.csv"
    path.write_bytes(make(tmp_path))
    with pytest.raises(error, match=message) as caught:
        read_ledger(path)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("case", ["empty", "no columns", "pdf"])
def test_unusable_files_exit_2_from_the_cli(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    make, _, _ = BAD_FILES[case]
    path = tmp_path / "ledger.csv"
    path.write_bytes(make(tmp_path))
    code = main(
        ["reconcile", "--ledger", str(path), "--store", str(tmp_path / "store"), "--out", str(tmp_path)]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "ledger ledger.csv" in err[0]


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot read ledger"):
        read_ledger(tmp_path / "nope.csv")
    with pytest.raises(LedgerError, match="is a folder"):
        read_ledger(tmp_path)
