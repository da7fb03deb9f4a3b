"""Three-way reconciliation: the invoices held (scanned), the ledger and the tax platform's list.

Every invoice known to any of the three gets one line: where it is present, its platform status,
one outcome code (the most serious that applies; the others are kept in ``also``), the differing
values and a reason in English and Chinese.

1. Held against the ledger: ``match.reconcile`` as before (exact keys, then rapidfuzz).
2. Each resulting invoice (the held document's values, or the ledger row's when nothing is held)
   against the platform's records, with the same matcher: code + number and 20-digit 数电
   numbers are exact keys, then near numbers with agreeing amounts, dates and sellers.
3. Red-letter invoices are linked to their blue invoice and netted (``redletter``).
4. The outcome, in this order of precedence (``LineOutcome``).

The platform decides whether an invoice exists: an invoice held or booked that the platform does
not list is ``not_on_platform`` only when its date lies inside the dates the exports cover.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

import numpy as np

from pipeline.reconcile.match import (
    _cached,
    _Matcher,
    _objects,
    _show,
    _total,
    canonical_id,
    normalize_name,
    reconcile,
)
from pipeline.reconcile.outcomes import (
    Difference,
    InvoiceRecord,
    Outcome,
    ReconcileOptions,
    Reconciliation,
)
from pipeline.reconcile.platform import STATUS_LABELS, PlatformInvoice, PlatformStatus
from pipeline.reconcile.redletter import RedInvoice, Reversal, blue_reference, net
from pipeline.reconcile.sources import FIELD_LABELS, FIELDS, LedgerRow

log = logging.getLogger(__name__)


class LineOutcome(StrEnum):
    """Stable outcome codes, most serious first (the order of precedence)."""

    NOT_ON_PLATFORM = "not_on_platform"
    VOIDED_BUT_BOOKED = "voided_but_booked"
    RED_REVERSED_BUT_BOOKED = "red_reversed_but_booked"
    ABNORMAL_BUT_BOOKED = "abnormal_but_booked"  # 失控 or 异常 on the platform
    PLATFORM_DIFFERS = "platform_differs"
    BOOKED_TWICE = "booked_twice"
    DEDUCTED_NOT_BOOKED = "deducted_not_booked"
    HIGH_RISK = "high_risk"
    PLATFORM_ONLY = "platform_only"
    ARRIVED_SEPARATELY = "arrived_separately"  # one invoice's files came in separately: reimbursed twice?
    DUPLICATE = "duplicate"  # scanned twice
    NOT_IN_LEDGER = "not_in_ledger"
    NO_INVOICE_SCANNED = "no_invoice_scanned"
    MATCHED_WITH_DIFFERENCES = "matched_with_differences"
    MATCHED = "matched"


LINE_LABELS: dict[str, tuple[str, str]] = {
    LineOutcome.NOT_ON_PLATFORM: ("not on the tax platform", "税务平台查无此票"),
    LineOutcome.VOIDED_BUT_BOOKED: ("booked, but voided on the platform", "已入账但平台显示作废"),
    LineOutcome.RED_REVERSED_BUT_BOOKED: ("booked, but red-reversed", "已入账但已红冲"),
    LineOutcome.ABNORMAL_BUT_BOOKED: ("booked, but 失控/异常 on the platform", "已入账但平台显示失控/异常"),
    LineOutcome.PLATFORM_DIFFERS: ("platform values differ", "与税务平台信息不一致"),
    LineOutcome.BOOKED_TWICE: ("booked twice", "重复入账"),
    LineOutcome.DEDUCTED_NOT_BOOKED: ("deducted, not booked", "已勾选抵扣但未入账"),
    LineOutcome.HIGH_RISK: ("high risk on the platform", "平台风险等级高"),
    LineOutcome.PLATFORM_ONLY: ("only on the platform", "仅税务平台有"),
    LineOutcome.ARRIVED_SEPARATELY: (
        "one invoice's files handed in separately",
        "同一张发票的文件分别提交（重复报销风险）",
    ),
    LineOutcome.DUPLICATE: ("scanned twice", "重复扫描"),
    LineOutcome.NOT_IN_LEDGER: ("not in the ledger", "台账中没有"),
    LineOutcome.NO_INVOICE_SCANNED: ("no invoice scanned", "无对应扫描发票"),
    LineOutcome.MATCHED_WITH_DIFFERENCES: ("matched with differences", "匹配但有差异"),
    LineOutcome.MATCHED: ("matched", "已匹配"),
}
_ORDER = list(LineOutcome)


@dataclass(slots=True)
class Line:
    """One invoice across the three sources."""

    outcome: LineOutcome
    invoice: InvoiceRecord | None = None
    ledger_row: LedgerRow | None = None
    platform: PlatformInvoice | None = None
    ledger_outcome: Outcome | None = None
    ledger_reason: tuple[str, str] = ("", "")
    differences: list[Difference] = field(default_factory=list)  # held vs ledger
    platform_differences: list[Difference] = field(default_factory=list)  # document vs platform
    also: tuple[LineOutcome, ...] = ()
    reversal: Reversal | None = None
    reverses: str | None = None  # red-letter: the blue invoice it reverses
    platform_judged: bool = True  # inside the dates the platform exports cover
    reason_en: str = ""
    reason_zh: str = ""
    related_document: str | None = None
    related_rows: tuple[int, ...] = ()
    score: float = 0.0
    documents: tuple[str, ...] = ()  # same invoice, several files: all their names
    arrived_separately: bool = False

    @property
    def in_held(self) -> bool:
        return self.invoice is not None

    @property
    def in_ledger(self) -> bool:
        return self.ledger_row is not None

    @property
    def in_platform(self) -> bool:
        return self.platform is not None

    @property
    def platform_status(self) -> str | None:
        return str(self.platform.status) if self.platform else None

    def _pick(self, name: str) -> Any:
        for source in (self.platform, self.invoice, self.ledger_row):
            if source is not None and source.value(name) is not None:
                return source.value(name)
        return None

    @property
    def invoice_code(self) -> str | None:
        return self._pick("invoice_code")

    @property
    def invoice_number(self) -> str | None:
        return self._pick("invoice_number")

    @property
    def issue_date(self) -> date | None:
        return self._pick("issue_date")

    @property
    def seller_name(self) -> str | None:
        return self._pick("seller_name")

    @property
    def total(self) -> Decimal | None:
        for source in (self.platform, self.invoice, self.ledger_row):
            if source is not None:
                found = _total(source.amount_excl_tax, source.tax_amount, source.total_amount)
                if found is not None:
                    return found
        return None

    @property
    def label(self) -> str:
        code, number = self.invoice_code, self.invoice_number
        return f"{code}/{number}" if code else (number or "?")

    def match_keys(self) -> list[tuple[str, str]]:
        out = []
        for source in (self.platform, self.invoice, self.ledger_row):
            if source is not None and source.invoice_number:
                number = canonical_id(source.invoice_number)
                out.append((canonical_id(source.invoice_code), number))
                if len(number) == 20:
                    out.append(("", number))
        return out

    @property
    def codes(self) -> tuple[LineOutcome, ...]:
        return (self.outcome, *self.also)


@dataclass
class ThreeWay:
    lines: list[Line]
    options: ReconcileOptions
    ledger_given: bool
    platform_given: bool
    ledger_result: Reconciliation
    platform_dates: tuple[date, date] | None = None
    seconds: float = 0.0
    # the other files of invoices held in several files: their line is the first file's
    copies: list[Line] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((str(code) for code in LineOutcome), 0)
        for line in self.lines:
            counts[str(line.outcome)] += 1
        return counts

    def summary(self) -> list[tuple[str, str, str, int, Decimal]]:
        """(code, English, Chinese, count, amount incl. tax) per outcome that occurs."""
        amounts: dict[str, Decimal] = defaultdict(Decimal)
        counts: dict[str, int] = defaultdict(int)
        for line in self.lines:
            counts[line.outcome] += 1
            amounts[line.outcome] += line.total or Decimal(0)
        return [
            (str(code), *LINE_LABELS[code], counts[code], amounts[code])
            for code in LineOutcome
            if counts.get(code)
        ]

    def of(self, outcome: LineOutcome | str) -> list[Line]:
        return [line for line in self.lines if line.outcome == outcome]


# ---- building the lines ------------------------------------------------------------------------------


@dataclass(slots=True)
class _RowAnchor:
    """A lone ledger row in the shape the matcher takes for its first side (cheaper than an
    ``InvoiceRecord``: 90,000 of them are made in a big run)."""

    document_id: str
    invoice_code: str | None
    invoice_number: str | None
    issue_date: date | None
    amount_excl_tax: Decimal | None
    tax_amount: Decimal | None
    total_amount: Decimal | None
    seller_name: str | None
    seller_tax_id: str | None
    buyer_name: str | None
    buyer_tax_id: str | None
    status: str = "ok"
    ingested_at: float = 0.0
    review_fields: tuple[str, ...] = ()

    def value(self, name: str) -> Any:
        return getattr(self, name)


def _anchor(line: Line, k: int) -> Any:
    """The values the platform is checked against: the held document's, else the ledger row's."""
    if line.invoice is not None:
        return line.invoice
    row = line.ledger_row
    assert row is not None
    return _RowAnchor(
        f"ledger-row-{row.row_number}-{k}",
        row.invoice_code,
        row.invoice_number,
        row.issue_date,
        row.amount_excl_tax,
        row.tax_amount,
        row.total_amount,
        row.seller_name,
        row.seller_tax_id,
        row.buyer_name,
        row.buyer_tax_id,
    )


def _lines_from_ledger(result: Reconciliation, ledger_given: bool) -> list[Line]:
    lines = []
    for entry in result.entries:
        reason = (
            (entry.reason_en, entry.reason_zh)
            if ledger_given or entry.outcome == Outcome.DUPLICATE
            else ("", "")
        )
        lines.append(
            Line(
                outcome=LineOutcome.MATCHED,
                invoice=entry.invoice,
                ledger_row=entry.ledger_row if entry.outcome != Outcome.NOT_IN_LEDGER else None,
                ledger_outcome=entry.outcome,
                ledger_reason=reason,
                differences=list(entry.differences),
                related_document=entry.related_document,
                related_rows=entry.related_rows,
                score=entry.score,
                documents=entry.documents,
                arrived_separately=entry.arrived_separately,
            )
        )
    return lines


def _is_scan_copy(line: Line) -> bool:
    return line.ledger_outcome == Outcome.DUPLICATE and line.related_document is not None


def _is_booking_copy(line: Line) -> bool:
    return line.ledger_outcome == Outcome.DUPLICATE and line.invoice is None


def _fen_column(records: Sequence[Any], name: str) -> tuple[np.ndarray, np.ndarray]:
    values = [record.value(name) for record in records]
    known = np.array([v is not None for v in values], dtype=bool)
    fen = np.array([int(v * 100) if v is not None else 0 for v in values], dtype=np.int64)
    return fen, known


def _texts_differ(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x != "") & (y != "") & (x != y)


def _platform_differences(
    matcher: _Matcher, inv: np.ndarray, led: np.ndarray, options: ReconcileOptions
) -> list[list[Difference]]:
    """Per matched pair (anchor inv[k], platform row led[k]): the fields both have that differ.

    Vectorised over the matcher's columns (canonical numbers and IDs, normalised seller names,
    amounts in fen, dates as ordinals); buyer fields and the tax are read for the pairs only."""
    a, b = matcher.inv, matcher.led
    anchors = [matcher.invoices[i] for i in inv.tolist()]
    rows = [matcher.ledger[r] for r in led.tolist()]
    if not anchors:
        return []
    tol = float(options.amount_tolerance) * 100 + 1e-6
    differing: dict[str, np.ndarray] = {
        "invoice_code": _texts_differ(a.code[inv], b.code[led]),
        "invoice_number": _texts_differ(a.number[inv], b.number[led]),
        "seller_name": _texts_differ(a.name[inv], b.name[led]),
        "seller_tax_id": (a.tax_id[inv] > 0) & (b.tax_id[led] > 0) & (a.tax_id[inv] != b.tax_id[led]),
        "issue_date": a.date_known[inv]
        & b.date_known[led]
        & (np.abs(a.date[inv] - b.date[led]) > options.date_window_days),
        "amount_excl_tax": a.excl_known[inv] & b.excl_known[led] & (np.abs(a.excl[inv] - b.excl[led]) > tol),
    }
    for name in ("tax_amount", "total_amount"):
        x, x_known = _fen_column(anchors, name)
        y, y_known = _fen_column(rows, name)
        differing[name] = x_known & y_known & (np.abs(x - y) > tol)
    for name, function in (("buyer_name", normalize_name), ("buyer_tax_id", canonical_id)):
        x_text = _objects(_cached(function, (r.value(name) for r in anchors)))
        y_text = _objects(_cached(function, (r.value(name) for r in rows)))
        differing[name] = _texts_differ(x_text, y_text)
    names = [name for name in FIELDS if name in differing]  # listed in the ledger's field order
    table = np.stack([differing[name] for name in names], axis=1)
    out: list[list[Difference]] = [[] for _ in range(len(anchors))]
    for k in np.flatnonzero(table.any(axis=1)).tolist():
        for column in np.flatnonzero(table[k]).tolist():
            name = names[column]
            out[k].append(
                Difference(name, _show(name, anchors[k].value(name)), _show(name, rows[k].value(name)))
            )
    return out


def _match_platform(
    lines: list[Line], platform: Sequence[PlatformInvoice], options: ReconcileOptions
) -> list[Line]:
    """Attach each platform record to its line; records no line claims become lines of their own.

    The ledger's matcher without its reasons: exact keys, then rapidfuzz candidates, one-to-one."""
    anchored = [k for k, line in enumerate(lines) if not _is_scan_copy(line) and not _is_booking_copy(line)]
    anchors = [_anchor(lines[k], k) for k in anchored]
    # the platform's records have every attribute the matcher reads from its second side
    matcher = _Matcher(anchors, list(platform), replace(options, date_from=None, date_to=None))
    matcher.group_scans()
    matcher.group_bookings()
    matcher.match_exact()
    matcher.match_fuzzy()
    matcher.late_duplicates()
    inv_to_row = matcher.inv_to_row.tolist()
    for i, head in enumerate(matcher.scan_of.tolist()):
        if head >= 0 and inv_to_row[i] < 0:
            inv_to_row[i] = inv_to_row[head]  # two lines name one invoice: both are on the platform
    pairs = [(i, r) for i, r in enumerate(inv_to_row) if r >= 0]
    pair_inv = np.array([i for i, _ in pairs], dtype=np.int64)
    pair_led = np.array([r for _, r in pairs], dtype=np.int64)
    differences = _platform_differences(matcher, pair_inv, pair_led, options)
    for (i, r), found in zip(pairs, differences, strict=True):
        line = lines[anchored[i]]
        line.platform = platform[r]
        line.platform_differences = found
    claimed = set(inv_to_row)
    repeats = matcher.booking_of.tolist()
    extra = [
        Line(outcome=LineOutcome.PLATFORM_ONLY, platform=record)
        for r, record in enumerate(platform)
        if r not in claimed and (repeats[r] < 0 or repeats[r] not in claimed)
    ]
    # copies follow their original: a second scan, a second booking
    by_document_line = {line.invoice.document_id: line for line in lines if line.invoice is not None}
    by_row_line = {line.ledger_row.row_number: line for line in lines if line.ledger_row is not None}
    for line in lines:
        if _is_scan_copy(line) and line.related_document in by_document_line:
            line.platform = by_document_line[line.related_document].platform
        elif _is_booking_copy(line):
            for row in line.related_rows:
                head = by_row_line.get(row)
                if head is not None and head is not line:
                    line.platform = head.platform
                    break
    return lines + extra


