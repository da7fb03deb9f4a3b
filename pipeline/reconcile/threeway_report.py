"""Reports of a three-way reconciliation: one row per invoice across held, ledger and tax platform.

CSV (UTF-8 with BOM), XLSX (a summary sheet with counts and amounts per outcome, a sheet per
outcome, the import problems) and one self-contained HTML page whose rows link the page images.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.reconcile.platform import FORMAT_LABELS, STATUS_LABELS, PlatformImport
from pipeline.reconcile.report_files import (
    CSV_NAME,
    HTML_NAME,
    PROBLEM_CSV_HEADER,
    PROBLEM_SHEET_HEADER,
    XLSX_NAME,
    cell_text,
    csv_safe,
    problem_cells,
    report_folder,
    write_csv_table,
    yes_text,
)
from pipeline.reconcile.report_html import (
    HTML_MAX_ROWS,
    invoice_link,
    page_start,
    problems_section,
    write_page,
)
from pipeline.reconcile.sources import FIELD_LABELS, LedgerImport, RowProblem
from pipeline.reconcile.tables import line_differences
from pipeline.reconcile.threeway import LINE_LABELS, Line, LineOutcome, ThreeWay
from pipeline.reconcile.xlsx_writer import write_workbook

log = logging.getLogger(__name__)

PROBLEMS_NAME = "import-problems.csv"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("outcome", "结果"),
    ("also", "其他问题"),
    ("held", "持有发票"),
    ("booked", "已入账"),
    ("on_platform", "税务平台"),
    ("platform_status", "平台状态"),
    ("risk", "风险等级"),
    ("deducted", "已勾选"),
    ("invoice_code", "发票代码"),
    ("invoice_number", "发票号码"),
    ("issue_date", "开票日期"),
    ("total_amount", "价税合计（票面）"),
    ("ledger_total_amount", "价税合计（台账）"),
    ("platform_total_amount", "价税合计（平台）"),
    ("seller_name", "销售方名称"),
    ("platform_seller_name", "销售方名称（平台）"),
    ("reversed_amount", "已红冲金额"),
    ("remaining_amount", "红冲后剩余"),
    ("reverses", "冲销的蓝字发票"),
    ("platform_items", "平台明细行数"),
    ("document_id", "文档ID"),
    ("source_name", "文件"),
    ("documents", "同一发票的全部文件"),
    ("ledger_row", "台账行"),
    ("platform_source", "平台文件:行"),
    ("differences", "差异"),
    ("reason_en", "reason"),
    ("reason_zh", "原因"),
    ("page_image", "发票图片"),
)


def _describe_differences(line: Line) -> str:
    parts = []
    for d in line_differences(line):
        label = FIELD_LABELS[d["field"]][0]
        if "platform" in d:
            parts.append(
                f"{label}: document {d['document'] or '(empty)'}, platform {d['platform'] or '(empty)'}"
            )
        else:
            parts.append(f"{label}: invoice {d['invoice'] or '(empty)'}, ledger {d['ledger'] or '(empty)'}")
    return "; ".join(parts)


def line_record(line: Line, links: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One report row as a flat dict keyed by ``COLUMNS`` names."""
    inv, row, p = line.invoice, line.ledger_row, line.platform
    document = inv or row
    status = STATUS_LABELS[p.status] if p else None
    reversal = line.reversal
    return {
        "outcome": str(line.outcome),
        "also": ", ".join(str(code) for code in line.also),
        "held": yes_text(line.in_held),
        "booked": yes_text(line.in_ledger),
        "on_platform": yes_text(line.in_platform),
        "platform_status": f"{status[0]} {status[1]}" if status else "",
        "risk": cell_text(p.risk) if p else "",
        "deducted": yes_text(p.deducted) if p else "",
        "invoice_code": cell_text(line.invoice_code),
        "invoice_number": cell_text(line.invoice_number),
        "issue_date": cell_text(line.issue_date),
        "total_amount": cell_text(document.total_amount) if document else "",
        "ledger_total_amount": cell_text(row.total_amount) if row else "",
        "platform_total_amount": cell_text(p.total_amount) if p else "",
        "seller_name": cell_text(document.seller_name) if document else "",
        "platform_seller_name": cell_text(p.seller_name) if p else "",
        "reversed_amount": cell_text(reversal.reversed_amount) if reversal else "",
        "remaining_amount": cell_text(reversal.remaining) if reversal else "",
        "reverses": cell_text(line.reverses),
        "platform_items": len(p.items) if p and p.items else "",
        "document_id": inv.document_id if inv else "",
        "source_name": inv.source_name if inv else "",
        "documents": " | ".join(line.documents),
        "ledger_row": row.row_number if row else "",
        "platform_source": p.where if p else "",
        "differences": _describe_differences(line),
        "reason_en": line.reason_en,
        "reason_zh": line.reason_zh,
        "page_image": (links or {}).get(inv.document_id, "") if inv else "",
    }


