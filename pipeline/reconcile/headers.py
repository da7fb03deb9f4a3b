"""Column mapping: a ledger's header row recognised by the usual Chinese and English headers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from pipeline.reconcile.records import AMOUNT_FIELDS

# ---- header recognition ---------------------------------------------------------------------------

# Normalised header spellings (see _norm_header) for each field.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "invoice_code": ("发票代码", "代码", "invoicecode", "fapiaocode"),
    "invoice_number": (
        "发票号码", "发票号", "号码", "数电票号码", "全电发票号码", "数电发票号码", "发票编号",
        "invoiceno", "invoicenumber", "invoicenum", "invoice", "invno", "fapiaono", "fapiaonumber",
        "number", "no",
    ),
    "issue_date": (
        "开票日期", "发票日期", "开具日期", "日期", "date", "invoicedate", "issuedate", "dateofissue",
    ),
    "amount_excl_tax": (
        "金额", "不含税金额", "合计金额", "金额不含税", "发票金额", "净额", "net", "netamount",
        "amountexcltax", "amountexclvat", "amountexcludingtax", "amountbeforetax", "subtotal",
        "exclvat", "exvat", "nettotal",
    ),
    "tax_amount": (
        "税额", "合计税额", "增值税额", "进项税额", "销项税额", "发票税额", "tax", "taxamount", "vat",
        "vatamount",
    ),
    "total_amount": (
        "价税合计", "含税金额", "价税合计金额", "总金额", "总额", "价税合计小写", "total", "totalamount",
        "gross", "grossamount", "amountincltax", "amountinclvat", "totalincltax", "totalinclvat",
        "invoicetotal", "amountincludingtax",
    ),
    "seller_name": (
        "销售方名称", "销方名称", "销售方", "销货单位", "销货方名称", "销售单位", "销售方单位名称",
        "供应商", "供应商名称", "开票方", "开票方名称", "开票单位", "vendor", "vendorname", "seller",
        "sellername", "supplier", "suppliername", "issuer",
    ),
    "seller_tax_id": (
        "销售方纳税人识别号", "销售方税号", "销方税号", "销方识别号", "销售方识别号", "销方纳税人识别号",
        "供应商税号", "销售方统一社会信用代码", "开票方税号", "开票方纳税人识别号", "vendortaxid",
        "sellertaxid", "suppliertaxid", "vendorvatno", "vendorvatid", "taxid", "vatno",
    ),
    "buyer_name": (
        "购买方名称", "购方名称", "购买方", "购货单位", "购货方名称", "购买方单位名称", "受票方名称",
        "客户名称", "buyer", "buyername", "customer", "customername", "billto",
    ),
    "buyer_tax_id": (
        "购买方纳税人识别号", "购买方税号", "购方税号", "购方识别号", "购方纳税人识别号", "受票方税号",
        "buyertaxid", "customertaxid", "buyervatno",
    ),
}  # fmt: skip
# "Amount" in an English ledger is the total unless a separate total column exists.
AMBIGUOUS_AMOUNT = ("amount", "invoiceamount")
# Spellings too generic to count when merely contained in a longer header (凭证号码, Vendor Number).
EXACT_ONLY = frozenset(
    {"代码", "号码", "日期", "金额", "税额", "发票号", "code", "number", "invoice", "vendor", "seller", "buyer",
     "customer", "supplier", "issuer", "billto", "date", "invoicenum"}
)  # fmt: skip

_HEADER_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
_HEADER_UNIT = re.compile(r"[(（\[【][^)）\]】]{0,12}[)）\]】]$")
_CJK = re.compile(r"[\u3400-\u9fff]")


def _norm_header(text: str) -> str:
    s = unicodedata.normalize("NFKC", str(text)).strip().lower()
    s = _HEADER_UNIT.sub("", s)  # 金额(元), Total (CNY)
    return _HEADER_NOISE.sub("", s)


def _alias_table() -> list[tuple[str, str]]:
    table = [(alias, name) for name, aliases in HEADER_ALIASES.items() for alias in aliases]
    return sorted(table, key=lambda item: -len(item[0]))


_ALIASES = _alias_table()
_EXACT_ALIASES = {alias: name for alias, name in _ALIASES}


def _header_candidates(header: str) -> list[tuple[int, str]]:
    """(score, field) for one header: exact spellings score high, a contained spelling by its length."""
    norm = _norm_header(header)
    if not norm:
        return []
    found: list[tuple[int, str]] = []
    if norm in _EXACT_ALIASES:
        found.append((100 + len(norm), _EXACT_ALIASES[norm]))
    elif norm in AMBIGUOUS_AMOUNT:
        found.append((90, "amount?"))
    for alias, name in _ALIASES:
        long_enough = len(alias) >= 2 if _CJK.search(alias) else len(alias) >= 3
        if long_enough and alias not in EXACT_ONLY and alias != norm and alias in norm:
            found.append((len(alias), name))
    return found


def detect_columns(headers: Sequence[str]) -> dict[str, int]:
    """Map ledger fields to column indexes by their headers; each field and column used once."""
    scored = sorted(
        (
            (score, -index, name)
            for index, header in enumerate(headers)
            for score, name in _header_candidates(header)
        ),
        reverse=True,
    )
    columns: dict[str, int] = {}
    used: set[int] = set()
    ambiguous: list[int] = []
    for _score, negative_index, name in scored:
        index = -negative_index
        if index in used:
            continue
        if name == "amount?":
            ambiguous.append(index)
            used.add(index)
            continue
        if name not in columns:
            columns[name] = index
            used.add(index)
    for index in sorted(ambiguous):
        target = "amount_excl_tax" if "total_amount" in columns else "total_amount"
        if target not in columns:
            columns[target] = index
    return columns


def _usable(columns: dict[str, int]) -> bool:
    """Enough to find invoices: the number, or two of date / an amount / the seller."""
    if "invoice_number" in columns:
        return True
    clues = [
        "issue_date" in columns,
        any(name in columns for name in AMOUNT_FIELDS),
        "seller_name" in columns or "seller_tax_id" in columns,
    ]
    return sum(clues) >= 2


def _expected_headers() -> str:
    return (
        "发票代码/Invoice Code, 发票号码/Invoice No, 开票日期/Date, 金额/Net, 税额/Tax, 价税合计/Total, "
        "销售方名称/Vendor, 销售方纳税人识别号/Vendor Tax ID, 购买方名称/Buyer"
    )
