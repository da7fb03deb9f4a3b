"""Domain facts of Chinese VAT invoices as pure functions: taxpayer IDs, amounts in words,
tax rates, code and number structure, dates, QR payloads, and OCR-confusion fixes.

Both ``extract`` (to read values) and ``validate`` (to check them) use these; they do no
I/O. Sources: ``docs/FAPIAO.md`` in the shared data, GB 32100-2015.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import parse_qs, urlsplit

from pipeline.model import VAT_DOC_TYPES, DocType

log = logging.getLogger(__name__)

CENT = Decimal("0.01")

# --------------------------------------------------------------------------------------------------
# Taxpayer IDs (统一社会信用代码, GB 32100-2015)
# --------------------------------------------------------------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
# Old taxpayer IDs: 15 (region + organisation code) and 20 (an ID card number + 2). No 17: a
# 17-character read is a credit code with a character lost, and must not pass unchecked.
OLD_TAX_ID_LENGTHS = (15, 20)

_UPPER_ALNUM = re.compile(r"[0-9A-Z]+")


def uscc_check_char(first17: str) -> str:
    """The check character (position 18) GB 32100-2015 requires for these 17 characters."""
    if len(first17) != 17:
        raise ValueError(f"need 17 characters, got {len(first17)}")
    bad = [c for c in first17 if c not in USCC_ALPHABET]
    if bad:
        raise ValueError(f"characters not used in credit codes: {''.join(bad)}")
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def check_tax_id(value: str) -> tuple[bool, str]:
    """Check a taxpayer ID: 18-char credit code with checksum, or an old 15/20-char ID."""
    if not value:
        return False, "tax ID is empty"
    n = len(value)
    if n == 18:
        bad = sorted({c for c in value if c not in USCC_ALPHABET})
        if bad:
            return False, f"contains {', '.join(bad)}, which a credit code never uses"
        expected = uscc_check_char(value[:17])
        if value[17] != expected:
            return False, f"check character is {value[17]} but the first 17 characters require {expected}"
        return True, "valid unified social credit code"
    if n in OLD_TAX_ID_LENGTHS:
        if not _UPPER_ALNUM.fullmatch(value):
            return False, "old-style tax ID may contain only digits and capital letters"
        return True, f"old-style {n}-character tax ID (no checksum to verify)"
    return False, f"has {n} characters; a tax ID has 18 (old IDs 15 or 20)"


# --------------------------------------------------------------------------------------------------
# OCR confusion repair (used by the extractor)
# --------------------------------------------------------------------------------------------------

_DIGIT_CONFUSIONS = str.maketrans(
    {
        "O": "0",
        "o": "0",
        "D": "0",
        "Q": "0",
        "I": "1",
        "l": "1",
        "|": "1",
        "i": "1",
        "Z": "2",
        "z": "2",
        "S": "5",
        "s": "5",
        "B": "8",
        "G": "6",
    }
)
# Letters a credit code never contains, so reading them as digits is certain.
_USCC_CERTAIN = str.maketrans({"O": "0", "I": "1", "S": "5", "Z": "2"})
# Classic confusions between two characters that are both legal in a credit code.
_USCC_SWAPS: dict[str, str] = {"0": "DQ", "D": "0", "Q": "0", "8": "B", "B": "8", "1": "L", "L": "1"}


def _squash(text: str) -> str:
    """NFKC (full-width to ASCII) and drop all whitespace."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def fix_digits(text: str) -> str | None:
    """Repair a digits-only field (code, number, check code, machine number); None if still not digits."""
    fixed = _squash(text).translate(_DIGIT_CONFUSIONS)
    if fixed and fixed.isascii() and fixed.isdigit():
        return fixed
    return None