def summary_rows(result: ThreeWay) -> list[tuple[str, str, str, int, str]]:
    """(code, English, Chinese, count, amount) per outcome that occurs."""
    return [(code, en, zh, count, f"{amount:.2f}") for code, en, zh, count, amount in result.summary()]


class _Records:
    """Each line's report record, made once for the CSV, the XLSX and the HTML."""

    def __init__(self, links: Mapping[str, str] | None) -> None:
        self.links = links
        self._made: dict[int, dict[str, Any]] = {}

    def __call__(self, line: Line) -> dict[str, Any]:
        found = self._made.get(id(line))
        if found is None:
            found = self._made[id(line)] = line_record(line, self.links)
        return found


def write_csv(
    path: Path, result: ThreeWay, links: Mapping[str, str] | None = None, records: Any = None
) -> Path:
    records = records or _Records(links)
    names = [name for name, _ in COLUMNS]
    made = (records(line) for line in result.lines)
    return write_csv_table(path, names, ([csv_safe(record[name]) for name in names] for record in made))


def _problems(
    ledger: LedgerImport | None, platform: Sequence[PlatformImport]
) -> list[tuple[str, RowProblem]]:
    out = [(ledger.path.name, p) for p in ledger.problems] if ledger else []
    for imported in platform:
        out += [(imported.path.name, p) for p in imported.problems]
    return out


def write_problems_csv(path: Path, problems: Sequence[tuple[str, RowProblem]]) -> Path:
    rows = ([name, *problem_cells(p, for_csv=True)] for name, p in problems)
    return write_csv_table(path, ("file", *PROBLEM_CSV_HEADER), rows)


def run_facts(
    result: ThreeWay, ledger: LedgerImport | None, platform: Sequence[PlatformImport]
) -> list[tuple[str, str]]:
    options = result.options
    facts = [("reconciled at 核对时间", time.strftime("%Y-%m-%d %H:%M:%S"))]
    if ledger is not None:
        facts.append(("ledger 台账", ledger.describe()))
    for imported in platform:
        facts.append(("tax platform 税务平台", imported.describe()))
    if result.platform_dates:
        first, last = result.platform_dates
        facts.append(("platform dates 平台日期范围", f"{first} – {last}"))
    facts += [
        ("period 期间", f"{options.date_from or '…'} – {options.date_to or '…'}"),
        ("amount tolerance 金额容差", str(options.amount_tolerance)),
        ("lines 行数", str(len(result.lines))),
    ]
    return facts


def _rows(lines: Sequence[Line], records: Any) -> Iterator[Sequence[Any]]:
    """A sheet's rows, without the columns every line of the sheet leaves empty (a platform-only
    invoice has no held document, no ledger row ...): the sheet stays readable, and quick to write."""
    made = [records(line) for line in lines]
    kept = [(name, label) for name, label in COLUMNS if any(record[name] != "" for record in made)]
    yield [f"{name} {label}" for name, label in kept]
    for record in made:
        yield [record[name] for name, _ in kept]


def write_xlsx(
    path: Path,
    result: ThreeWay,
    ledger: LedgerImport | None,
    platform: Sequence[PlatformImport],
    links: Mapping[str, str] | None = None,
    records: Any = None,
) -> Path:
    records = records or _Records(links)
    summary: list[Sequence[Any]] = [["outcome", "英文", "结果", "count 数量", "amount 价税合计"]]
    summary += [list(row) for row in summary_rows(result)]
    summary += [[], *([k, v] for k, v in run_facts(result, ledger, platform))]
    sheets: list[tuple[str, Iterable[Sequence[Any]]]] = [("Summary 汇总", summary)]
    for code in LineOutcome:
        lines = result.of(code)
        if lines:
            sheets.append((str(code), _rows(lines, records)))
    problems: list[Sequence[Any]] = [("file 文件", *PROBLEM_SHEET_HEADER)]
    problems += [[name, *problem_cells(p)] for name, p in _problems(ledger, platform)]
    sheets.append(("problems 导入问题", problems))
    write_workbook(path, sheets)
    return path


# The outcomes' colours, after the page's own style (``report_html.PAGE_CSS``).
_CSS = """.bad{color:#cf222e}.warn{color:#9a6700}.good{color:#1a7f37}.zh{color:#555}.note{color:#555;font-style:italic}
.mark{text-align:center}summary{cursor:pointer;font-weight:bold}
"""
_GOOD = {LineOutcome.MATCHED}
_WARN = {LineOutcome.MATCHED_WITH_DIFFERENCES, LineOutcome.HIGH_RISK, LineOutcome.DUPLICATE}


