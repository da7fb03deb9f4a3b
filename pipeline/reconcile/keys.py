"""Keys and their normalisation: canonical invoice numbers and taxpayer IDs (OCR look-alikes
are one character), normalised company names, and one side's values as numpy columns.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from pipeline.reconcile.outcomes import (
    InvoiceRecord,
)
from pipeline.reconcile.sources import LedgerRow

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
