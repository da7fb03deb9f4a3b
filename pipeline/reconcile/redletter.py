"""Red-letter (红字) invoices: recognised, linked to the blue invoice they reverse, and netted.

A red-letter invoice has negative amounts, 是否正数发票 = 否 on the tax platform, or 红字 / 销项负数
on the document. It names its blue invoice in its 备注 (``对应正数发票代码:X号码:Y``;
``被红冲蓝字数电发票号码：N``), or an e-invoice's XML carries ``OriginalInvoiceCode`` /
``OriginalInvoiceNo``. Several red invoices may reverse one blue invoice in part: they are netted
by their running sum, in date order, and the blue invoice is reported as fully or partly reversed
with what remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pipeline.extract.remarks import red_letter_reference
from pipeline.reconcile.match import canonical_id


@dataclass(frozen=True, slots=True)
class RedInvoice:
    label: str  # how the report names it: "code/number" or the 20-digit number
    issue_date: object
    amount: Decimal  # the reversed amount incl. tax, positive
    booked: bool


@dataclass(frozen=True, slots=True)
class Reversal:
    """What the red invoices (or the platform's status) say of one blue invoice."""

    blue_total: Decimal | None
    reds: tuple[RedInvoice, ...]
    reversed_amount: Decimal | None  # None: the platform says partly reversed and no red invoice is known
    by_status_only: bool = False

    @property
    def remaining(self) -> Decimal | None:
        if self.blue_total is None or self.reversed_amount is None:
            return None
        return self.blue_total - self.reversed_amount

    def full(self, tolerance: Decimal) -> bool:
        remaining = self.remaining
        return remaining is not None and remaining <= tolerance

    @property
    def unbooked_amount(self) -> Decimal | None:
        """The reversed amount no booked red invoice offsets in the ledger."""
        if self.reversed_amount is None:
            return None
        return self.reversed_amount - sum((red.amount for red in self.reds if red.booked), Decimal(0))

    def running(self) -> list[tuple[RedInvoice, Decimal, Decimal | None]]:
        """Each red invoice with the reversed sum so far and what then remains of the blue one."""
        out = []
        total = Decimal(0)
        for red in self.reds:
            total += red.amount
            out.append((red, total, self.blue_total - total if self.blue_total is not None else None))
        return out

    def describe(self, tolerance: Decimal, zh: bool = False) -> str:
        money = lambda v: f"{v:.2f}"  # noqa: E731
        names = "、".join(r.label for r in self.reds) if zh else ", ".join(r.label for r in self.reds)
        if self.reversed_amount is None:
            return "部分红冲（冲红金额未知）" if zh else "partly reversed (amount not known)"
        if self.full(tolerance):
            if zh:
                via = f"，红字发票 {names}" if names else "（据平台状态）"
                return f"全额红冲 {money(self.reversed_amount)}{via}"
            via = f" by red invoice(s) {names}" if names else " (per the platform's status)"
            return f"fully reversed ({money(self.reversed_amount)}){via}"
        remaining = self.remaining
        left = money(remaining) if remaining is not None else "?"
        of = money(self.blue_total) if self.blue_total is not None else "?"
        if zh:
            via = f"，红字发票 {names}" if names else ""
            return f"部分红冲 {money(self.reversed_amount)}（原价税合计 {of}，剩余 {left}）{via}"
        via = f" by red invoice(s) {names}" if names else ""
        return f"partly reversed: {money(self.reversed_amount)} of {of}, {left} remains{via}"


def is_red_amount(total: Decimal | None, excl: Decimal | None) -> bool:
    return any(value is not None and value < 0 for value in (total, excl))


def blue_reference(
    remarks: Sequence[str | None], original_code: str | None = None, original_number: str | None = None
) -> tuple[str, str] | None:
    """The blue invoice's key (canonical code, number) from remarks or the XML's Original* fields."""
    if original_number:
        return canonical_id(original_code), canonical_id(original_number)
    for text in remarks:
        found = red_letter_reference(text)
        if found:
            return canonical_id(found.invoice_code), canonical_id(found.invoice_number)
    return None


def net(blue_total: Decimal | None, reds: Sequence[RedInvoice]) -> Reversal:
    """The running sum of the red invoices against one blue invoice, in date order."""
    ordered = tuple(sorted(reds, key=lambda red: (str(red.issue_date or ""), red.label)))
    return Reversal(blue_total, ordered, sum((red.amount for red in ordered), Decimal(0)))


__all__ = ["RedInvoice", "Reversal", "blue_reference", "is_red_amount", "net"]