def fix_tax_id(text: str) -> tuple[str, str | None]:
    """Normalise a taxpayer ID; return ``(value, note)`` where note says what was repaired, if anything.

    Only repairs that are certain are made: letters a credit code never uses (I, O, S, Z) become digits,
    and when the checksum fails, a single classic confusion is undone only if exactly one such
    substitution makes the checksum valid.
    """
    squashed = _squash(text)
    notes: list[str] = []
    if "l" in squashed:
        # A lower-case l in an upper-case ID is a misread 1 (OCR reads a real L as L).
        squashed = squashed.replace("l", "1")
        notes.append("read l→1")
    value = squashed.upper()
    if len(value) != 18:
        return value, "; ".join(notes) or None
    mapped = value.translate(_USCC_CERTAIN)
    if mapped != value:
        changed = sorted({f"{a}→{b}" for a, b in zip(value, mapped, strict=True) if a != b})
        notes.append(f"read {', '.join(changed)} (letters a credit code never uses)")
        value = mapped
    if all(c in USCC_ALPHABET for c in value) and uscc_check_char(value[:17]) != value[17]:
        candidates: list[tuple[str, str]] = []
        for i, c in enumerate(value):
            for alt in _USCC_SWAPS.get(c, ""):
                cand = value[:i] + alt + value[i + 1 :]
                if uscc_check_char(cand[:17]) == cand[17]:
                    candidates.append((cand, f"position {i + 1} {c}→{alt}"))
        if len(candidates) == 1:
            value = candidates[0][0]
            notes.append(f"checksum repaired: {candidates[0][1]}")
    if notes:
        log.debug("tax ID %r fixed to %s: %s", text, value, "; ".join(notes))
    return value, "; ".join(notes) or None


# --------------------------------------------------------------------------------------------------
# Amounts and the amount in words (大写)
# --------------------------------------------------------------------------------------------------