def _red_reference(line: Line) -> tuple[str, str] | None:
    """The blue invoice a red-letter line names (remarks, XML Original* fields), or None."""
    p, inv = line.platform, line.invoice
    has_note = (p is not None and p.remarks) or (
        inv is not None and (inv.remarks or inv.original_invoice_number)
    )
    if not has_note:
        return None
    reference = blue_reference(
        [p.remarks if p else None, inv.remarks if inv else None],
        inv.original_invoice_code if inv else None,
        inv.original_invoice_number if inv else None,
    )
    # The remark patterns are printed on red-letter invoices only, so a reference makes one, even
    # where OCR lost the minus sign; unless the platform itself says the invoice is a blue one.
    if reference is not None and p is not None and p.positive is True and not p.is_red:
        return None
    return reference


def _link_red_letters(lines: list[Line], tolerance: Decimal) -> None:
    """Red-letter lines name their blue line (``reverses``); blue lines get a ``Reversal``."""
    red_lines = []
    for line in lines:
        if _is_scan_copy(line) or _is_booking_copy(line):
            continue
        reference = _red_reference(line)
        if reference is not None:
            red_lines.append((line, reference))
    reds: dict[int, list[RedInvoice]] = defaultdict(list)
    if red_lines:
        wanted = {reference for _, reference in red_lines} | {("", ref[1]) for _, ref in red_lines}
        by_key: dict[tuple[str, str], Line] = {}
        for line in lines:
            if _is_scan_copy(line) or _is_booking_copy(line):
                continue
            for key in line.match_keys():
                if key in wanted:
                    by_key.setdefault(key, line)
        for line, reference in red_lines:
            blue = by_key.get(reference) or (
                by_key.get(("", reference[1])) if len(reference[1]) == 20 else None
            )
            if blue is None or blue is line:
                line.reverses = f"{reference[0]}/{reference[1]}" if reference[0] else reference[1]
                continue
            line.reverses = blue.label
            amount = abs(line.total or Decimal(0))
            reds[id(blue)].append(RedInvoice(line.label, line.issue_date, amount, line.in_ledger))
    for line in lines:
        status = line.platform.status if line.platform else None
        if id(line) in reds:
            line.reversal = net(line.total, reds[id(line)])
        elif status == PlatformStatus.RED_REVERSED:
            line.reversal = Reversal(line.total, (), line.total, by_status_only=True)
        elif status == PlatformStatus.PARTLY_RED_REVERSED:
            line.reversal = Reversal(line.total, (), None, by_status_only=True)


