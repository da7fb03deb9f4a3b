"""Reconciliation: the scanned invoices against the company's ledger, with an outcome for each.

Every invoice gets one outcome and so does every ledger row no invoice claims:

``matched``                   found in the ledger, every compared field agrees
``matched_with_differences``  found, but fields differ (each listed with both values)
``not_in_ledger``             no ledger row is this invoice
``duplicate``                 the invoice was scanned twice, or the ledger books it twice
``no_invoice_scanned``        (ledger rows) no scanned invoice for this row

How rows are found, cheapest first:

1. Scanned twice: invoices with the same code and number (after OCR-confusion normalisation) are
   one invoice; the best scan is reconciled, the others are ``duplicate``. The same for ledger
   rows booked twice.
2. Exact key: code + number (or the 20-digit number of a 全电 invoice), a dict join. Numbers and
   IDs are compared in a canonical form where OCR look-alikes (0/O/D/Q, 1/I/l/L, 2/Z, 5/S, 8/B,
   6/G) are one character.
3. Fuzzy, for what is left: candidate pairs come from blocks (the same amount within the
   tolerance, found by a sorted search; and numbers within two edits, from
   ``rapidfuzz.process.cdist`` inside blocks of equal number length). Each pair is scored with
   ``rapidfuzz.process.cpdist`` (numbers: optimal string alignment, so a transposition is one
   edit; names: ratio of normalised names, where full/half-width brackets, spaces and
   有限责任公司/有限公司 do not count). A pair is accepted only with two independent agreements
   (e.g. a number one typo away and the same amount), then pairs are assigned one-to-one,
   best score first, so no ledger row is used twice.

Outcomes are written to the index database (``save_outcomes``) in the ``reconciliation`` table,
with the ledger rows (``ledger_rows``) and the options of the run (``reconciliation_options``).
After a review correction ``rematch_document`` re-matches one invoice against the ledger rows no other
invoice claims, and ``ledger_values`` gives the matched row's values beside the invoice's.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from pipeline.reconcile.sources import AMOUNT_FIELDS, FIELD_LABELS, FIELDS, LedgerRow
from pipeline.store.invoices import arrived_separately

if TYPE_CHECKING:
    pass

from pipeline.reconcile.outcomes import (
    Difference,
    Entry,
    InvoiceRecord,
    Outcome,
    ReconcileOptions,
    Reconciliation,
)

log = logging.getLogger(__name__)


# ---- normalisation ----------------------------------------------------------------------------------

_LOOKALIKES = str.maketrans(
    {"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "|": "1", "Z": "2", "S": "5", "B": "8", "G": "6"}
)
_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")
_NAME_PUNCT = re.compile(r"[\s\W_]+")
_EN_COMPANY_WORDS = (
    (re.compile(r"\bcompany limited\b"), "co ltd"),
    (re.compile(r"\blimited\b"), "ltd"),
    (re.compile(r"\bcompany\b"), "co"),
    (re.compile(r"\bcorporation\b"), "corp"),
    (re.compile(r"\bincorporated\b"), "inc"),
)


@functools.lru_cache(maxsize=1 << 18)
def canonical_id(value: str | None) -> str:
    """Codes, numbers and tax IDs compared as equal when they differ only by OCR look-alikes or spacing.
    (Cached: a three-way run asks for the same numbers from several sides.)"""
    if not value:
        return ""
    s = unicodedata.normalize("NFKC", value).upper().translate(_LOOKALIKES)
    return _NOT_ALNUM.sub("", s)


@functools.lru_cache(maxsize=1 << 16)
def normalize_name(value: str | None) -> str:
    """Company names without width, bracket, spacing, case and 有限责任公司/有限公司 differences."""
    if not value:
        return ""
    s = _NAME_PUNCT.sub(" ", unicodedata.normalize("NFKC", value).lower())
    for pattern, short in _EN_COMPANY_WORDS:
        s = pattern.sub(short, s)
    return s.replace(" ", "").replace("有限责任公司", "有限公司")


def _cached(function: Any, values: Iterable[str | None]) -> list[str]:
    cache: dict[str | None, str] = {}
    out = []
    for value in values:
        found = cache.get(value)
        if found is None:
            found = cache[value] = function(value)
        out.append(found)
    return out


def _fen(values: Sequence[Decimal | None]) -> tuple[np.ndarray, np.ndarray]:
    known = np.array([v is not None for v in values], dtype=bool)
    fen = np.array([int(v * 100) if v is not None else 0 for v in values], dtype=np.int64)
    return fen, known


def _total(excl: Decimal | None, tax: Decimal | None, total: Decimal | None) -> Decimal | None:
    if total is not None:
        return total
    if excl is not None and tax is not None:
        return excl + tax
    return None


@dataclass
class _Side:
    """Column arrays of one side (invoices or ledger rows), aligned by position."""

    number: np.ndarray  # canonical strings (object array)
    code: np.ndarray
    name: np.ndarray  # normalised seller names
    tax_id: np.ndarray  # canonical seller tax ID as an integer shared by both sides; 0 = none
    number_len: np.ndarray
    code_len: np.ndarray
    name_len: np.ndarray
    date: np.ndarray  # ordinal
    date_known: np.ndarray
    total: np.ndarray  # fen
    total_known: np.ndarray
    excl: np.ndarray
    excl_known: np.ndarray

    @classmethod
    def build(cls, records: Sequence[InvoiceRecord] | Sequence[LedgerRow], tax_ids: dict[str, int]) -> _Side:
        number = _cached(canonical_id, (r.invoice_number for r in records))
        code = _cached(canonical_id, (r.invoice_code for r in records))
        name = _cached(normalize_name, (r.seller_name for r in records))
        tax = _cached(canonical_id, (r.seller_tax_id for r in records))
        total, total_known = _fen([_total(r.amount_excl_tax, r.tax_amount, r.total_amount) for r in records])
        excl, excl_known = _fen([r.amount_excl_tax for r in records])
        return cls(
            number=_objects(number),
            code=_objects(code),
            name=_objects(name),
            tax_id=np.array(
                [tax_ids.setdefault(t, len(tax_ids) + 1) if t else 0 for t in tax], dtype=np.int64
            ),
            number_len=np.array([len(n) for n in number], dtype=np.int64),
            code_len=np.array([len(c) for c in code], dtype=np.int64),
            name_len=np.array([len(n) for n in name], dtype=np.int64),
            date=np.array([r.issue_date.toordinal() if r.issue_date else 0 for r in records], dtype=np.int64),
            date_known=np.array([r.issue_date is not None for r in records], dtype=bool),
            total=total,
            total_known=total_known,
            excl=excl,
            excl_known=excl_known,
        )


def _objects(values: list[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


# ---- pair scoring -----------------------------------------------------------------------------------

WEIGHTS = {"number": 0.40, "amount": 0.30, "date": 0.15, "seller": 0.15}
HINT_MIN_SCORE = 0.5


@dataclass
class _Pairs:
    """Candidate (invoice, ledger row) pairs with their features, as parallel arrays."""

    inv: np.ndarray
    led: np.ndarray
    score: np.ndarray
    accepted: np.ndarray
    number_dist: np.ndarray

    @classmethod
    def empty(cls) -> _Pairs:
        ints = np.zeros(0, dtype=np.int64)
        return cls(ints, ints, np.zeros(0), np.zeros(0, dtype=bool), ints)

    @classmethod
    def concat(cls, parts: list[_Pairs]) -> _Pairs:
        parts = [p for p in parts if len(p.inv)]
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))

    def worth_keeping(self) -> np.ndarray:
        """Accepted pairs, and those close enough to name in a hint (similar overall, or by number)."""
        return self.accepted | (self.score >= HINT_MIN_SCORE) | (self.number_dist <= 1)

    def take(self, mask: np.ndarray) -> _Pairs:
        return _Pairs(
            self.inv[mask], self.led[mask], self.score[mask], self.accepted[mask], self.number_dist[mask]
        )


def _strings_distance(left: list[str], right: list[str], workers: int) -> np.ndarray:
    if not left:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(process.cpdist(left, right, scorer=OSA.distance, workers=workers), dtype=np.int64)


def _evaluate(
    inv_side: _Side, led_side: _Side, inv: np.ndarray, led: np.ndarray, options: ReconcileOptions
) -> _Pairs:
    """Score the pairs (inv[k], led[k]) and decide which are acceptable matches. Vectorised."""
    if len(inv) == 0:
        return _Pairs.empty()
    workers = options.workers
    tol = float(options.amount_tolerance) * 100 + 1e-6
    # numbers and codes
    number_known = (inv_side.number_len[inv] > 0) & (led_side.number_len[led] > 0)
    k = np.flatnonzero(number_known)
    number_dist = np.full(len(inv), 99, dtype=np.int64)
    number_dist[k] = _strings_distance(
        inv_side.number[inv[k]].tolist(), led_side.number[led[k]].tolist(), workers
    )
    longest = np.maximum(np.maximum(inv_side.number_len[inv], led_side.number_len[led]), 1)
    number_sim = 1.0 - np.minimum(number_dist, longest) / longest
    code_known = (inv_side.code_len[inv] > 0) & (led_side.code_len[led] > 0)
    k = np.flatnonzero(code_known)
    code_dist = np.zeros(len(inv), dtype=np.int64)
    code_dist[k] = _strings_distance(inv_side.code[inv[k]].tolist(), led_side.code[led[k]].tolist(), workers)
    # amounts
    total_both = inv_side.total_known[inv] & led_side.total_known[led]
    excl_both = inv_side.excl_known[inv] & led_side.excl_known[led]
    total_ok = np.abs(inv_side.total[inv] - led_side.total[led]) <= tol
    excl_ok = np.abs(inv_side.excl[inv] - led_side.excl[led]) <= tol
    amount_known = total_both | excl_both
    amount_ok = np.where(total_both, total_ok, excl_both & excl_ok)
    # dates
    date_known = inv_side.date_known[inv] & led_side.date_known[led]
    delta = np.abs(inv_side.date[inv] - led_side.date[led])
    date_ok = date_known & (delta <= options.date_window_days)
    date_sim = np.where(date_ok, 1.0, np.clip(1.0 - delta / 31.0, 0.0, 1.0))
    # seller
    name_known = (inv_side.name_len[inv] > 0) & (led_side.name_len[led] > 0)
    name_sim = np.zeros(len(inv))
    k = np.flatnonzero(name_known)
    if len(k):
        name_sim[k] = process.cpdist(
            inv_side.name[inv[k]].tolist(), led_side.name[led[k]].tolist(), scorer=fuzz.ratio, workers=workers
        )
    tax_known = (inv_side.tax_id[inv] > 0) & (led_side.tax_id[led] > 0)
    tax_equal = tax_known & (inv_side.tax_id[inv] == led_side.tax_id[led])
    seller_known = name_known | tax_known
    seller_ok = tax_equal | (name_known & (name_sim >= options.name_threshold))
    seller_sim = np.maximum(name_sim / 100.0, tax_equal.astype(float))
    # score: weighted agreement over the features both sides have
    weights = (
        WEIGHTS["number"] * number_known,
        WEIGHTS["amount"] * amount_known,
        WEIGHTS["date"] * date_known,
        WEIGHTS["seller"] * seller_known,
    )
    sims = (number_sim, amount_ok.astype(float), date_sim, seller_sim)
    total_weight = sum(weights)
    score = np.where(
        total_weight > 0,
        sum(w * s for w, s in zip(weights, sims, strict=True)) / np.maximum(total_weight, 1e-9),
        0.0,
    )
    # acceptance: two independent agreements, never a single coincidence
    max_dist = np.where(longest >= 8, 2, 1)
    close = number_known & (number_dist <= max_dist)
    code_far = code_known & (code_dist > 2)
    by_number = close & amount_ok & ~code_far & ((number_dist <= 1) | date_ok | seller_ok)
    by_number_other_code = number_known & (number_dist == 0) & amount_ok & date_ok
    without_number = ~number_known & amount_ok & date_ok & seller_ok
    without_amount = close & (number_dist <= 1) & ~amount_known & date_ok & seller_ok
    accepted = by_number | by_number_other_code | without_number | without_amount
    return _Pairs(inv.astype(np.int64), led.astype(np.int64), score, accepted, number_dist)


def _expand_ranges(
    owners: np.ndarray, lo: np.ndarray, hi: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (owners[k], values[j]) for every j in [lo[k], hi[k]), without a Python loop."""
    counts = np.maximum(hi - lo, 0)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.repeat(lo, counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(owners, counts), values[starts + offsets]


PAIR_CHUNK = 1_000_000


def _amount_block_pairs(
    inv_side: _Side, led_side: _Side, inv_pool: np.ndarray, led_pool: np.ndarray, options: ReconcileOptions
) -> list[_Pairs]:
    """Block on amounts: pairs whose totals (or amounts excl. tax) agree within the tolerance."""
    tol = float(options.amount_tolerance) * 100 + 1e-6
    out: list[_Pairs] = []
    for values, known in (("total", "total_known"), ("excl", "excl_known")):
        inv_sel = inv_pool[getattr(inv_side, known)[inv_pool]]
        led_sel = led_pool[getattr(led_side, known)[led_pool]]
        if not len(inv_sel) or not len(led_sel):
            continue
        led_values = getattr(led_side, values)[led_sel]
        order = np.argsort(led_values, kind="stable")
        sorted_values, sorted_rows = led_values[order], led_sel[order]
        inv_values = getattr(inv_side, values)[inv_sel]
        lo = np.searchsorted(sorted_values, inv_values - tol, side="left")
        hi = np.searchsorted(sorted_values, inv_values + tol, side="right")
        # chunks of invoices so that a block of a very common amount cannot blow up memory
        counts = hi - lo
        start = 0
        while start < len(inv_sel):
            reach = np.cumsum(counts[start:])
            stop = start + max(1, int(np.searchsorted(reach, PAIR_CHUNK, side="right")))
            inv, led = _expand_ranges(inv_sel[start:stop], lo[start:stop], hi[start:stop], sorted_rows)
            pairs = _evaluate(inv_side, led_side, inv, led, options)
            out.append(pairs.take(pairs.worth_keeping()))
            start = stop
    return out


MIN_BLOCK_NUMBER = 6
CDIST_CELLS = 16_000_000


def _number_block_pairs(
    inv_side: _Side, led_side: _Side, inv_pool: np.ndarray, led_pool: np.ndarray, options: ReconcileOptions
) -> list[_Pairs]:
    """Block on number length (±1); inside a block, ``process.cdist`` finds numbers within two edits."""
    out: list[_Pairs] = []
    inv_pool = inv_pool[inv_side.number_len[inv_pool] >= MIN_BLOCK_NUMBER]
    led_pool = led_pool[led_side.number_len[led_pool] >= MIN_BLOCK_NUMBER - 1]
    for length in np.unique(inv_side.number_len[inv_pool]).tolist():
        inv_block = inv_pool[inv_side.number_len[inv_pool] == length]
        led_lengths = led_side.number_len[led_pool]
        led_block = led_pool[(led_lengths >= length - 1) & (led_lengths <= length + 1)]
        if not len(led_block):
            continue
        cutoff = 2 if length >= 8 else 1
        choices = led_side.number[led_block].tolist()
        step = max(1, CDIST_CELLS // len(led_block))
        for start in range(0, len(inv_block), step):
            chunk = inv_block[start : start + step]
            matrix = process.cdist(
                inv_side.number[chunk].tolist(),
                choices,
                scorer=OSA.distance,
                score_cutoff=cutoff,
                dtype=np.uint8,
                workers=options.workers,
            )
            rows, cols = np.nonzero(matrix <= cutoff)
            pairs = _evaluate(inv_side, led_side, chunk[rows], led_block[cols], options)
            out.append(pairs.take(pairs.worth_keeping()))
    return out


def _unique_pairs(pairs: _Pairs, n_ledger: int) -> _Pairs:
    if not len(pairs.inv):
        return pairs
    keys = pairs.inv * max(n_ledger, 1) + pairs.led
    _, first = np.unique(keys, return_index=True)
    return pairs.take(np.sort(first))


# ---- comparing a matched pair -------------------------------------------------------------------------


def _show(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def compared_fields(ledger: Sequence[LedgerRow]) -> tuple[str, ...]:
    """The fields the ledger has at all (a column with at least one value)."""
    return tuple(name for name in FIELDS if any(getattr(row, name) is not None for row in ledger))


def _compare(
    invoice: InvoiceRecord, row: LedgerRow, fields: Sequence[str], options: ReconcileOptions
) -> tuple[list[Difference], list[tuple[str, str]]]:
    """Differences, and notes (en, zh) on values that agree only within a tolerance or normalisation.

    A value missing from the invoice (not printed, not read) is no difference; a value the ledger
    has a column for but left empty is.
    """
    differences: list[Difference] = []
    notes: list[tuple[str, str]] = []
    for name in fields:
        inv_value, led_value = invoice.value(name), row.value(name)
        if inv_value is None:
            continue
        en, zh = FIELD_LABELS[name]
        same = False
        if led_value is None:
            same = False
        elif name in AMOUNT_FIELDS:
            gap = abs(inv_value - led_value)
            same = gap <= options.amount_tolerance
            if same and gap:
                notes.append(
                    (
                        f"{en} differs by {gap:.2f}, within the {options.amount_tolerance} tolerance",
                        f"{zh}相差 {gap:.2f}，在容差 {options.amount_tolerance} 以内",
                    )
                )
        elif name == "issue_date":
            gap_days = abs((inv_value - led_value).days)
            same = gap_days <= options.date_window_days
            if same and gap_days:
                notes.append(
                    (
                        f"dates are {gap_days} days apart (window {options.date_window_days})",
                        f"日期相差 {gap_days} 天（窗口内）",
                    )
                )
        elif name in ("seller_name", "buyer_name"):
            same = normalize_name(inv_value) == normalize_name(led_value)
        else:
            same = canonical_id(inv_value) == canonical_id(led_value)
            if same and _plain(inv_value) != _plain(led_value):
                notes.append(
                    (
                        f"{en} is {led_value} in the ledger and {inv_value} on the invoice: the same up to "
                        "look-alike characters (0/O, 1/I, 8/B)",
                        f"{zh}台账为 {led_value}，发票为 {inv_value}：仅易混字符不同（0/O、1/I、8/B）",
                    )
                )
        if not same:
            differences.append(Difference(name, _show(name, inv_value), _show(name, led_value)))
    return differences, notes


def _plain(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


# ---- reasons ---------------------------------------------------------------------------------------


def _row_summary(row: LedgerRow, zh: bool) -> str:
    return _row_summaries(row)[1 if zh else 0]


def _money(value: Decimal) -> str:
    text = str(value)  # ledger amounts are already quantized to the fen: str() is the fast way
    dot = text.find(".")
    return text if dot >= 0 and len(text) - dot == 3 and "E" not in text else f"{value:.2f}"


def _row_summaries(row: LedgerRow) -> tuple[str, str]:
    """A short description of a ledger row, in English and in Chinese."""
    en: list[str] = []
    zh: list[str] = []
    if row.invoice_number:
        en.append("invoice " + row.invoice_number)
        zh.append("发票 " + row.invoice_number)
    if row.issue_date:
        day = row.issue_date.isoformat()
        en.append(day)
        zh.append(day)
    total = _total(row.amount_excl_tax, row.tax_amount, row.total_amount)
    if total is not None:
        en.append("total " + _money(total))
        zh.append("价税合计 " + _money(total))
    elif row.amount_excl_tax is not None:
        en.append("amount " + _money(row.amount_excl_tax))
        zh.append("金额 " + _money(row.amount_excl_tax))
    if row.seller_name:
        en.append(row.seller_name)
        zh.append(row.seller_name)
    return ", ".join(en), "，".join(zh)


def _invoice_label(invoice: InvoiceRecord) -> str:
    return f"{invoice.source_name} ({invoice.document_id[:12]})"


# A scanned-twice reason names the scan reconciled instead; ``rematch_document`` reads it back.
SCANNED_TWICE_EN = "Scanned twice: the same invoice as "
SCANNED_TWICE_TAIL_EN = ", which is the scan reconciled"


def _with_notes(text: tuple[str, str], notes: list[tuple[str, str]]) -> tuple[str, str]:
    if not notes:
        return text
    return (
        text[0] + " Note: " + "; ".join(n[0] for n in notes) + ".",
        text[1] + "注：" + "；".join(n[1] for n in notes) + "。",
    )


def _matched_reason(row: LedgerRow, differences: list[Difference], by_number: bool) -> tuple[str, str]:
    n = row.row_number
    how_en = "" if by_number else " by amount, date and seller (the invoice number could not be compared)"
    how_zh = "" if by_number else "（按金额、日期和销售方找到，发票号码无法比对）"
    if not differences:
        return (
            f"In the ledger at row {n}{how_en}; every compared field agrees.",
            f"已在台账第{n}行找到{how_zh}，各项一致。",
        )
    return (
        f"In the ledger at row {n}{how_en}, but {len(differences)} field(s) differ: "
        + "; ".join(d.describe() for d in differences)
        + ".",
        f"已在台账第{n}行找到{how_zh}，但有{len(differences)}项不一致："
        + "；".join(d.describe(zh=True) for d in differences)
        + "。",
    )


def _hint(
    row: LedgerRow | None, invoice: InvoiceRecord | None, differences: list[Difference]
) -> tuple[str, str]:
    """Name the closest counterpart when it is close enough to help: the same number, or a different
    number with the same amount and at most one other difference (the three amounts count as one)."""
    kinds = {"amount" if d.field in AMOUNT_FIELDS else d.field for d in differences}
    if not differences or ("invoice_number" in kinds and ("amount" in kinds or len(kinds) > 2)):
        return "", ""
    en = ", ".join(FIELD_LABELS[d.field][0] for d in differences)
    zh = "、".join(FIELD_LABELS[d.field][1] for d in differences)
    if row is not None:
        return (
            f" The closest ledger row is {row.row_number} ({_row_summary(row, False)}), which differs in: {en}.",
            f"最接近的是台账第{row.row_number}行（{_row_summary(row, True)}），不一致项：{zh}。",
        )
    assert invoice is not None
    return (
        f" The closest scanned invoice is {_invoice_label(invoice)}, which differs in: {en}.",
        f"最接近的已扫描发票是 {_invoice_label(invoice)}，不一致项：{zh}。",
    )


# ---- the reconciliation --------------------------------------------------------------------------------


def _in_period(when: date | None, start: date | None, end: date | None) -> bool:
    return when is None or ((start is None or when >= start) and (end is None or when <= end))


def _priority(invoice: InvoiceRecord) -> tuple[int, int, float, str]:
    """Which of several scans of one invoice is reconciled: ok first, fewest review fields, earliest."""
    return (invoice.status != "ok", len(invoice.review_fields), invoice.ingested_at, invoice.document_id)


def _strong_key(code: str, number: str) -> bool:
    """A key that names one invoice on its own: with its code, or a 20-digit 全电 number."""
    return bool(code) or len(number) >= 20


class _Matcher:
    def __init__(
        self, invoices: Sequence[InvoiceRecord], ledger: Sequence[LedgerRow], options: ReconcileOptions
    ) -> None:
        self.invoices = list(invoices)
        self.ledger = list(ledger)
        self.options = options
        tax_ids: dict[str, int] = {}
        self.inv = _Side.build(self.invoices, tax_ids)
        self.led = _Side.build(self.ledger, tax_ids)
        self.fields = compared_fields(self.ledger)
        self.tol_fen = float(options.amount_tolerance) * 100 + 1e-6
        n, m = len(self.invoices), len(self.ledger)
        self.inv_to_row = np.full(n, -1, dtype=np.int64)
        self.row_to_inv = np.full(m, -1, dtype=np.int64)
        self.scan_of = np.full(n, -1, dtype=np.int64)  # duplicate scan -> the invoice reconciled instead
        self.booking_of = np.full(m, -1, dtype=np.int64)  # duplicate row -> the row it repeats
        self.score = np.zeros(n)
        self.by_number = np.ones(n, dtype=bool)
        self.pairs = _Pairs.empty()

    # -- helpers
    def _amounts_agree(self, i_side: _Side, a: int, j_side: _Side, b: int) -> bool:
        if i_side.total_known[a] and j_side.total_known[b]:
            return bool(abs(i_side.total[a] - j_side.total[b]) <= self.tol_fen)
        if i_side.excl_known[a] and j_side.excl_known[b]:
            return bool(abs(i_side.excl[a] - j_side.excl[b]) <= self.tol_fen)
        return True

    def _dates_agree(self, i_side: _Side, a: int, j_side: _Side, b: int) -> bool:
        if i_side.date_known[a] and j_side.date_known[b]:
            return bool(abs(i_side.date[a] - j_side.date[b]) <= self.options.date_window_days)
        return True

    def _same_seller(self, a: int, b: int) -> bool:
        """Two ledger rows from one seller (a seller never issues one number twice)."""
        if self.led.tax_id[a] > 0 and self.led.tax_id[b] > 0:
            return bool(self.led.tax_id[a] == self.led.tax_id[b])
        return bool(self.led.name[a]) and self.led.name[a] == self.led.name[b]

    # -- 1. scanned twice / booked twice
    def group_scans(self) -> None:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, number in enumerate(self.inv.number):
            if number:
                groups[number].append(i)
        for members in groups.values():
            if len(members) < 2:
                continue
            members.sort(key=lambda i: _priority(self.invoices[i]))
            clusters: list[list[int]] = []
            for i in members:
                for cluster in clusters:
                    head = cluster[0]
                    code_a, code_b = self.inv.code[head], self.inv.code[i]
                    if code_a and code_b and code_a != code_b:
                        continue
                    # code + number (or a 20-digit number) is one invoice, whatever else OCR read;
                    # a short number alone needs the amount and date to agree as well
                    if _strong_key(code_a and code_b, self.inv.number[i]) or (
                        self._amounts_agree(self.inv, head, self.inv, i)
                        and self._dates_agree(self.inv, head, self.inv, i)
                    ):
                        cluster.append(i)
                        break
                else:
                    clusters.append([i])
            for cluster in clusters:
                for i in cluster[1:]:
                    self.scan_of[i] = cluster[0]

    def group_bookings(self) -> None:
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for r, (code, number) in enumerate(zip(self.led.code, self.led.number, strict=True)):
            if number:
                groups[(code, number)].append(r)
        for (code, number), members in groups.items():
            if len(members) < 2:
                continue
            heads: list[int] = []
            for r in members:
                for head in heads:
                    if (
                        _strong_key(code, number)
                        or self._amounts_agree(self.led, head, self.led, r)
                        or self._same_seller(head, r)
                    ):
                        self.booking_of[r] = head
                        break
                else:
                    heads.append(r)

    # -- 2. exact key
    def _assign(self, i: int, r: int, score: float, by_number: bool = True) -> None:
        self.inv_to_row[i] = r
        self.row_to_inv[r] = i
        self.score[i] = score
        self.by_number[i] = by_number

    def match_exact(self) -> None:
        free_rows = (self.booking_of < 0) & (self.row_to_inv < 0)
        by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        by_number: dict[str, list[int]] = defaultdict(list)
        for r in np.flatnonzero(free_rows).tolist():
            number = self.led.number[r]
            if number:
                by_key[(self.led.code[r], number)].append(r)
                by_number[number].append(r)
        todo = [i for i in range(len(self.invoices)) if self.scan_of[i] < 0 and self.inv.number[i]]
        for strict in (True, False):
            for i in todo:
                if self.inv_to_row[i] >= 0:
                    continue
                code, number = self.inv.code[i], self.inv.number[i]
                if strict:
                    rows = by_key.get((code, number), [])
                else:
                    rows = [r for r in by_number.get(number, []) if not code or not self.led.code[r]]
                rows = [r for r in rows if self.row_to_inv[r] < 0]
                if not rows:
                    continue
                r = rows[0]
                if len(rows) > 1:
                    pairs = _evaluate(self.inv, self.led, np.full(len(rows), i), np.array(rows), self.options)
                    r = rows[int(np.argmax(pairs.score))]
                weak = not _strong_key(code or self.led.code[r], number)
                if weak and not self._corroborated(i, r):
                    continue  # a short number alone is not proof: leave it to the fuzzy stage
                self._assign(i, r, 1.0 if strict else 0.99)

    def _corroborated(self, i: int, r: int) -> bool:
        amount = (self.inv.total_known[i] and self.led.total_known[r]) or (
            self.inv.excl_known[i] and self.led.excl_known[r]
        )
        if amount and self._amounts_agree(self.inv, i, self.led, r):
            return True
        if self.inv.date_known[i] and self.led.date_known[r] and self._dates_agree(self.inv, i, self.led, r):
            return True
        return bool(self.inv.tax_id[i] > 0 and self.inv.tax_id[i] == self.led.tax_id[r])

    # -- 3. fuzzy
    def match_fuzzy(self) -> None:
        inv_pool = np.flatnonzero((self.inv_to_row < 0) & (self.scan_of < 0))
        led_pool = np.flatnonzero((self.row_to_inv < 0) & (self.booking_of < 0))
        if not len(inv_pool) or not len(led_pool):
            return
        started = time.perf_counter()
        parts = _amount_block_pairs(self.inv, self.led, inv_pool, led_pool, self.options)
        parts += _number_block_pairs(self.inv, self.led, inv_pool, led_pool, self.options)
        self.pairs = _unique_pairs(_Pairs.concat(parts), len(self.ledger))
        self.pairs.accepted &= ~self._in_a_series(self.pairs)
        accepted = self.pairs.take(self.pairs.accepted)
        order = np.lexsort((accepted.led, accepted.inv, -accepted.score))
        for k in order.tolist():
            i, r = int(accepted.inv[k]), int(accepted.led[k])
            if self.inv_to_row[i] < 0 and self.row_to_inv[r] < 0:
                self._assign(i, r, float(accepted.score[k]), by_number=bool(accepted.number_dist[k] < 99))
        log.debug(
            "fuzzy stage: %d invoices x %d rows, %d candidate pairs, %d accepted, %.2fs",
            len(inv_pool),
            len(led_pool),
            len(self.pairs.inv),
            len(accepted.inv),
            time.perf_counter() - started,
        )

    def _in_a_series(self, pairs: _Pairs) -> np.ndarray:
        """Accepted pairs whose numbers differ, where another invoice (or row) with the same total has a
        number just as close: a series of equal invoices (fuel, tolls, fixed fees) rather than a typo.
        Those are not matched on a guess; each side keeps a hint instead."""
        doubtful = np.flatnonzero(pairs.accepted & (pairs.number_dist >= 1) & (pairs.number_dist < 99))
        series = np.zeros(len(pairs.inv), dtype=bool)
        if not len(doubtful):
            return series
        workers = self.options.workers
        for own, other_side, own_side, others_pool, partner in (
            (pairs.led[doubtful], self.inv, self.led, np.flatnonzero(self.scan_of < 0), pairs.inv[doubtful]),
            (
                pairs.inv[doubtful],
                self.led,
                self.inv,
                np.flatnonzero(self.booking_of < 0),
                pairs.led[doubtful],
            ),
        ):
            others = others_pool[
                other_side.total_known[others_pool] & (other_side.number_len[others_pool] > 0)
            ]
            values = other_side.total[others]
            order = np.argsort(values, kind="stable")
            sorted_values, sorted_others = values[order], others[order]
            known = own_side.total_known[own]
            lo = np.searchsorted(sorted_values, own_side.total[own] - self.tol_fen, side="left")
            hi = np.searchsorted(sorted_values, own_side.total[own] + self.tol_fen, side="right")
            hi = np.where(known, hi, lo)
            slot, neighbour = _expand_ranges(np.arange(len(own)), lo, hi, sorted_others)
            keep = neighbour != partner[slot]
            slot, neighbour = slot[keep], neighbour[keep]
            if not len(slot):
                continue
            dist = _strings_distance(
                own_side.number[own[slot]].tolist(), other_side.number[neighbour].tolist(), workers
            )
            near = slot[dist <= 2]
            series[doubtful[np.unique(near)]] = True
        if series.any():
            log.debug("%d fuzzy pairs left unmatched: part of a series of equal invoices", int(series.sum()))
        return series

    # -- 4. what is left
    def late_duplicates(self) -> None:
        """Unclaimed invoices whose accepted row went to another scan of them (the number was unsure);
        unclaimed rows that repeat a claimed row's number (one with a code, one without)."""
        accepted = self.pairs.take(self.pairs.accepted)
        for i, r in zip(accepted.inv.tolist(), accepted.led.tolist(), strict=True):
            if self.inv_to_row[i] >= 0 or self.scan_of[i] >= 0:
                continue
            j = int(self.row_to_inv[r])
            if j < 0 or j == i:
                continue
            unsure = not self.inv.number[i] or "invoice_number" in self.invoices[i].review_fields
            unsure |= "invoice_number" in self.invoices[j].review_fields
            if (
                unsure
                and self._amounts_agree(self.inv, i, self.inv, j)
                and self._dates_agree(self.inv, i, self.inv, j)
            ):
                self.scan_of[i] = j
        claimed: dict[str, list[int]] = defaultdict(list)
        for r in np.flatnonzero(self.row_to_inv >= 0).tolist():
            if self.led.number[r]:
                claimed[self.led.number[r]].append(r)
        for r in np.flatnonzero((self.row_to_inv < 0) & (self.booking_of < 0)).tolist():
            for other in claimed.get(self.led.number[r], []) if self.led.number[r] else []:
                codes = {self.led.code[r], self.led.code[other]} - {""}
                if len(codes) <= 1 and (
                    self._amounts_agree(self.led, other, self.led, r) or self._same_seller(other, r)
                ):
                    self.booking_of[r] = other
                    break

    def _closest(self) -> tuple[dict[int, int], dict[int, int]]:
        """For hints: the best-scoring candidate row of each invoice, and invoice of each row."""
        pairs = self.pairs
        if not len(pairs.inv):
            return {}, {}
        order = np.lexsort((pairs.led, pairs.inv, -pairs.score))
        invs, first = np.unique(pairs.inv[order], return_index=True)
        best_row = dict(zip(invs.tolist(), pairs.led[order][first].tolist(), strict=True))
        order = np.lexsort((pairs.inv, pairs.led, -pairs.score))
        rows, first = np.unique(pairs.led[order], return_index=True)
        best_inv = dict(zip(rows.tolist(), pairs.inv[order][first].tolist(), strict=True))
        return best_row, best_inv

    # -- 5. entries
    def entries(self, report_rows: np.ndarray) -> list[Entry]:
        best_row, best_inv = self._closest()
        bookings: dict[int, list[int]] = defaultdict(list)
        for r in np.flatnonzero(self.booking_of >= 0).tolist():
            bookings[int(self.booking_of[r])].append(r)
        out: list[Entry] = []
        for i, invoice in enumerate(self.invoices):
            if self.scan_of[i] >= 0:
                continue
            r = int(self.inv_to_row[i])
            if r < 0:
                out.append(self._not_in_ledger(invoice, best_row.get(i)))
                continue
            group = [r, *bookings.get(r, [])]
            if len(group) > 1:
                # booked twice: the row that agrees best is the match, the others repeat it
                scores = [len(_compare(invoice, self.ledger[g], self.fields, self.options)[0]) for g in group]
                head = group[int(np.argmin(scores))]
                for g in group:
                    self.booking_of[g] = head if g != head else -1
                self.row_to_inv[r] = -1
                r = head
                self._assign(i, r, float(self.score[i]), bool(self.by_number[i]))
            out.append(self._matched(i, r, [g for g in group if g != r]))
        for i, invoice in enumerate(self.invoices):
            if self.scan_of[i] >= 0:
                out.append(self._scanned_twice(invoice, int(self.scan_of[i])))
        _list_documents(out)
        for r, row in enumerate(self.ledger):
            if self.row_to_inv[r] >= 0 and self.booking_of[r] < 0:
                continue
            if not report_rows[r] and self.booking_of[r] < 0:
                continue
            if self.booking_of[r] >= 0:
                out.append(self._booked_twice(row, int(self.booking_of[r])))
            else:
                out.append(self._no_invoice(row, best_inv.get(r)))
        return out

    def _matched(self, i: int, r: int, repeats: list[int]) -> Entry:
        invoice, row = self.invoices[i], self.ledger[r]
        differences, notes = _compare(invoice, row, self.fields, self.options)
        score = round(float(self.score[i]), 4)
        if repeats:
            rows = sorted([row.row_number, *(self.ledger[g].row_number for g in repeats)])
            listed = ", ".join(str(n) for n in rows[:-1]) + f" and {rows[-1]}"
            listed_zh = "、".join(str(n) for n in rows)
            en = f"Booked twice in the ledger: rows {listed} all record this invoice (matched to row {row.row_number})."
            zh = f"台账重复登记：第{listed_zh}行都登记了这张发票（以第{row.row_number}行为准）。"
            if differences:
                en += " Differences: " + "; ".join(d.describe() for d in differences) + "."
                zh += "差异：" + "；".join(d.describe(zh=True) for d in differences) + "。"
            return Entry(
                Outcome.DUPLICATE,
                invoice,
                row,
                score,
                differences,
                en,
                zh,
                related_rows=tuple(self.ledger[g].row_number for g in repeats),
            )
        outcome = Outcome.MATCHED_WITH_DIFFERENCES if differences else Outcome.MATCHED
        en, zh = _with_notes(_matched_reason(row, differences, bool(self.by_number[i])), notes)
        return Entry(outcome, invoice, row, score, differences, en, zh)

    def _not_in_ledger(self, invoice: InvoiceRecord, closest: int | None) -> Entry:
        number = invoice.invoice_number
        if number:
            code = f" (code {invoice.invoice_code})" if invoice.invoice_code else ""
            code_zh = f"（代码 {invoice.invoice_code}）" if invoice.invoice_code else ""
            en = f"Not in the ledger: no row has invoice number {number}{code}, and none has the same amount, date and seller."
            zh = f"台账中没有这张发票：没有发票号码为 {number}{code_zh} 的记录，也没有金额、日期和销售方都相同的记录。"
        else:
            en = "Not in the ledger: no row has the same amount, date and seller (the invoice number was not read)."
            zh = "台账中没有这张发票：没有金额、日期和销售方都相同的记录（发票号码未识别）。"
        if closest is not None:
            row = self.ledger[closest]
            hint = _hint(row, None, _compare(invoice, row, self.fields, self.options)[0])
            en, zh = en + hint[0], zh + hint[1]
            other = int(self.row_to_inv[closest])
            if other >= 0 and hint[0]:
                label = _invoice_label(self.invoices[other])
                en += f" That row is matched to {label}."
                zh += f"该行已与 {label} 匹配。"
        return Entry(Outcome.NOT_IN_LEDGER, invoice, None, 0.0, [], en, zh)

    def _scanned_twice(self, invoice: InvoiceRecord, primary: int) -> Entry:
        other = self.invoices[primary]
        r = int(self.inv_to_row[primary])
        row = self.ledger[r] if r >= 0 else None
        state_en = f"matched to ledger row {row.row_number}" if row else "not in the ledger"
        state_zh = f"对应台账第{row.row_number}行" if row else "台账中没有"
        en = f"{SCANNED_TWICE_EN}{_invoice_label(other)}{SCANNED_TWICE_TAIL_EN} ({state_en})."
        zh = f"重复扫描：与 {_invoice_label(other)} 是同一张发票，以该文档为准核对（{state_zh}）。"
        return Entry(Outcome.DUPLICATE, invoice, row, 1.0, [], en, zh, related_document=other.document_id)

    def _booked_twice(self, row: LedgerRow, head: int) -> Entry:
        first = self.ledger[head]
        what = row.invoice_number or _row_summary(row, False)
        en = (
            f"Row {row.row_number} records the same invoice ({what}) as row {first.row_number}: booked twice."
        )
        zh = f"第{row.row_number}行与第{first.row_number}行登记的是同一张发票（{row.invoice_number or _row_summary(row, True)}）：重复登记。"
        return Entry(Outcome.DUPLICATE, None, row, 1.0, [], en, zh, related_rows=(first.row_number,))

    def _no_invoice(self, row: LedgerRow, closest: int | None) -> Entry:
        summary_en, summary_zh = _row_summaries(row)
        en = f"No scanned invoice for ledger row {row.row_number} ({summary_en})."
        zh = f"台账第{row.row_number}行（{summary_zh}）没有对应的已扫描发票。"
        if closest is not None:
            invoice = self.invoices[closest]
            hint = _hint(None, invoice, _compare(invoice, row, self.fields, self.options)[0])
            en, zh = en + hint[0], zh + hint[1]
        return Entry(Outcome.NO_INVOICE_SCANNED, None, row, 0.0, [], en, zh)


def _list_documents(entries: list[Entry]) -> None:
    """Same invoice, several files: the entry reconciled names them all, and says when they arrived
    separately (its PDF on one expense claim, its OFD on the next is how double reimbursement happens).
    The other files keep their own ``duplicate`` entry (``is_copy``), which the counts leave out."""
    copies: dict[str, list[InvoiceRecord]] = defaultdict(list)
    for entry in entries:
        if entry.is_copy and entry.invoice is not None:
            copies[str(entry.related_document)].append(entry.invoice)
    if not copies:
        return
    heads = {e.invoice.document_id: e for e in entries if e.invoice is not None and not e.is_copy}
    for head_id, others in copies.items():
        head = heads.get(head_id)
        if head is None or head.invoice is None:
            continue
        files = [head.invoice, *sorted(others, key=lambda inv: (inv.ingested_at, inv.document_id))]
        separately = arrived_separately(
            [{"source_name": f.source_name, "ingested_at": f.ingested_at} for f in files]
        )
        names = tuple(f.source_name or f.document_id[:12] for f in files)
        head.documents, head.arrived_separately = names, separately
        head.reason_en, head.reason_zh = _with_notes(
            (head.reason_en, head.reason_zh), [_files_note(names, separately)]
        )
        for entry in entries:
            if entry.is_copy and entry.related_document == head_id:
                entry.documents, entry.arrived_separately = names, separately


def _files_note(names: Sequence[str], separately: bool) -> tuple[str, str]:
    listed = ", ".join(names)
    if separately:
        return (
            f"this invoice is held in {len(names)} files that arrived separately ({listed}): "
            "check it is not reimbursed twice",
            f"同一张发票有{len(names)}个文件，分别提交（{listed}），注意重复报销",
        )
    return (
        f"this invoice is held in {len(names)} files that arrived together ({listed})",
        f"同一张发票有{len(names)}个文件，一并提交（{listed}）",
    )


def reconcile(
    invoices: Sequence[InvoiceRecord], ledger: Sequence[LedgerRow], options: ReconcileOptions | None = None
) -> Reconciliation:
    """Give every invoice (and every ledger row no invoice claims) an outcome and a reason."""
    options = options or ReconcileOptions()
    started = time.perf_counter()
    start, end = options.date_from, options.date_to
    window = timedelta(days=options.date_window_days)
    kept_invoices = [inv for inv in invoices if _in_period(inv.issue_date, start, end)]
    margin_start = start - window if start else None
    margin_end = end + window if end else None
    kept_rows = [row for row in ledger if _in_period(row.issue_date, margin_start, margin_end)]
    report_rows = np.array([_in_period(row.issue_date, start, end) for row in kept_rows], dtype=bool)
    matcher = _Matcher(kept_invoices, kept_rows, options)
    matcher.group_scans()
    matcher.group_bookings()
    matcher.match_exact()
    exact = int((matcher.inv_to_row >= 0).sum())
    matcher.match_fuzzy()
    matcher.late_duplicates()
    entries = matcher.entries(report_rows)
    order = list(Outcome)
    entries.sort(
        key=lambda e: (
            order.index(e.outcome),
            e.ledger_row.row_number if e.ledger_row else 1 << 40,
            e.invoice.document_id if e.invoice else "",
        )
    )
    result = Reconciliation(
        entries, options, len(kept_invoices), len(kept_rows), time.perf_counter() - started
    )
    log.info(
        "reconciled %d invoices with %d ledger rows in %.2fs (%d by exact key): %s",
        len(kept_invoices),
        len(kept_rows),
        result.seconds,
        exact,
        result.counts(),
    )
    return result
