"""The HTML page both reconciliation reports write: one self-contained file (inline style, no
scripts, no external resources) that opens with the run's facts, links each invoice to its first
page image and ends with the rows the imports could not use.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipeline.reconcile.outcomes import InvoiceRecord
from pipeline.reconcile.records import RowProblem

HTML_MAX_ROWS = 2000  # per table; the CSV and XLSX always hold everything

# The page's layout; each report adds the colours of its outcomes.
PAGE_CSS = """
body{font-family:-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}table{border-collapse:collapse;font-size:.85em;width:100%}
th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}th{background:#f3f3f3}
td.num{text-align:right;white-space:nowrap}.facts td{border:none;padding:.1em .8em .1em 0}
"""


def page_start(title: str, heading: str, css: str, facts: Iterable[tuple[str, str]]) -> list[str]:
    """The page's lines down to the summary's heading: ``css`` follows ``PAGE_CSS``, then come the
    heading and the run's facts (name, value). ``title`` and ``heading`` are text, not HTML."""
    e = html.escape
    return [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>{PAGE_CSS}{css}</style></head><body>",
        f"<h1>{e(heading)}</h1>",
        '<table class="facts">',
        *(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in facts),
        "</table>",
        "<h2>Summary 汇总</h2>",
    ]


def _href(url: str, base: Path) -> str:
    """A link the HTML can carry: relative to the report for a local file, as is otherwise."""
    if url.startswith("file://"):
        target = Path(unquote(urlsplit(url).path))
        try:
            return Path(os.path.relpath(target, base)).as_posix()
        except ValueError:  # another drive on Windows
            return url
    return url


def invoice_link(invoice: InvoiceRecord, links: Mapping[str, str], base: Path) -> str:
    """The invoice's file name (or the start of its ID) as HTML, linked to its page image when
    ``links`` has one; ``base`` is the report's folder."""
    e = html.escape
    name = e(invoice.source_name or invoice.document_id[:12])
    url = links.get(invoice.document_id)
    return f'<a href="{e(_href(url, base))}">{name}</a>' if url else name


def problems_section(
    title: str, lead_columns: Sequence[str], problems: Sequence[tuple[str, RowProblem]]
) -> list[str]:
    """The rows an import could not use, folded away under ``title`` (and their count): each
    problem's lead cells (HTML, under ``lead_columns``: where it is), its value and its message."""
    e = html.escape
    out = [f"<h2>{title} ({len(problems)})</h2>"]
    if not problems:
        out.append('<p class="note">none 无</p>')
        return out
    out.append("<details><summary>show 展开</summary><table>")
    out.append(
        "<tr>" + "".join(f"<th>{c}</th>" for c in (*lead_columns, "value 值", "problem 问题")) + "</tr>"
    )
    for lead, p in problems[:HTML_MAX_ROWS]:
        skipped = " (skipped 已跳过)" if p.skipped else ""
        out.append(
            f"<tr>{lead}<td>{e(p.value)}</td>"
            f'<td>{e(p.message)}{skipped}<br><span class="zh">{e(p.message_zh)}</span></td></tr>'
        )
    out.append("</table></details>")
    return out


def write_page(path: Path, lines: Sequence[str]) -> Path:
    """The page's lines, closed, as ``path``."""
    path.write_text("\n".join([*lines, "</body></html>"]), encoding="utf-8")
    return path