_CN_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_DIGIT_VALUES: dict[str, int] = {c: i for i, c in enumerate(_CN_DIGITS)}
_DIGIT_VALUES.update({"貳": 2, "參": 3, "叄": 3, "陸": 6})  # traditional forms seen on old stock
_SMALL_UNITS = {"拾": 10, "佰": 100, "仟": 1000}
_BIG_UNITS = {"万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
_GROUP_UNITS = ("", "万", "亿", "万亿")
_YUAN = "元圆圓"
_ZHENG = "整正"
_NOISE_PREFIX = re.compile(r"^[⊗⨂ⓧⓍ×xX￥¥:：]+")
_NEGATIVE_PREFIX = re.compile(r"^(?:负数|\(负数\)|负)")


def _group_words(group: int) -> str:
    """Words for 1..9999: one 零 for any run of inner zeros, trailing zeros dropped."""
    out = ""
    started = zero = False
    for place, unit in ((1000, "仟"), (100, "佰"), (10, "拾"), (1, "")):
        digit = group // place % 10
        if digit == 0:
            zero = zero or started
            continue
        if zero:
            out += "零"
            zero = False
        out += _CN_DIGITS[digit] + unit
        started = True
    return out


def _integer_words(n: int) -> str:
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    if len(groups) > len(_GROUP_UNITS):
        raise ValueError("amount too large for words")
    out = ""
    gap = False
    for idx in reversed(range(len(groups))):
        group = groups[idx]
        if group == 0:
            gap = bool(out)
            continue
        if out and (gap or group < 1000):
            out += "零"
        out += _group_words(group) + _GROUP_UNITS[idx]
        gap = False
    return out


def format_amount_words(amount: Decimal) -> str:
    """The standard 大写 form, e.g. 600.20 → 陆佰元零贰角, 1500 → 壹仟伍佰元整."""
    cents = int((abs(amount).quantize(CENT, rounding=ROUND_HALF_UP) * 100).to_integral_value())
    sign = "负" if amount < 0 and cents else ""
    if cents == 0:
        return "零元整"
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    out = _integer_words(yuan) + "元" if yuan else ""
    if jiao == 0 and fen == 0:
        return sign + out + "整"
    if jiao:
        # The 元 digit is 0 (600.20): write 零 before the 角, as the examples on real invoices do.
        if yuan and yuan % 10 == 0:
            out += "零"
        out += _CN_DIGITS[jiao] + "角"
    elif yuan:
        out += "零"
    if fen:
        out += _CN_DIGITS[fen] + "分"
    return sign + out


def _parse_integer_words(text: str) -> int:
    """Parse the part before 元 (拾 alone means 10); strict about unit order so misreads fail loudly."""
    if text == "零":
        return 0
    acc = 0  # value of completed 万/亿 groups
    section = 0
    digit: int | None = None
    last_unit = 10**4  # sentinel: no small unit yet in this section
    zero_seen = False  # a 零 since the last unit: allows a bare digit after 佰/仟 (壹佰零伍)
    seen_wan = False

    def close_section() -> int:
        if digit is not None and last_unit not in (10**4, 10) and not zero_seen:
            raise ValueError(f"digit without a unit in {text!r}")
        return section + (digit or 0)

    for ch in text:
        if ch in _DIGIT_VALUES:
            value = _DIGIT_VALUES[ch]
            if value == 0:
                if digit is not None:
                    raise ValueError(f"零 right after a digit in {text!r}")
                zero_seen = True
                continue
            if digit is not None:
                raise ValueError(f"two digits without a unit in {text!r}")
            digit = value
        elif ch in _SMALL_UNITS:
            unit = _SMALL_UNITS[ch]
            if unit >= last_unit:
                raise ValueError(f"units out of order in {text!r}")
            if digit is None:
                # 拾 with no digit at the start of a section means 壹拾 (拾元 = 10).
                if unit != 10 or section or zero_seen:
                    raise ValueError(f"{ch} without a digit in {text!r}")
                digit = 1
            section += digit * unit
            digit, last_unit, zero_seen = None, unit, False
        elif ch in _BIG_UNITS:
            value = close_section()
            if _BIG_UNITS[ch] == 10**8:
                if acc + value == 0:
                    raise ValueError(f"亿 without digits in {text!r}")
                acc = (acc + value) * 10**8
                seen_wan = False
            else:
                if value == 0 or seen_wan:
                    raise ValueError(f"misplaced 万 in {text!r}")
                acc += value * 10**4
                seen_wan = True
            section, digit, last_unit, zero_seen = 0, None, 10**4, False
        else:
            raise ValueError(f"unexpected character {ch!r} in amount words")
    total = acc + close_section()
    if total == 0:
        raise ValueError(f"no amount in {text!r}")
    return total


_D = "壹贰叁肆伍陆柒捌玖貳參叄陸"
_FRACTION = re.compile(rf"^(?:零(?=[{_D}]))?(?:([{_D}])角)?(?:零(?=[{_D}]))?(?:([{_D}])分)?[{_ZHENG}]?$")


def parse_amount_words(text: str) -> Decimal:
    """Parse a 大写 amount (元 or 圆, 整 or 正, leading ⊗/￥ noise); raise ValueError if unparseable."""
    s = _NOISE_PREFIX.sub("", "".join(unicodedata.normalize("NFKC", text).split()))
    negative = bool(_NEGATIVE_PREFIX.match(s))
    s = _NOISE_PREFIX.sub("", _NEGATIVE_PREFIX.sub("", s))
    if not s:
        raise ValueError("empty amount words")
    yuan_at = max(s.rfind(c) for c in _YUAN)
    if yuan_at >= 0:
        integer_text, fraction_text = s[:yuan_at], s[yuan_at + 1 :]
        if not integer_text:
            raise ValueError(f"nothing before 元 in {text!r}")
        yuan = _parse_integer_words(integer_text)
    else:
        yuan, fraction_text = 0, s
        if not any(u in s for u in "角分"):
            raise ValueError(f"no 元/圆, 角 or 分 in {text!r}")
    match = _FRACTION.match(fraction_text)
    if not match:
        raise ValueError(f"cannot read the 角/分 part {fraction_text!r} of {text!r}")
    jiao = _DIGIT_VALUES[match.group(1)] if match.group(1) else 0
    fen = _DIGIT_VALUES[match.group(2)] if match.group(2) else 0
    value = Decimal(yuan * 100 + jiao * 10 + fen) / 100
    return (-value if negative else value).quantize(CENT)


_CURRENCY = re.compile(r"^(?:RMB|CNY)|[¥$€£]|(?:RMB|CNY|元)$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_PLAIN = re.compile(r"^\d+(?:\.\d*)?$|^\.\d+$")
_DECIMAL_COMMA = re.compile(r"^\d+,\d{1,2}$")


def parse_amount(text: str) -> Decimal | None:
    """Parse a money amount (¥, full-width, spaces, thousands separators, leading minus) to the fen."""
    if text is None:
        return None
    s = "".join(unicodedata.normalize("NFKC", str(text)).split())
    s = s.replace("−", "-").replace("–", "-")
    negative = s.startswith("-")
    s = _CURRENCY.sub("", s[1:] if negative else s)
    if not negative and s.startswith("-"):  # ¥-12.00
        negative, s = True, s[1:]
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    elif _DECIMAL_COMMA.match(s):
        # 18,37: a decimal comma or a misread point; a thousands separator would need three digits.
        s = s.replace(",", ".")
    if not _PLAIN.match(s):
        return None
    try:
        value = Decimal(s).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return None
    return -value if negative else value


def amounts_consistent(excl: Decimal, tax: Decimal, total: Decimal) -> bool:
    """Amount excl. tax + tax = total, exact to the fen."""
    return excl.quantize(CENT) + tax.quantize(CENT) == total.quantize(CENT)


# --------------------------------------------------------------------------------------------------
# Tax rates
# --------------------------------------------------------------------------------------------------

EXEMPT_RATES = frozenset({"免税", "不征税"})
TAX_RATES = frozenset({"13%", "9%", "6%", "5%", "3%", "1%", "0%", *EXEMPT_RATES})
OLD_TAX_RATES = frozenset({"17%", "16%", "11%", "10%"})
OLD_RATES_UNTIL = date(2019, 5, 1)  # kept simple on purpose: old rates accepted before this date

_RATE = re.compile(r"^(\d+(?:\.\d+)?)(%?)$")


def normalize_tax_rate(rate_text: str) -> str | None:
    """``"13%"``-style label for a rate text (13%, 13 %, 13, 0.13, 免税), or None if not a rate."""
    s = "".join(unicodedata.normalize("NFKC", rate_text).split())
    if s in EXEMPT_RATES:
        return s
    match = _RATE.match(s)
    if not match:
        return None
    number = Decimal(match.group(1))
    if not match.group(2) and number < 1 and "." in match.group(1):
        number *= 100  # 0.13 written as a fraction
    return f"{number.normalize():f}%"


def tax_rate_fraction(rate_text: str) -> Decimal | None:
    """The rate as a fraction (13% → 0.13; 免税/不征税 → 0), or None if not a rate."""
    label = normalize_tax_rate(rate_text)
    if label is None:
        return None
    if label in EXEMPT_RATES:
        return Decimal(0)
    return Decimal(label[:-1]) / 100


def check_tax_rate(rate_text: str, issue_date: date | str | None) -> tuple[bool, str]:
    """Is this a VAT rate that was in force on the issue date?"""
    label = normalize_tax_rate(rate_text)
    if label is None:
        return False, f"{rate_text!r} is not a tax rate"
    if label in TAX_RATES:
        return True, f"{label} is a current VAT rate"
    if label in OLD_TAX_RATES:
        when = as_date(issue_date)
        if when is None:
            return False, f"{label} was only valid before {OLD_RATES_UNTIL}, and the issue date is unknown"
        if when < OLD_RATES_UNTIL:
            return True, f"{label} was valid on {when}"
        return False, f"{label} was no longer a VAT rate on {when}"
    return False, f"{label} is not a VAT rate"


def line_tax_consistent(amount: Decimal, rate: Decimal, tax: Decimal) -> bool:
    """Line tax = amount × rate (rate as a fraction), allowing one fen for rounding."""
    expected = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return abs(expected - tax) <= CENT


# --------------------------------------------------------------------------------------------------
# Invoice code, number, check code, date
# --------------------------------------------------------------------------------------------------

PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
}  # fmt: skip
PLANNED_CITIES: dict[str, str] = {
    "4403": "深圳",
    "3702": "青岛",
    "2102": "大连",
    "3302": "宁波",
    "3502": "厦门",
}
FULLY_DIGITAL_DOC_TYPES = frozenset({DocType.FULLY_DIGITAL_GENERAL, DocType.FULLY_DIGITAL_SPECIAL})

_DIGITS_ONLY = re.compile(r"^\d+$")


def _region_part(code: str) -> str | None:
    if len(code) == 12:
        return code[1:5]
    if len(code) == 10:
        return code[0:4]
    return None


def is_shenzhen_blockchain_code(code: str | None) -> bool:
    """Shenzhen blockchain e-invoices carry 12-digit codes that start with 1 + 4403 (seen in the eval set)."""
    return code is not None and len(code) == 12 and code.isdigit() and code.startswith("14403")


def region_of_code(code: str) -> str | None:
    """Region name from an invoice code's region digits (e.g. 1100 → 北京, 4403 → 深圳)."""
    region = _region_part(code)
    if region is None or not region.isdigit():
        return None
    return PLANNED_CITIES.get(region) or PROVINCES.get(region[:2])


def code_year(code: str) -> int | None:
    """The year an invoice code encodes (12-digit: digits 6-7; 10-digit: digits 5-6)."""
    if not _DIGITS_ONLY.match(code or ""):
        return None
    if len(code) == 12:
        yy = int(code[5:7])
    elif len(code) == 10:
        yy = int(code[4:6])
    else:
        return None
    return 1900 + yy if yy >= 90 else 2000 + yy


def check_invoice_code(code: str) -> tuple[bool, str]:
    """10 or 12 digits; 12-digit codes start with 0 (Shenzhen blockchain: 1); a known region."""
    if not _DIGITS_ONLY.match(code or ""):
        return False, f"invoice code {code!r} must be digits only"
    if len(code) not in (10, 12):
        return False, f"invoice code {code} has {len(code)} digits; expected 10 or 12"
    if len(code) == 12 and code[0] != "0" and not is_shenzhen_blockchain_code(code):
        return False, f"12-digit invoice code {code} should start with 0"
    region = region_of_code(code)
    if region is None:
        return False, f"invoice code {code} has unknown region {_region_part(code)}"
    kind = "Shenzhen blockchain invoice code" if code[0] == "1" and len(code) == 12 else "invoice code"
    return True, f"{kind} from {region}, year {code_year(code)}"


def check_invoice_number(number: str, doc_type: DocType) -> tuple[bool, str]:
    """8 digits for old-style invoices; 20 digits for fully-digital (全电) ones."""
    if doc_type not in VAT_DOC_TYPES:
        return True, "no structure rule for this document type"
    expected = 20 if doc_type in FULLY_DIGITAL_DOC_TYPES else 8
    if not _DIGITS_ONLY.match(number or ""):
        return False, f"invoice number {number!r} must be digits only"
    if len(number) != expected:
        return False, f"invoice number {number} has {len(number)} digits; expected {expected}"
    if expected == 20 and number[2:4] not in PROVINCES:
        return False, f"invoice number {number}: digits 3-4 ({number[2:4]}) are not a province code"
    return True, f"{expected}-digit invoice number"


_SZ_CHECK_CODE = re.compile(r"^[0-9a-f]{5}$")


def check_check_code(code: str, invoice_code: str | None = None) -> tuple[bool, str]:
    """20 digits (Shenzhen blockchain invoices: 5 hex characters)."""
    if is_shenzhen_blockchain_code(invoice_code) and _SZ_CHECK_CODE.match(code or ""):
        return True, "Shenzhen blockchain check code"
    if not _DIGITS_ONLY.match(code or ""):
        return False, f"check code {code!r} must be digits only"
    if len(code) != 20:
        return False, f"check code {code} has {len(code)} digits; expected 20"
    return True, "20-digit check code"


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FIRST_VAT_INVOICE = date(1994, 1, 1)  # VAT invoices exist since the 1994 tax reform


def as_date(value: date | str | None) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def check_issue_date(
    iso: str, today: date, invoice_code: str | None = None, invoice_number: str | None = None
) -> tuple[bool, str]:
    """A real date, not in the future, not before the year the invoice code (or 全电 number) encodes."""
    when = as_date(iso)
    if when is None:
        return False, f"issue date {iso!r} is not a valid date"
    if when > today:
        return False, f"issue date {when} is in the future"
    if when < FIRST_VAT_INVOICE:
        return False, f"issue date {when} is before VAT invoices existed"
    year = code_year(invoice_code) if invoice_code else None
    if year is not None and when.year < year:
        return False, f"issue date {when} is before {year}, the year in invoice code {invoice_code}"
    if invoice_number and len(invoice_number) == 20 and invoice_number.isdigit():
        number_year = 2000 + int(invoice_number[:2])
        if when.year < number_year:
            return False, f"issue date {when} is before {number_year}, the year in invoice number"
    return True, f"issue date {when}"


# --------------------------------------------------------------------------------------------------
# QR payload
# --------------------------------------------------------------------------------------------------

QR_KIND_DOC_TYPES: dict[str, DocType] = {
    "01": DocType.VAT_SPECIAL_PAPER,
    "04": DocType.VAT_GENERAL_PAPER,
    "10": DocType.VAT_E_INVOICE_GENERAL,
    "31": DocType.FULLY_DIGITAL_SPECIAL,
    "32": DocType.FULLY_DIGITAL_GENERAL,
}
SZ_BLOCKCHAIN_HOST = "bcfp.shenzhen.chinatax.gov.cn"


@dataclass(frozen=True)
class QrPayload:
    """What an invoice QR code states.

    ``kind`` is the type field (01 专票, 04 普票, 10 电子普票, 31/32 全电专/普) or ``"sz_blockchain"``.
    On 全电 invoices the QR amount is the total incl. tax (every sample in the eval set), so it lands in
    ``total_amount`` and ``amount_excl_tax`` is None.
    """

    kind: str
    invoice_code: str | None
    invoice_number: str
    amount_excl_tax: str | None
    issue_date: str | None
    check_code: str | None
    total_amount: str | None = None


def _qr_amount(text: str) -> str | None:
    value = parse_amount(text) if text else None
    return f"{value:.2f}" if value is not None and value >= 0 else None


def _parse_sz_blockchain(text: str) -> QrPayload | None:
    """Shenzhen blockchain e-invoices encode a verification URL: bill_num, total in fen, hash."""
    parts = urlsplit(text)
    if parts.hostname != SZ_BLOCKCHAIN_HOST:
        return None
    query = parse_qs(parts.query)
    number = (query.get("bill_num") or [""])[0]
    if not _DIGITS_ONLY.match(number):
        return None
    fen = (query.get("total_amount") or [""])[0]
    total = f"{Decimal(int(fen)) / 100:.2f}" if _DIGITS_ONLY.match(fen) else None
    digest = (query.get("hash") or [""])[0].lower()
    # The printed 校验码 is the last five characters of the hash (both eval samples).
    check = digest[-5:] if re.fullmatch(r"[0-9a-f]{5,}", digest) else None
    return QrPayload("sz_blockchain", None, number, None, None, check, total)


def parse_qr_payload(text: str) -> QrPayload | None:
    """Parse ``01,<type>,<code>,<number>,<amount>,<YYYYMMDD>,<check code>,<random>``.

    Returns None for anything that is not an invoice payload (URLs other than Shenzhen's, text).
    """
    if not text:
        return None
    text = text.strip()
    if text.lower().startswith(("http://", "https://")):
        return _parse_sz_blockchain(text)
    parts = [p.strip() for p in text.split(",")]
    parts += [""] * (8 - len(parts))
    version, kind, code, number, amount, yyyymmdd, check = parts[:7]
    if version != "01" or not re.fullmatch(r"\d{2}", kind):
        return None
    if code and not _DIGITS_ONLY.match(code):
        return None
    if not _DIGITS_ONLY.match(number) or len(number) not in (8, 20):
        return None
    issue: str | None = None
    if yyyymmdd:
        try:
            issue = datetime.strptime(yyyymmdd, "%Y%m%d").date().isoformat()
        except ValueError:
            return None
    fully_digital = kind in ("31", "32") or (not code and len(number) == 20)
    value = _qr_amount(amount)
    return QrPayload(
        kind=kind,
        invoice_code=code or None,
        invoice_number=number,
        amount_excl_tax=None if fully_digital else value,
        issue_date=issue,
        check_code=check if _DIGITS_ONLY.match(check) else None,
        total_amount=value if fully_digital else None,
    )
