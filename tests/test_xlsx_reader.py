"""The XLSX reader of the sheets' XML gives what openpyxl's read-only mode gives, and leaves to
openpyxl what it does not read."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

import openpyxl
import pytest

from pipeline.reconcile.records import LedgerError
from pipeline.reconcile.spreadsheets import _openpyxl_sheets, _xlsx_sheets
from pipeline.reconcile.xlsx import UnreadableXlsx, xlsx_sheets


def _workbook() -> bytes:
    workbook = openpyxl.Workbook()  # not write-only: it writes a dimension, openpyxl pads to it
    sheet = workbook.active
    sheet.title = "发票"
    sheet["A1"] = "全量发票查询 <导出> & 汇总"
    sheet.append(["发票号码", "开票日期", "金额", "是否正数发票", "备注", "税率"])
    sheet.append(["24112000000000000001", datetime(2024, 5, 6), 1234.5, True, None, 0.13])
    sheet.append(["24112000000000000002", date(2024, 12, 31), -88, False, "对应正数发票代码:X号码:Y", "13%"])
    sheet.append([])  # a gap
    sheet.append(["24112000000000000003", "2024/01/02", 10, None, '="text"', 1e-7])
    sheet["C7"].number_format = "0.00"
    sheet["H9"] = "far away"
    items = workbook.create_sheet("明细")
    items.append(["数电发票号码", "货物或应税劳务名称", "金额"])
    items.append(["24112000000000000001", "*信息技术服务*软件维护", 1234.5])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_same_values_as_openpyxl() -> None:
    data = _workbook()
    expected = [
        (title, [list(row) for row in rows]) for title, rows in _openpyxl_sheets(data, "t.xlsx", None)
    ]
    got = list(xlsx_sheets(data))
    assert got == expected
    assert got[0][1][2][1] == datetime(2024, 5, 6) and got[0][1][2][2] == 1234.5
    assert [title for title, _ in xlsx_sheets(data, "明细")] == ["明细"]


def test_what_it_does_not_read_goes_to_openpyxl() -> None:
    data = _workbook()
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as copy:
        for item in source.infolist():
            body = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                declaration_end = body.find(b"?>") + 2 if body.startswith(b"<?xml") else 0
                body = (
                    body[:declaration_end]
                    + b'<!DOCTYPE worksheet [<!ENTITY e "x">]>'
                    + body[declaration_end:]
                )
            copy.writestr(item, body)
    with pytest.raises(UnreadableXlsx):
        list(xlsx_sheets(out.getvalue()))
    with pytest.raises(UnreadableXlsx):
        list(xlsx_sheets(b"PK\x03\x04 not a zip"))
    # the ledger reader hands the workbook with a DTD to openpyxl, which reads it or says why not
    try:
        titles = [title for title, _ in _xlsx_sheets(out.getvalue(), "t.xlsx", None)]
    except LedgerError as exc:
        assert "t.xlsx" in str(exc)
    else:
        assert titles == ["发票", "明细"]
