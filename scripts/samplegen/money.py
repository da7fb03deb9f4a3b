"""Money, words, IDs: rounding to the fen, amounts in capital Chinese words, unified social credit codes."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
CN_DIGITS = "零壹贰叁肆伍陆柒捌玖"


def q2(value: Decimal | int | float | str) -> Decimal:
    """Round to the fen, half up (how invoicing software rounds)."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Decimal) -> str:
    return f"{q2(value):.2f}"


def _integer_words(n: int) -> str:
    units = ("仟", "佰", "拾", "")
    bigs = ("", "万", "亿", "万亿")
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out = ""
    zero_pending = False
    for gi in range(len(groups) - 1, -1, -1):
        g = groups[gi]
        if g == 0:
            zero_pending = bool(out)
            continue
        for pos, ch in enumerate(f"{g:04d}"):
            digit = int(ch)
            if digit == 0:
                zero_pending = zero_pending or bool(out)
                continue
            if zero_pending:
                out += "零"
                zero_pending = False
            out += CN_DIGITS[digit] + units[pos]
        out += bigs[gi]
        zero_pending = False
    return out


def amount_in_words(value: Decimal | str | float, yuan: str = "元") -> str:
    """Standard capital form of an amount: 600.20 -> 陆佰元零贰角, 7018.83 -> 柒仟零壹拾捌元捌角叁分,
    1500.00 -> 壹仟伍佰元整, 0.05 -> 伍分.  ``yuan`` is 元 or 圆 (both occur on real invoices)."""
    amount = q2(value)
    if amount < 0:
        return "负" + amount_in_words(-amount, yuan)
    cents = int(amount * 100)
    integer, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    out = _integer_words(integer) + yuan if integer else ""
    if jiao == 0 and fen == 0:
        return (out or "零" + yuan) + "整"
    if jiao:
        if integer and integer % 10 == 0:
            out += "零"
        out += CN_DIGITS[jiao] + "角"
    elif integer:
        out += "零"
    if fen:
        out += CN_DIGITS[fen] + "分"
    return out


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def uscc_check_char(body17: str) -> str:
    """GB 32100-2015 check character of the first 17 characters of a credit code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_is_valid(code: str) -> bool:
    return (
        len(code) == 18 and all(c in USCC_ALPHABET for c in code) and uscc_check_char(code[:17]) == code[17]
    )


def _org_code(rng: random.Random) -> str:
    """9-character organisation code (GB 11714) with its own check character."""
    if rng.random() < 0.5:
        body = "MA" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, weights, strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def make_uscc(rng: random.Random, region: str) -> str:
    """A valid 18-character unified social credit code for an enterprise (91...) in ``region``."""
    body = "91" + region + _org_code(rng)
    return body + uscc_check_char(body)