def _platform_dates(platform: Sequence[PlatformInvoice]) -> tuple[date, date] | None:
    dates = [p.issue_date for p in platform if p.issue_date is not None]
    return (min(dates), max(dates)) if dates else None


_INVALID = (PlatformStatus.OUT_OF_CONTROL, PlatformStatus.ABNORMAL)


def _codes(line: Line, ledger_given: bool, platform_given: bool, tolerance: Decimal) -> list[LineOutcome]:
    codes: list[LineOutcome] = []
    p = line.platform
    known = line.in_held or line.in_ledger
    in_use = line.in_ledger if ledger_given else line.in_held
    if _is_scan_copy(line):
        return [LineOutcome.DUPLICATE]
    if platform_given and p is None and known and line.platform_judged:
        codes.append(LineOutcome.NOT_ON_PLATFORM)
    if p is not None and in_use:
        if p.status == PlatformStatus.VOIDED:
            codes.append(LineOutcome.VOIDED_BUT_BOOKED)
        if p.status in _INVALID:
            codes.append(LineOutcome.ABNORMAL_BUT_BOOKED)
    if in_use and line.reversal is not None:
        unbooked = line.reversal.unbooked_amount if ledger_given else line.reversal.reversed_amount
        if unbooked is None or unbooked > tolerance:
            codes.append(LineOutcome.RED_REVERSED_BUT_BOOKED)
    if p is not None and known and line.platform_differences:
        codes.append(LineOutcome.PLATFORM_DIFFERS)
    if line.ledger_outcome == Outcome.DUPLICATE and (line.related_rows or line.invoice is None):
        codes.append(LineOutcome.BOOKED_TWICE)
    if ledger_given and p is not None and p.deducted and not line.in_ledger:
        codes.append(LineOutcome.DEDUCTED_NOT_BOOKED)
    if p is not None and p.high_risk:
        codes.append(LineOutcome.HIGH_RISK)
    if p is not None and not known:
        codes.append(LineOutcome.PLATFORM_ONLY)
    if ledger_given and line.in_held and not line.in_ledger:
        codes.append(LineOutcome.NOT_IN_LEDGER)
    if line.in_ledger and not line.in_held and line.ledger_outcome != Outcome.DUPLICATE:
        codes.append(LineOutcome.NO_INVOICE_SCANNED)
    if line.arrived_separately:
        codes.append(LineOutcome.ARRIVED_SEPARATELY)
    if line.ledger_outcome == Outcome.MATCHED_WITH_DIFFERENCES:
        codes.append(LineOutcome.MATCHED_WITH_DIFFERENCES)
    if not codes:
        codes.append(LineOutcome.MATCHED)
    codes.sort(key=_ORDER.index)
    return codes


