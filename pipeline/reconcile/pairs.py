"""Fuzzy matching: candidate pairs from amount and number blocks (rapidfuzz ``cdist``), scored
with ``cpdist`` (numbers by optimal string alignment, names by ratio), kept one-to-one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from pipeline.reconcile.keys import _Side
from pipeline.reconcile.outcomes import (
    ReconcileOptions,
)

log = logging.getLogger(__name__)


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
