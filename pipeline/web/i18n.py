"""Labels of the web app in English and Chinese; the browser's Accept-Language picks, a switch overrides."""

from __future__ import annotations

LANGUAGES = ("en", "zh")

# key: (English, 中文)
_LABELS: dict[str, tuple[str, str]] = {
    "app": ("Invoices", "发票"),
    "search": ("Search", "搜索"),
    "invoice": ("Invoice", "发票详情"),
    "statistics": ("Statistics", "统计"),
    "review": ("Review", "复核"),
    "folder": ("Batches & hot folder", "批次与热文件夹"),
    "help": ("Help", "帮助"),
    "language": ("中文", "English"),
    "search_box": (
        "Number, code, seller or buyer, taxpayer ID, amount, or any text on the page",
        "发票号码、代码、销售方或购买方、纳税人识别号、金额或票面上的任意文字",
    ),
    "go": ("Search", "搜索"),
    "filters": ("Filters", "筛选"),
    "date_from": ("Issued from", "开票日期从"),
    "date_to": ("to", "至"),
    "amount_min": ("Total from", "价税合计从"),
    "amount_max": ("to", "至"),
    "kind": ("Kind", "票种"),
    "status": ("Status", "状态"),
    "outcome": ("Reconciliation outcome", "核对结果"),
    "platform_status": ("Tax-platform status", "税务平台状态"),
    "needs_review": ("Needs review", "待复核"),
    "source": ("File name contains", "文件名包含"),
    "batch": ("Ingested on", "入库日期"),
    "any": ("any", "全部"),
    "apply": ("Apply", "应用"),
    "clear_filters": ("Clear", "清除"),
    "results": ("results", "条结果"),
    "no_results": ("No invoice matches.", "没有符合条件的发票。"),
    "page": ("Page", "第"),
    "of": ("of", "页，共"),
    "previous": ("← Previous", "← 上一页"),
    "next": ("Next →", "下一页 →"),
    "export": ("Export", "导出"),
    "date": ("Date", "开票日期"),
    "number": ("Number", "发票号码"),
    "seller": ("Seller", "销售方"),
    "buyer": ("Buyer", "购买方"),
    "total": ("Total", "价税合计"),
    "amount": ("Amount", "金额"),
    "tax": ("Tax", "税额"),
    "count": ("Invoices", "张数"),
    "file": ("File", "文件"),
    "ingested": ("Ingested", "入库时间"),
    "field": ("Field", "字段"),
    "value": ("Value", "值"),
    "confidence": ("Confidence", "置信度"),
    "source_of_value": ("Source", "来源"),
    "reasons": ("Why it needs review", "需复核原因"),
    "correct": ("Correct", "更正"),
    "save": ("Save", "保存"),
    "cancel": ("Cancel", "取消"),
    "rules": ("Rule results", "规则校验"),
    "passed": ("passed", "通过"),
    "failed_rule": ("failed", "未通过"),
    "ledger": ("Ledger", "台账"),
    "not_reconciled": ("Not reconciled yet.", "尚未与台账核对。"),
    "differences": ("Differing values", "不一致的值"),
    "invoice_value": ("Invoice", "发票"),
    "tax_platform": ("Tax platform (three-way)", "税务平台（三方核对）"),
    "not_reconciled_platform": (
        "Not in the last three-way reconciliation (`invoices reconcile --tax-platform`).",
        "不在最近一次三方核对中（invoices reconcile --tax-platform）。",
    ),
    "held": ("held", "已收票"),
    "in_ledger": ("in the ledger", "台账"),
    "on_platform": ("on the platform", "税务平台"),
    "present": ("present", "有"),
    "absent": ("missing", "无"),
    "also_applies": ("also", "另有"),
    "document_value": ("Document", "票面"),
    "platform_value": ("Platform", "平台"),
    "reversed_amount": ("red-reversed", "已红冲金额"),
    "remaining_amount": ("remains", "剩余金额"),
    "deducted": ("deducted (抵扣勾选)", "已勾选抵扣"),
    "risk": ("risk", "风险等级"),
    "via_file": ("through the file", "来自同票文件"),
    "other_files": ("Other files of this invoice", "同一张发票的其他文件"),
    "no_other_files": ("No other file of this invoice is stored.", "没有同一张发票的其他文件。"),
    "arrived_separately": (
        "These files arrived separately: check the invoice is not reimbursed twice.",
        "这些文件是分别提交的：注意重复报销。",
    ),
    "arrived_together": ("These files arrived together.", "这些文件是一起提交的。"),
    "files": ("files", "个文件"),
    "ledger_value": ("Ledger", "台账"),
    "history": ("Corrections (audit)", "更正记录（审计）"),
    "no_history": ("No correction yet.", "暂无更正。"),
    "when": ("When", "时间"),
    "who": ("Reviewer", "复核人"),
    "action": ("Action", "操作"),
    "old_value": ("Before", "原值"),
    "new_value": ("After", "新值"),
    "downloads": ("Downloads", "下载"),
    "original": ("Original file", "原始文件"),
    "result_json": ("Result JSON", "结果 JSON"),
    "pages": ("Pages", "页"),
    "item_lines": ("Items", "明细"),
    "months": ("Per month of issue", "按开票月份"),
    "sellers": ("Per seller (top 20 by total)", "按销售方（价税合计前 20）"),
    "rates": ("Per tax rate (tax ÷ amount)", "按税率（税额 ÷ 金额）"),
    "kinds": ("Per kind", "按票种"),
    "quality": (
        "Review, failure and not-in-ledger rates per month of ingestion",
        "按入库月份：复核率、失败率、台账缺失率",
    ),
    "month": ("Month", "月份"),
    "rate": ("Rate", "税率"),
    "documents": ("Documents", "文档数"),
    "reviewed": ("Needed review", "需复核"),
    "review_rate": ("Review rate", "复核率"),
    "failed": ("Failed", "失败"),
    "failure_rate": ("Failure rate", "失败率"),
    "not_in_ledger": ("Not in ledger", "台账缺失"),
    "not_in_ledger_rate": ("Not-in-ledger rate", "台账缺失率"),
    "selection": ("Selection", "所选范围"),
    "failures_whole_store": (
        "Failures are counted for the whole store (a failed file has no invoice fields to filter by).",
        "失败数按整个存储统计（失败文件没有可筛选的发票字段）。",
    ),
    "folder_none": (
        "No hot folder: start with `invoices serve --folder DIR` to see and retry its files.",
        "未指定热文件夹：使用 `invoices serve --folder 目录` 启动即可查看并重试其中的文件。",
    ),
    "states": ("Files per state", "各状态文件数"),
    "inbox": ("Inbox", "待处理"),
    "processing": ("Processing", "处理中"),
    "done": ("Done", "已完成"),
    "failed_files": ("Failed files", "失败文件"),
    "no_failed": ("No failed file.", "没有失败文件。"),
    "reason": ("Reason", "原因"),
    "retry": ("Retry", "重试"),
    "retried": ("moved back to the inbox", "已移回待处理"),
    "store_counts": ("Documents in the store", "存储中的文档"),
    "batches": ("Batches (per day of ingestion)", "批次（按入库日期）"),
    "day": ("Day", "日期"),
    "recent": ("Last documents processed", "最近处理的文档"),
    "seconds": ("Seconds", "耗时（秒）"),
    "pages_per_second": ("Pages/s", "页/秒"),
    "size": ("Size", "大小"),
    "forbidden": ("forbidden: wrong or missing token", "禁止访问：令牌错误或缺失"),
    "not_found": ("Not found", "未找到"),
    "shortcuts": (
        "/ search · g s statistics · g r review · g f hot folder · ? help",
        "/ 搜索 · g s 统计 · g r 复核 · g f 热文件夹 · ? 帮助",
    ),
    "ok": ("ok", "通过"),
    "needs_review_status": ("needs review", "待复核"),
    "not_an_invoice": ("not an invoice", "非发票"),
    "matched": ("matched", "已匹配"),
    "matched_with_differences": ("matched with differences", "匹配但有差异"),
    "duplicate": ("duplicate", "重复"),
    "no_invoice_scanned": ("no invoice scanned", "无对应发票"),
    "missing": ("missing", "缺失"),
    "sort": ("Sort", "排序"),
    "help_text": (
        "Type any key of an invoice in the search box: its number or code, part of the seller's or "
        "buyer's name (a misread character still matches), a taxpayer ID, the total (1234.50) or any "
        "word on the page. Filters narrow the list; the address holds the search, so it can be "
        "bookmarked or sent to a colleague. Open an invoice to see its pages with each field's box, "
        "why a field needs review, the rules and the ledger, and to correct a field.",
        "在搜索框中输入发票的任意信息：发票号码或代码、销售方或购买方名称的一部分（识别错一个字也能找到）、"
        "纳税人识别号、价税合计（如 1234.50）或票面上的任何文字。筛选条件可缩小范围；网址中保存了搜索条件，"
        "可以收藏或发给同事。打开一张发票可查看页面及各字段位置、需复核的原因、规则校验和台账核对结果，并更正字段。",
    ),
}


def pick_language(accept_language: str | None) -> str:
    """``zh`` when the browser prefers Chinese over English, else ``en``."""
    best, best_q = "en", -1.0
    for part in (accept_language or "").split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def _reconcile_labels() -> dict[str, tuple[str, str]]:
    """The three-way outcome codes and tax-platform statuses (``platform_<status>``), as reconcile names them."""
    from pipeline.reconcile.platform import STATUS_LABELS
    from pipeline.reconcile.threeway import LINE_LABELS

    out = {str(code): pair for code, pair in LINE_LABELS.items() if str(code) not in _LABELS}
    out.update({f"platform_{status}": pair for status, pair in STATUS_LABELS.items()})
    return out


def labels(language: str) -> dict[str, str]:
    n = 1 if language == "zh" else 0
    if not _EXTRA:
        _EXTRA.update(_reconcile_labels())
    return {key: pair[n] for key, pair in (*_LABELS.items(), *_EXTRA.items())}


_EXTRA: dict[str, tuple[str, str]] = {}