# ---- reasons -------------------------------------------------------------------------------------------


def _where(line: Line, ledger_given: bool) -> tuple[str, str]:
    en, zh = [], []
    if line.in_held and len(line.documents) > 1:
        names = ", ".join(line.documents)
        en.append(f"held in {len(line.documents)} files ({names})")
        zh.append(f"有纸质/电子发票，共{len(line.documents)}个文件（{names}）")
    elif line.in_held:
        en.append(f"held ({line.invoice.source_name})")  # type: ignore[union-attr]
        zh.append(f"有纸质/电子发票（{line.invoice.source_name}）")  # type: ignore[union-attr]
    if line.in_ledger:
        en.append(f"booked (ledger row {line.ledger_row.row_number})")  # type: ignore[union-attr]
        zh.append(f"已入账（台账第{line.ledger_row.row_number}行）")  # type: ignore[union-attr]
    if line.platform is not None:
        label = STATUS_LABELS[line.platform.status]
        en.append(f"on the tax platform ({line.platform.where}, {label[0]})")
        zh.append(f"税务平台有此票（{line.platform.where}，{label[1]}）")
    return ", ".join(en), "，".join(zh)


def _differences(diffs: Sequence[Difference], zh: bool) -> str:
    out = []
    empty = "（空）" if zh else "(empty)"
    for d in diffs:
        label = FIELD_LABELS[d.field][1 if zh else 0]
        doc = d.invoice_value if d.invoice_value is not None else empty
        plat = d.ledger_value if d.ledger_value is not None else empty
        out.append(
            f"{label}（票面 {doc}，平台 {plat}）" if zh else f"{label} (document {doc}, platform {plat})"
        )
    return ("；" if zh else "; ").join(out)


