#!/usr/bin/env python3
"""XLSX reading for the ledger and the tax platform's exports: openpyxl (read-only, values only)
against the reader of the sheets' XML (``pipeline.reconcile.xlsx``), in CPU seconds, on a generated
全量发票查询 export; checks that both give the same values.

    python scripts/bench_xlsx.py --rows 20000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HEADERS = [
    "序号", "发票代码", "发票号码", "数电发票号码", "销方识别号", "销方名称", "购方识别号", "购买方名称",
    "开票日期", "金额", "税额", "价税合计", "发票来源", "发票票种", "发票状态", "是否正数发票",
    "发票风险等级", "开票人", "备注",
]  # fmt: skip


def make_export(path: Path, rows: int, seed: int = 1) -> None:
    import openpyxl

    rng = random.Random(seed)
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("发票基础信息")
    sheet.append(["全量发票查询导出结果"])
    sheet.append(HEADERS)
    for k in range(rows):
        amount = round(rng.uniform(10, 99999), 2)
        issued = datetime(2024, rng.randint(1, 12), rng.randint(1, 28))
        sheet.append(
            [k + 1, "", "", f"2411{rng.randint(10**15, 10**16 - 1)}", "91110108MA01ABCD1X",
             f"北京某某科技有限公司{k % 300}", "91110105MA00XXXX1Y", "北京长城软件有限公司",
             issued if k % 2 else issued.strftime("%Y-%m-%d"), amount, round(amount * 0.13, 2),
             round(amount * 1.13, 2), "电子发票服务平台", "数电发票（普通发票）", "正常", "是", "正常",
             "张三", "" if k % 5 else "备注"]
        )  # fmt: skip
    sheet.append(["合计", None, None, None, None, None, None, None, None, 1.0])
    workbook.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    from pipeline.reconcile.spreadsheets import _openpyxl_sheets
    from pipeline.reconcile.xlsx import xlsx_sheets

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "全量发票查询.xlsx"
        make_export(path, args.rows)
        data = path.read_bytes()
        started = time.process_time()
        slow = list(_openpyxl_sheets(data, path.name, None))
        openpyxl_s = time.process_time() - started
        started = time.process_time()
        fast = list(xlsx_sheets(data))
        fast_s = time.process_time() - started
    same = [(t, [list(r) for r in rows]) for t, rows in slow] == fast
    n = args.rows
    print(f"{n} rows x {len(HEADERS)} columns ({len(data) / 1e6:.1f} MB)")
    print(f"openpyxl read-only: {openpyxl_s:.2f} CPU-s ({openpyxl_s / n * 1000:.3f} ms/row)")
    print(
        f"sheet XML reader:   {fast_s:.2f} CPU-s ({fast_s / n * 1000:.3f} ms/row), {openpyxl_s / fast_s:.1f}x"
    )
    print("same values" if same else "VALUES DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
