"""Reconciliation reports: CSV, XLSX and one self-contained HTML file, plus the terminal summary.

Each report row is one ``Entry``: the invoice and ledger values side by side, the differences, and
the reason in English and Chinese. Invoices link to their first page image in the store: a
``file://`` URL for a local store (relative to the report in the HTML), the object URL otherwise.
"""

from __future__ import annotations

import csv
import html
import logging
import os
import re
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pipeline.errors import StorageError
from pipeline.reconcile.outcomes import OUTCOME_LABELS, Entry, Outcome, Reconciliation
from pipeline.reconcile.sources import FIELD_LABELS, LedgerImport, RowProblem
from pipeline.store import Store, page_key
from pipeline.store.objects import LocalObjectStore

log = logging.getLogger(__name__)

CSV_NAME = "reconciliation.csv"
XLSX_NAME = "reconciliation.xlsx"
HTML_NAME = "reconciliation.html"
PROBLEMS_NAME = "ledger-problems.csv"
HTML_MAX_ROWS = 2000  # per outcome table; the CSV and XLSX always hold everything

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


def _text(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.2f}" if hasattr(value, "quantize") else str(value)


def entry_record(entry: Entry, links: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One report row as a flat dict keyed by ``COLUMNS`` names."""
    inv, row = entry.invoice, entry.ledger_row
    return {
        "outcome": str(entry.outcome),
        "document_id": inv.document_id if inv else "",
        "source_name": inv.source_name if inv else "",
        "ledger_row": row.row_number if row else "",
        "invoice_code": _text(inv.invoice_code if inv else row.invoice_code if row else None),
        "invoice_number": _text(inv.invoice_number) if inv else "",
        "ledger_invoice_number": _text(row.invoice_number) if row else "",
        "issue_date": _text(inv.issue_date) if inv else "",
        "ledger_issue_date": _text(row.issue_date) if row else "",
        "total_amount": _text(inv.total_amount) if inv else "",
        "ledger_total_amount": _text(row.total_amount) if row else "",
        "seller_name": _text(inv.seller_name) if inv else "",
        "ledger_seller_name": _text(row.seller_name) if row else "",
        "score": round(entry.score, 4),
        "documents": " | ".join(entry.documents),
        "arrived_separately": "yes 是" if entry.arrived_separately else "",
        "differences": "; ".join(d.describe() for d in entry.differences),
        "reason_en": entry.reason_en,
        "reason_zh": entry.reason_zh,
        "page_image": (links or {}).get(inv.document_id, "") if inv else "",
    }


def summary_rows(result: Reconciliation) -> list[tuple[str, str, int]]:
    counts = result.counts()
    return [(OUTCOME_LABELS[o][0], OUTCOME_LABELS[o][1], counts[str(o)]) for o in Outcome]


# ---- CSV ------------------------------------------------------------------------------------------------


_FORMULA_START = ("=", "+", "@", "\t", "\r")


def _csv_safe(value: Any) -> Any:
    """A text cell Excel would run as a formula (=HYPERLINK(...) in a scanned name) is quoted with '."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(path: Path, result: Reconciliation, links: Mapping[str, str] | None = None) -> Path:
    """UTF-8 with a BOM, so Excel shows the Chinese text right when the file is double-clicked."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[name for name, _ in COLUMNS])
        writer.writeheader()
        for entry in result.lines:
            writer.writerow({k: _csv_safe(v) for k, v in entry_record(entry, links).items()})
    return path


def write_problems_csv(path: Path, problems: Sequence[RowProblem]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "field", "value", "skipped", "problem", "问题"])
        for p in problems:
            writer.writerow(
                [
                    p.row_number,
                    p.field or "",
                    _csv_safe(p.value),
                    "yes" if p.skipped else "",
                    p.message,
                    p.message_zh,
                ]
            )
    return path


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
    problems: list[Sequence[Any]] = [["row 行", "field 字段", "value 值", "skipped 跳过", "problem", "问题"]]
    for p in ledger.problems if ledger else []:
        problems.append(
            [p.row_number, p.field or "", p.value, "yes" if p.skipped else "", p.message, p.message_zh]
        )
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


# A minimal SpreadsheetML (XLSX) writer: inline strings, a bold frozen header row, an autofilter.
# openpyxl needs ~17 µs a cell to write; this needs ~1 µs, which is what keeps a 100,000-row
# reconciliation inside its time budget. The files open in Excel, LibreOffice and openpyxl.

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SHEET_NAME_ILLEGAL = re.compile(r"[\[\]:*?/\\]")


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _cell_xml(ref: str, value: Any, style: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int | float):
        return f'<c r="{ref}"{style}><v>{value!r}</v></c>'
    text = _XML_ILLEGAL.sub("\ufffd", html.escape(str(value), quote=False))
    return f'<c r="{ref}"{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def _sheet_xml(rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """The worksheet XML in chunks; the first row (the header) sets the number of columns."""
    iterator = iter(rows)
    header = next(iterator, [])
    width = max(len(header), 1)
    letters = [_column_letter(i) for i in range(width)]
    yield (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_NS}">'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
        'state="frozen"/></sheetView></sheetViews>'
        f'<cols><col min="1" max="{width}" width="18" customWidth="1"/></cols><sheetData>'
    )
    yield (
        '<row r="1">'
        + "".join(_cell_xml(f"{letters[i]}1", v, ' s="1"') for i, v in enumerate(header))
        + "</row>"
    )
    number = 1
    chunk: list[str] = []
    for number, row in enumerate(iterator, 2):  # number ends as the last row's: the autofilter needs it
        if len(row) > len(letters):
            letters += [_column_letter(i) for i in range(len(letters), len(row))]
        cells = "".join(_cell_xml(f"{letters[i]}{number}", value, "") for i, value in enumerate(row))
        chunk.append(f'<row r="{number}">{cells}</row>')
        if len(chunk) >= 2000:
            yield "".join(chunk)
            chunk.clear()
    yield "".join(chunk) + "</sheetData>"
    if number > 1:
        yield f'<autoFilter ref="A1:{letters[width - 1]}{number}"/>'
    yield "</worksheet>"


def write_workbook(path: Path, sheets: Sequence[tuple[str, Iterable[Sequence[Any]]]]) -> Path:
    """Write sheets (name, rows; the first row is the header) as one XLSX file, streaming the rows."""
    names: list[str] = []
    for name, _ in sheets:
        clean = _SHEET_NAME_ILLEGAL.sub("_", name)[:31] or "Sheet"
        while clean in names:
            clean = clean[:28] + f"_{len(names)}"
        names.append(clean)
    count = len(sheets)
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        + "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(1, count + 1)
        )
        + "</Types>"
    )
    root_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_PKG_REL_NS}"><Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    )
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<workbook xmlns="{_NS}" xmlns:r="{_REL_NS}"><sheets>'
        + "".join(
            f'<sheet name="{html.escape(name)}" sheetId="{i}" r:id="rId{i}"/>'
            for i, name in enumerate(names, 1)
        )
        + "</sheets></workbook>"
    )
    workbook_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_PKG_REL_NS}">'
        + "".join(
            f'<Relationship Id="rId{i}" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
            f'Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, count + 1)
        )
        + f'<Relationship Id="rId{count + 1}" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" '
        'Target="styles.xml"/></Relationships>'
    )
    styles = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<styleSheet xmlns="{_NS}">'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", root_rels)
        archive.writestr("xl/workbook.xml", workbook)
        archive.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        archive.writestr("xl/styles.xml", styles)
        for i, (_, rows) in enumerate(sheets, 1):
            with archive.open(f"xl/worksheets/sheet{i}.xml", "w") as sheet:
                for chunk in _sheet_xml(rows):
                    sheet.write(chunk.encode())
    return path


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

_CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;font-size:.85em;width:100%}
th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}th{background:#f3f3f3}
td.num{text-align:right;white-space:nowrap}.facts td{border:none;padding:.1em .8em .1em 0}
.matched{color:#1a7f37}.matched_with_differences{color:#9a6700}.not_in_ledger,.no_invoice_scanned{color:#cf222e}
.duplicate{color:#8250df}.diff{background:#fff8c5}.zh{color:#555}summary{cursor:pointer;font-weight:bold}
.note{color:#555;font-style:italic}
"""


def _link(url: str, base: Path) -> str:
    """A link the HTML can carry: relative to the report for a local file, as is otherwise."""
    if url.startswith("file://"):
        target = Path(unquote(urlsplit(url).path))
        try:
            return Path(os.path.relpath(target, base)).as_posix()
        except ValueError:  # another drive on Windows
            return url
    return url


def write_html(
    path: Path, result: Reconciliation, ledger: LedgerImport | None, links: Mapping[str, str] | None = None
) -> Path:
    """One self-contained file: inline style, no scripts, no external resources."""
    e = html.escape
    base = path.parent.resolve()
    counts = result.counts()
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Reconciliation 核对报告{' — ' + e(ledger.path.name) if ledger else ''}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Invoice reconciliation 发票与台账核对{' — ' + e(ledger.path.name) if ledger else ''}</h1>",
        '<table class="facts">',
        *(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _run_facts(result, ledger)),
        "</table>",
        "<h2>Summary 汇总</h2>",
        "<table><tr><th>outcome</th><th>结果</th><th>count 数量</th></tr>",
    ]
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
    problems = ledger.problems if ledger else []
    out.append(f"<h2>Ledger problems 台账问题 ({len(problems)})</h2>")
    if problems:
        out.append("<details><summary>show 展开</summary><table>")
        out.append("<tr><th>row 行</th><th>field 字段</th><th>value 值</th><th>problem 问题</th></tr>")
        for p in problems[:HTML_MAX_ROWS]:
            label = FIELD_LABELS[p.field][0] if p.field else ""
            skipped = " (skipped 已跳过)" if p.skipped else ""
            out.append(
                f'<tr><td class="num">{p.row_number}</td><td>{e(label)}</td><td>{e(p.value)}</td>'
                f'<td>{e(p.message)}{skipped}<br><span class="zh">{e(p.message_zh)}</span></td></tr>'
            )
        out.append("</table></details>")
    else:
        out.append('<p class="note">none 无</p>')
    out.append("</body></html>")
    path.write_text("\n".join(out), encoding="utf-8")
    return path


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
            name = e(entry.invoice.source_name or entry.invoice.document_id[:12])
            url = links.get(entry.invoice.document_id)
            file_cell = f'<a href="{e(_link(url, base))}">{name}</a>' if url else name
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
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "csv": write_csv(out_dir / CSV_NAME, result, links),
            "xlsx": write_xlsx(out_dir / XLSX_NAME, result, ledger, links),
            "html": write_html(out_dir / HTML_NAME, result, ledger, links),
            "problems": write_problems_csv(out_dir / PROBLEMS_NAME, ledger.problems if ledger else []),
        }
    except OSError as exc:
        raise StorageError(f"cannot write the reports to {out_dir}: {exc.strerror or exc}") from exc
    log.info("reports written to %s", out_dir)
    return paths