def _reason(line: Line, code: LineOutcome, ledger_given: bool, tolerance: Decimal) -> tuple[str, str]:
    p = line.platform
    booked_en = "Booked" if ledger_given else "Held"
    booked_zh = "已入账" if ledger_given else "持有该发票"
    if code == LineOutcome.NOT_ON_PLATFORM:
        number = line.label
        if line.in_held and line.in_ledger:
            return (
                f"Held and booked, but the tax platform has no invoice {number}: check its authenticity "
                "with the issuer.",
                f"纸质发票已入账，但税务平台查无此票（{number}）：请向开票方核实真伪。",
            )
        if line.in_held:
            return (
                f"Held, but the tax platform has no invoice {number}: check its authenticity with the issuer.",
                f"持有发票，但税务平台查无此票（{number}）：请向开票方核实真伪。",
            )
        return (
            f"Booked, but the tax platform has no invoice {number}: check the booking and the invoice.",
            f"已入账，但税务平台查无此票（{number}）：请核实入账凭证与发票。",
        )
    if code == LineOutcome.VOIDED_BUT_BOOKED:
        return (
            f"{booked_en}, but the tax platform says invoice {line.label} was voided (作废).",
            f"{booked_zh}，但税务平台显示发票 {line.label} 已作废。",
        )
    if code == LineOutcome.RED_REVERSED_BUT_BOOKED:
        assert line.reversal is not None
        return (
            f"{booked_en}, but invoice {line.label} is {line.reversal.describe(tolerance)}.",
            f"{booked_zh}，但发票 {line.label} 已红冲：{line.reversal.describe(tolerance, zh=True)}。",
        )
    if code == LineOutcome.ABNORMAL_BUT_BOOKED:
        assert p is not None
        en, zh = STATUS_LABELS[p.status]
        return (
            f"{booked_en}, but the tax platform's status of invoice {line.label} is {en}: it may not be deducted.",
            f"{booked_zh}，但税务平台显示发票 {line.label} 状态为{zh}：不得抵扣。",
        )
    if code == LineOutcome.PLATFORM_DIFFERS:
        return (
            "The tax platform's values differ from the document (a misread, or a tampered paper copy): "
            + _differences(line.platform_differences, False)
            + ".",
            "税务平台信息与票面不一致（识别错误，或纸质发票被篡改）："
            + _differences(line.platform_differences, True)
            + "。",
        )
    if code == LineOutcome.DEDUCTED_NOT_BOOKED:
        assert p is not None
        when = f" on {p.deducted_on}" if p.deducted_on else ""
        when_zh = f"（{p.deducted_on}）" if p.deducted_on else ""
        return (
            f"Selected for deduction (勾选) on the tax platform{when}, but not booked in the ledger.",
            f"税务平台已勾选抵扣{when_zh}，但台账中没有入账。",
        )
    if code == LineOutcome.HIGH_RISK:
        assert p is not None
        return (
            f"The tax platform rates invoice {line.label} as {p.risk} (发票风险等级): check it before deducting.",
            f"税务平台发票风险等级为{p.risk}：抵扣前请核实。",
        )
    if code == LineOutcome.PLATFORM_ONLY:
        if ledger_given:
            return (
                f"On the tax platform ({p.where}) but neither booked nor held." if p else "",
                f"税务平台有此票（{p.where}），但既未入账也无发票原件。" if p else "",
            )
        return (
            f"On the tax platform ({p.where}) but not held (no scanned invoice)." if p else "",
            f"税务平台有此票（{p.where}），但没有对应的发票原件。" if p else "",
        )
    if code == LineOutcome.ARRIVED_SEPARATELY:
        names = ", ".join(line.documents)
        return (
            f"Invoice {line.label} is held in {len(line.documents)} files that arrived separately "
            f"({names}): check it is not reimbursed twice.",
            f"发票 {line.label} 有{len(line.documents)}个文件，分别提交（{names}）：请核实是否重复报销。",
        )
    if line.ledger_reason[0]:
        return line.ledger_reason
    if code == LineOutcome.MATCHED:
        return ("On the tax platform with the same values.", "税务平台信息一致。")
    return ("", "")


