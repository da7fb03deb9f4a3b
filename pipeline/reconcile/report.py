"""Reconciliation reports: CSV, XLSX and one self-contained HTML file, plus the terminal summary.

Each report row is one ``Entry``: the invoice and ledger values side by side, the differences, and
the reason in English and Chinese. Invoices link to their first page image in the store: a
``file://`` URL for a local store (relative to the report in the HTML), the object URL otherwise.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.reconcile.outcomes import OUTCOME_LABELS, Entry, Outcome, Reconciliation
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
from pipeline.reconcile.xlsx_writer import write_workbook
from pipeline.store import Store, page_key
from pipeline.store.objects import LocalObjectStore

log = logging.getLogger(__name__)

PROBLEMS_NAME = "ledger-problems.csv"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("outcome", "结果"),
    ("document_id", "文档ID"),
    ("source_name", "文件"),
    ("ledger_row", "台账行"),
    ("invoice_code", "发票代码"),
    ("invoice_number", "发票号码"),
    ("ledger_invoice_number", "台账发票号码"),
    ("issue_date", "开票日期"),
    ("ledger_issue_date", "台账开票日期"),
    ("total_amount", "价税合计"),
    ("ledger_total_amount", "台账价税合计"),
    ("seller_name", "销售方名称"),
    ("ledger_seller_name", "台账销售方名称"),
    ("score", "匹配分"),
    ("documents", "同一发票的全部文件"),
    ("arrived_separately", "分别提交"),
    ("differences", "差异"),
    ("reason_en", "reason"),
    ("reason_zh", "原因"),
    ("page_image", "发票图片"),
)


def page_links(store: Store, document_ids: Iterable[str]) -> dict[str, str]:
    """Each invoice's first page image: a ``file://`` URL in a local store (only if the image exists),
    the object's location under the store's URL otherwise (e.g. ``s3://bucket/documents/…``)."""
    links: dict[str, str] = {}
    objects = store.objects
    for document_id in document_ids:
        key = page_key(document_id, 0)
        if isinstance(objects, LocalObjectStore):
            path = objects.root / key
            if path.is_file():
                links[document_id] = path.resolve().as_uri()
        else:
            links[document_id] = f"{objects.location.rstrip('/')}/{key}"
    return links


def entry_record(entry: Entry, links: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One report row as a flat dict keyed by ``COLUMNS`` names."""
    inv, row = entry.invoice, entry.ledger_row
    return {
        "outcome": str(entry.outcome),
        "document_id": inv.document_id if inv else "",
        "source_name": inv.source_name if inv else "",
        "ledger_row": row.row_number if row else "",
        "invoice_code": cell_text(inv.invoice_code if inv else row.invoice_code if row else None),
        "invoice_number": cell_text(inv.invoice_number) if inv else "",
        "ledger_invoice_number": cell_text(row.invoice_number) if row else "",
        "issue_date": cell_text(inv.issue_date) if inv else "",
        "ledger_issue_date": cell_text(row.issue_date) if row else "",
        "total_amount": cell_text(inv.total_amount) if inv else "",
        "ledger_total_amount": cell_text(row.total_amount) if row else "",
        "seller_name": cell_text(inv.seller_name) if inv else "",
        "ledger_seller_name": cell_text(row.seller_name) if row else "",
        "score": round(entry.score, 4),
        "documents": " | ".join(entry.documents),
        "arrived_separately": yes_text(entry.arrived_separately),
        "differences": "; ".join(d.describe() for d in entry.differences),
        "reason_en": entry.reason_en,
        "reason_zh": entry.reason_zh,
        "page_image": (links or {}).get(inv.document_id, "") if inv else "",
    }


def summary_rows(result: Reconciliation) -> list[tuple[str, str, int]]:
    counts = result.counts()
    return [(OUTCOME_LABELS[o][0], OUTCOME_LABELS[o][1], counts[str(o)]) for o in Outcome]


# ---- CSV ------------------------------------------------------------------------------------------------


def write_csv(path: Path, result: Reconciliation, links: Mapping[str, str] | None = None) -> Path:
    names = [name for name, _ in COLUMNS]
    records = (entry_record(entry, links) for entry in result.lines)
    return write_csv_table(path, names, ([csv_safe(record[name]) for name in names] for record in records))


def write_problems_csv(path: Path, problems: Sequence[RowProblem]) -> Path:
    return write_csv_table(path, PROBLEM_CSV_HEADER, (problem_cells(p, for_csv=True) for p in problems))


# ---- XLSX -----------------------------------------------------------------------------------------------


# Which columns each sheet shows: a ledger row without an invoice has no invoice columns to fill.
LEDGER_ONLY_COLUMNS = (
    "outcome",
    "ledger_row",
    "invoice_code",
    "ledger_invoice_number",
    "ledger_issue_date",
    "ledger_total_amount",
    "ledger_seller_name",
    "reason_en",
    "reason_zh",
)


def write_xlsx(
    path: Path, result: Reconciliation, ledger: LedgerImport | None, links: Mapping[str, str] | None = None
) -> Path:
    """A summary sheet, one sheet per outcome and one for the ledger's problems."""
    summary: list[Sequence[Any]] = [["outcome", "结果", "count 数量"], *summary_rows(result), []]
    summary += [list(fact) for fact in _run_facts(result, ledger)]
    sheets: list[tuple[str, Iterable[Sequence[Any]]]] = [("Summary 汇总", summary)]
    labels = dict(COLUMNS)
    for outcome in Outcome:
        entries = result.of(outcome)
        ledger_only = bool(entries) and all(entry.invoice is None for entry in entries)
        names = LEDGER_ONLY_COLUMNS if ledger_only else tuple(name for name, _ in COLUMNS)
        sheets.append((str(outcome), _outcome_rows(entries, names, labels, links)))
    problems: list[Sequence[Any]] = [PROBLEM_SHEET_HEADER]
    problems += [problem_cells(p) for p in (ledger.problems if ledger else [])]
    sheets.append(("ledger problems 台账问题", problems))
    write_workbook(path, sheets)
    return path


def _outcome_rows(
    entries: Sequence[Entry], names: Sequence[str], labels: Mapping[str, str], links: Mapping[str, str] | None
) -> Iterator[Sequence[Any]]:
    yield [f"{name} {labels[name]}" for name in names]
    for entry in entries:
        record = entry_record(entry, links)
        yield [record[name] for name in names]


def _run_facts(result: Reconciliation, ledger: LedgerImport | None) -> list[tuple[str, str]]:
    options = result.options
    period = f"{options.date_from or '…'} – {options.date_to or '…'}"
    facts = [
        ("reconciled at 核对时间", time.strftime("%Y-%m-%d %H:%M:%S")),
        ("invoices 发票数", str(result.invoices_considered)),
        ("ledger rows 台账行数", str(result.ledger_rows_considered)),
        ("period 期间", period),
        ("amount tolerance 金额容差", str(options.amount_tolerance)),
        ("date window (days) 日期窗口（天）", str(options.date_window_days)),
    ]
    if ledger is not None:
        facts.insert(0, ("ledger 台账", f"{ledger.path} ({ledger.describe()})"))
        facts.append(("ledger columns 台账列", ", ".join(f"{h}→{f}" for f, h in ledger.columns.items())))
    return facts


# ---- HTML -----------------------------------------------------------------------------------------------

# The outcomes' colours, after the page's own style (``report_html.PAGE_CSS``).
_CSS = """.matched{color:#1a7f37}.matched_with_differences{color:#9a6700}.not_in_ledger,.no_invoice_scanned{color:#cf222e}
.duplicate{color:#8250df}.diff{background:#fff8c5}.zh{color:#555}summary{cursor:pointer;font-weight:bold}
.note{color:#555;font-style:italic}
"""


def write_html(
    path: Path, result: Reconciliation, ledger: LedgerImport | None, links: Mapping[str, str] | None = None
) -> Path:
    """The page: the run's facts, a summary, a table per outcome and the ledger's problems."""
    e = html.escape
    base = path.parent.resolve()
    counts = result.counts()
    ledger_name = f" — {ledger.path.name}" if ledger else ""
    out = page_start(
        f"Reconciliation 核对报告{ledger_name}",
        f"Invoice reconciliation 发票与台账核对{ledger_name}",
        _CSS,
        _run_facts(result, ledger),
    )
    out.append("<table><tr><th>outcome</th><th>结果</th><th>count 数量</th></tr>")
    for outcome in Outcome:
        en, zh = OUTCOME_LABELS[outcome]
        out.append(
            f'<tr><td><a class="{outcome}" href="#{outcome}">{e(en)}</a></td><td>{e(zh)}</td>'
            f'<td class="num">{counts[str(outcome)]}</td></tr>'
        )
    out.append("</table>")
    for outcome in Outcome:
        entries = result.of(outcome)
        en, zh = OUTCOME_LABELS[outcome]
        out.append(f'<h2 id="{outcome}" class="{outcome}">{e(en)} {e(zh)} ({len(entries)})</h2>')
        if not entries:
            out.append('<p class="note">none 无</p>')
            continue
        if len(entries) > HTML_MAX_ROWS:
            out.append(
                f'<p class="note">The first {HTML_MAX_ROWS} of {len(entries)} are shown; the CSV and XLSX reports '
                f"hold them all. 仅显示前 {HTML_MAX_ROWS} 条（共 {len(entries)} 条），完整列表见 CSV 和 XLSX。</p>"
            )
        out.append(_html_table(entries[:HTML_MAX_ROWS], links or {}, base))
    problems = [
        (f'<td class="num">{p.row_number}</td><td>{e(FIELD_LABELS[p.field][0] if p.field else "")}</td>', p)
        for p in (ledger.problems if ledger else [])
    ]
    out += problems_section("Ledger problems 台账问题", ("row 行", "field 字段"), problems)
    return write_page(path, out)


def _html_table(entries: Sequence[Entry], links: Mapping[str, str], base: Path) -> str:
    e = html.escape
    rows = [
        "<table><tr><th>invoice 发票</th><th>number 号码</th><th>date 日期</th><th>total 价税合计</th>"
        "<th>seller 销售方</th><th>ledger row 台账行</th><th>score 匹配分</th><th>reason 原因</th></tr>"
    ]
    for entry in entries:
        record = entry_record(entry, links)
        differing = {d.field for d in entry.differences}

        def pair(name: str, record: dict[str, Any] = record, differing: set[str] = differing) -> str:
            inv, led = record[name], record[f"ledger_{name}"]
            cls = ' class="diff"' if name in differing else ""
            if inv and led and inv != led:
                return f"<td{cls}>{e(inv)}<br>台账: {e(led)}</td>"
            return f"<td{cls}>{e(inv or led)}</td>"

        if entry.invoice is not None:
            file_cell = invoice_link(entry.invoice, links, base)
            file_cell += f'<br><span class="zh">{e(entry.invoice.document_id[:12])}</span>'
        else:
            file_cell = '<span class="note">no scan 无扫描件</span>'
        rows.append(
            f"<tr><td>{file_cell}</td>{pair('invoice_number')}{pair('issue_date')}"
            f"{pair('total_amount')}{pair('seller_name')}"
            f'<td class="num">{record["ledger_row"]}</td><td class="num">{record["score"]:.2f}</td>'
            f'<td>{e(entry.reason_en)}<br><span class="zh">{e(entry.reason_zh)}</span></td></tr>'
        )
    rows.append("</table>")
    return "\n".join(rows)


# ---- all of them ----------------------------------------------------------------------------------------


def write_reports(
    out_dir: Path, result: Reconciliation, ledger: LedgerImport | None, links: Mapping[str, str] | None = None
) -> dict[str, Path]:
    """CSV, XLSX, HTML and the ledger problems CSV in ``out_dir`` (created); returns format -> path."""
    with report_folder(out_dir):
        paths = {
            "csv": write_csv(out_dir / CSV_NAME, result, links),
            "xlsx": write_xlsx(out_dir / XLSX_NAME, result, ledger, links),
            "html": write_html(out_dir / HTML_NAME, result, ledger, links),
            "problems": write_problems_csv(out_dir / PROBLEMS_NAME, ledger.problems if ledger else []),
        }
    log.info("reports written to %s", out_dir)
    return paths
