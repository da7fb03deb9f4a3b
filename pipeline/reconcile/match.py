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

The keys live in ``keys``, candidate pairs and their scores in ``pairs``, field comparison and the
reasons in ``reasons``; this module is the matcher that uses them.

Outcomes are written to the index database (``save_outcomes``) in the ``reconciliation`` table,
with the ledger rows (``ledger_rows``) and the options of the run (``reconciliation_options``).
After a review correction ``rematch_document`` re-matches one invoice against the ledger rows no other
invoice claims, and ``ledger_values`` gives the matched row's values beside the invoice's.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

import numpy as np

from pipeline.reconcile.keys import (
    _cached,
    _objects,
    _Side,
    _total,
    canonical_id,
    normalize_name,
)
from pipeline.reconcile.outcomes import (
    Entry,
    InvoiceRecord,
    Outcome,
    ReconcileOptions,
    Reconciliation,
)
from pipeline.reconcile.pairs import (
    HINT_MIN_SCORE,
    _amount_block_pairs,
    _evaluate,
    _expand_ranges,
    _number_block_pairs,
    _Pairs,
    _strings_distance,
    _unique_pairs,
)
from pipeline.reconcile.reasons import (
    SCANNED_TWICE_EN,
    SCANNED_TWICE_TAIL_EN,
    _compare,
    _hint,
    _invoice_label,
    _matched_reason,
    _row_summaries,
    _row_summary,
    _show,
    _with_notes,
    compared_fields,
)
from pipeline.reconcile.sources import LedgerRow
from pipeline.store.invoices import arrived_separately

log = logging.getLogger(__name__)


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


# Re-exported: ``pipeline.reconcile`` and the three-way reconciliation import them from here.
__all__ = [
    "HINT_MIN_SCORE",
    "SCANNED_TWICE_EN",
    "SCANNED_TWICE_TAIL_EN",
    "_Matcher",
    "_cached",
    "_objects",
    "_show",
    "_total",
    "canonical_id",
    "compared_fields",
    "normalize_name",
    "reconcile",
]