def _css_class(code: LineOutcome) -> str:
    return "good" if code in _GOOD else "warn" if code in _WARN else "bad"


def write_html(
    path: Path,
    result: ThreeWay,
    ledger: LedgerImport | None,
    platform: Sequence[PlatformImport],
    links: Mapping[str, str] | None = None,
    records: Any = None,
) -> Path:
    """One self-contained file: inline style, no scripts; page images linked relative to the report."""
    e = html.escape
    base = path.parent.resolve()
    out = page_start(
        "Reconciliation 发票三方核对",
        "Invoices held, ledger and tax platform 发票、台账与税务平台三方核对",
        _CSS,
        run_facts(result, ledger, platform),
    )
    out.append(
        "<table><tr><th>outcome 结果</th><th>code</th><th>count 数量</th><th>amount 价税合计</th></tr>"
    )
    for code, en, zh, count, amount in summary_rows(result):
        cls = _css_class(LineOutcome(code))
        out.append(
            f'<tr><td><a class="{cls}" href="#{code}">{e(en)} {e(zh)}</a></td><td>{code}</td>'
            f'<td class="num">{count}</td><td class="num">{amount}</td></tr>'
        )
    out.append("</table>")
    for code in LineOutcome:
        lines = result.of(code)
        if not lines:
            continue
        en, zh = LINE_LABELS[code]
        out.append(f'<h2 id="{code}" class="{_css_class(code)}">{e(en)} {e(zh)} ({len(lines)})</h2>')
        if len(lines) > HTML_MAX_ROWS:
            out.append(
                f'<p class="note">The first {HTML_MAX_ROWS} of {len(lines)} are shown; the CSV and XLSX hold them all. '
                f"仅显示前 {HTML_MAX_ROWS} 条（共 {len(lines)} 条）。</p>"
            )
        out.append(_html_table(lines[:HTML_MAX_ROWS], links or {}, base, records or _Records(links)))
    problems = [
        (f'<td>{e(name)}</td><td class="num">{p.row_number}</td>', p)
        for name, p in _problems(ledger, platform)
    ]
    out += problems_section("Import problems 导入问题", ("file 文件", "row 行"), problems)
    return write_page(path, out)


def _html_table(lines: Sequence[Line], links: Mapping[str, str], base: Path, records: Any) -> str:
    e = html.escape
    rows = [
        "<table><tr><th>invoice 发票</th><th>number 号码</th><th>date 日期</th><th>total 价税合计</th>"
        "<th>seller 销售方</th><th>held 持有</th><th>ledger 台账</th><th>platform 平台</th><th>reason 原因</th></tr>"
    ]
    for line in lines:
        record = records(line)
        if line.invoice is not None:
            file_cell = invoice_link(line.invoice, links, base)
        else:
            file_cell = '<span class="note">not held 无发票</span>'
        status = e(record["platform_status"]) if line.platform else "—"
        rows.append(
            f"<tr><td>{file_cell}</td><td>{e(record['invoice_code'])} {e(record['invoice_number'])}</td>"
            f'<td>{e(record["issue_date"])}</td><td class="num">{e(cell_text(line.total))}</td>'
            f"<td>{e(record['seller_name'] or record['platform_seller_name'])}</td>"
            f'<td class="mark">{"✓" if line.in_held else "—"}</td>'
            f'<td class="mark">{record["ledger_row"] or "—"}</td><td>{status}</td>'
            f'<td>{e(line.reason_en)}<br><span class="zh">{e(line.reason_zh)}</span></td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


def write_reports(
    out_dir: Path,
    result: ThreeWay,
    ledger: LedgerImport | None,
    platform: Sequence[PlatformImport],
    links: Mapping[str, str] | None = None,
) -> dict[str, Path]:
    """CSV, XLSX, HTML and the import problems CSV in ``out_dir`` (created)."""
    with report_folder(out_dir):
        records = _Records(links)
        paths = {
            "csv": write_csv(out_dir / CSV_NAME, result, links, records),
            "xlsx": write_xlsx(out_dir / XLSX_NAME, result, ledger, platform, links, records),
            "html": write_html(out_dir / HTML_NAME, result, ledger, platform, links, records),
            "problems": write_problems_csv(out_dir / PROBLEMS_NAME, _problems(ledger, platform)),
        }
    log.info("reports written to %s", out_dir)
    return paths


__all__ = ["FORMAT_LABELS", "line_record", "summary_rows", "write_reports"]