def _describe(line: Line, ledger_given: bool, tolerance: Decimal) -> None:
    en, zh = _reason(line, line.outcome, ledger_given, tolerance)
    where_en, where_zh = _where(line, ledger_given)
    notes_en, notes_zh = [], []
    for code in line.also:
        extra_en, extra_zh = _reason(line, code, ledger_given, tolerance)
        if extra_en and extra_en != en:
            notes_en.append(extra_en)
            notes_zh.append(extra_zh)
    if line.reverses:
        notes_en.append(f"A red-letter invoice reversing {line.reverses}.")
        notes_zh.append(f"红字发票，冲销 {line.reverses}。")
    if not line.platform_judged:
        notes_en.append(
            "Its date lies outside the dates the tax-platform exports cover, so it was not looked for there."
        )
        notes_zh.append("开票日期不在税务平台导出的日期范围内，未在平台中核对。")
    line.reason_en = " ".join(
        part for part in (en, *notes_en, f"Where: {where_en}." if where_en else "") if part
    )
    line.reason_zh = "".join(
        part for part in (zh, *notes_zh, f"所在：{where_zh}。" if where_zh else "") if part
    )


def reconcile_three_way(
    invoices: Sequence[InvoiceRecord],
    ledger: Sequence[LedgerRow] | None,
    platform: Sequence[PlatformInvoice] | None,
    options: ReconcileOptions | None = None,
    platform_dates: tuple[date, date] | None = None,
) -> ThreeWay:
    """One line per invoice across the held invoices, the ledger rows and the platform's records.

    ``ledger`` or ``platform`` may be None (not given); at least one of them should be.
    ``platform_dates``: the dates the exports cover, when ``platform`` is a part of them (a re-match).
    """
    options = options or ReconcileOptions()
    started = time.perf_counter()
    ledger_result = reconcile(invoices, ledger or [], options)
    lines = _lines_from_ledger(ledger_result, ledger is not None)
    dates = None
    if platform is not None:
        if options.date_from or options.date_to:
            platform = [
                p
                for p in platform
                if p.issue_date is None
                or (
                    (not options.date_from or p.issue_date >= options.date_from)
                    and (not options.date_to or p.issue_date <= options.date_to)
                )
            ]
        lines = _match_platform(lines, platform, options)
        dates = platform_dates or _platform_dates(platform)
        if dates is not None:
            for line in lines:
                when = (line.invoice or line.ledger_row or line).issue_date if not line.in_platform else None
                if when is not None and not dates[0] <= when <= dates[1]:
                    line.platform_judged = False
    _link_red_letters(lines, options.amount_tolerance)
    # same invoice, several files: counted once, on its first file's line (which lists them)
    copies = [line for line in lines if _is_scan_copy(line)]
    lines = [line for line in lines if not _is_scan_copy(line)]
    for line in copies:
        line.outcome = LineOutcome.DUPLICATE
        _describe(line, ledger is not None, options.amount_tolerance)
    for line in lines:
        codes = _codes(line, ledger is not None, platform is not None, options.amount_tolerance)
        line.outcome, line.also = codes[0], tuple(codes[1:])
        _describe(line, ledger is not None, options.amount_tolerance)
    lines.sort(
        key=lambda line: (
            _ORDER.index(line.outcome),
            line.ledger_row.row_number if line.ledger_row else 1 << 40,
            line.invoice.document_id if line.invoice else "",
            line.platform.where if line.platform else "",
        )
    )
    result = ThreeWay(
        lines,
        options,
        ledger is not None,
        platform is not None,
        ledger_result,
        dates,
        time.perf_counter() - started,
        copies,
    )
    log.info("three-way reconciliation of %d lines in %.2fs: %s", len(lines), result.seconds, result.counts())
    return result


__all__ = ["LINE_LABELS", "Line", "LineOutcome", "ThreeWay", "reconcile_three_way"]
