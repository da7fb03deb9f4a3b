"""Chinese VAT invoices (增值税发票, 全电发票): labels -> values by geometry."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from functools import cache

from pipeline.extract.layout import (
    Hit,
    Row,
    build_rows,
    find_labels,
    normalize,
    search_lines,
    spaced,
    value_after_label,
)
from pipeline.extract.parties import (
    ID_TOKEN,
    PARTIES,
    cross_check,
    find_party_blocks,
    label_party,
    read_party_value,
    unlabelled_tax_id,
)
from pipeline.fapiao import fix_digits, fix_tax_id, parse_amount, parse_amount_words
from pipeline.model import DocType, TextLine

VAT_FIELDS = (
    "title",
    "invoice_code",
    "invoice_number",
    "issue_date",
    "check_code",
    "machine_no",
    "buyer_name",
    "buyer_tax_id",
    "seller_name",
    "seller_tax_id",
    "amount_excl_tax",
    "tax_amount",
    "total_amount",
    "total_amount_words",
    "tax_rates",
)

PARTY_FIELDS = ("buyer_name", "buyer_tax_id", "seller_name", "seller_tax_id")
CODE_LABEL = re.compile(r"发票代码")
NUMBER_LABEL = re.compile(r"发票号码|票号码|(?<![A-Za-z])No\.?(?=[\dOoIl])")
DATE_LABEL = re.compile(r"开票日期")
CHECK_LABEL = re.compile(r"校验码")
MACHINE_LABEL = re.compile(r"机器编号|机器编码")
NAME_LABEL = re.compile(r"(?<![务目物品])名称")
# OCR misreads one character of the label now and then (识制号, 识房号, 纳统人): the label's shape stays.
TAX_ID_LABEL = re.compile(r"统一社会信用代码(?:/纳.人识.号)?|纳.人识.号|纳税人识别|识别号")
WORDS_LABEL = re.compile(r"大写")
TOTAL_LABEL = re.compile(r"小写")
SUM_LABEL = re.compile(r"(?<!税)合计")
STOP = re.compile(
    r"名称|纳税人识别号|统一社会信用代码|地址|电话|开户行|账号|发票代码|发票号码|开票日期|校验码|机器编号|密码区?|备注|销售方|购买方"
)

CAPITAL_CHARS = "零壹贰叁肆伍陆柒捌玖拾佰仟万亿元圆角分整正"
# A red-letter invoice prints its 大写 negative: 负壹万… or (负数)壹万… (half- or full-width brackets).
WORDS_RUN = re.compile(f"(?:[(（]负数[)）]|负数?)?[{CAPITAL_CHARS}]{{2,}}")
AMOUNT_TOKEN = re.compile(r"¥?-?\d{1,3}(?:,\d{3})+\.\d{2}(?!\d)|¥?-?\d+\.\d{2}(?!\d)")
# OCR reads a blurred ¥ as a Y now and then; a lone Y before an amount is that.
YEN_AMOUNT = re.compile(r"(?:¥|(?<![0-9A-Za-z])Y)-?\d[\d,]*\.\d{2}(?!\d)")
DATE_PATTERNS = (
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?"),
    re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"),
    # Some text layers print the digits apart from 年/月/日: "年月20221207日".
    re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{2})(\d{2})(?!\d)"),
)
# Titles start with the issuing province, or one of the five separately planned cities.
REGIONS = (
    "北京|天津|河北|山西|内蒙古|辽宁|吉林|黑龙江|上海|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|广西"
    "|海南|重庆|四川|贵州|云南|西藏|陕西|甘肃|青海|宁夏|新疆|深圳|大连|青岛|宁波|厦门"
)
TITLE = re.compile(
    r"电子发票\((?:普通发票|增值税专用发票)\)?"
    rf"|(?:{REGIONS})?增值税(?:专用|普通|电子普通|电子专用)发票"
    rf"|(?:{REGIONS})电子普通发票"
)
# Shenzhen blockchain e-invoices print a short hexadecimal check code instead of 20 digits.
SHORT_CHECK_CODE = re.compile(r"^([0-9a-f]{5,6})(?![0-9a-z])")
RATE_TOKEN = re.compile(r"(?<![\d.])(\d{1,2})%|免税|不征税")
DIGIT_LIKE = "0-9OoIlDQSZBG|"


def accept_digits(*lengths: int):
    """Accept a run of digit-like characters of one of ``lengths`` (O/0, I/1... fixed)."""
    pattern = re.compile(f"[{DIGIT_LIKE}]{{{min(lengths)},}}")

    def accept(text: str) -> str | None:
        match = pattern.search(text[:40])
        if not match:
            return None
        fixed = fix_digits(match.group())
        if fixed is None:
            return None
        for length in sorted(lengths, reverse=True):
            if len(fixed) == length:
                return fixed
        return None

    return accept


def parse_date(text: str) -> str | None:
    for pattern in DATE_PATTERNS:
        match = pattern.search(text)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                return dt.date(year, month, day).isoformat()
            except ValueError:
                return None
    return None


def cjk_brackets(text: str) -> str:
    """Chinese names and titles are printed with full-width brackets; NFKC made them half-width."""
    return text.replace("(", "（").replace(")", "）")


def accept_name(text: str) -> str | None:
    text = cjk_brackets(STOP.split(text)[0].strip(":;,.、|*"))
    # OCR often prefixes a stray dot or bullet from the form's rules.
    text = re.sub(r"^[^\u4e00-\u9fffA-Za-z0-9（(]+", "", text)
    if len(text) < 2 or not re.search(r"[\u4e00-\u9fffA-Za-z]", text):
        return None
    # The cipher area (密码区) beside the buyer block is digits and symbols only.
    if re.fullmatch(r"[\d<>+\-*/=]+", text):
        return None
    return text


def accept_tax_id(text: str) -> str | None:
    # The rest of a label the pattern did not take ("/纳税人识制号：") may come before the ID.
    match = re.match(r"(?:[^0-9A-Za-z]{1,12}(?=[0-9A-Za-z]{15}))?([0-9A-Za-z]{15,20})", text)
    if not match:
        return None
    fixed, _ = fix_tax_id(match.group(1).upper())
    return fixed


def accept_amount(text: str) -> str | None:
    match = AMOUNT_TOKEN.search(text)
    if not match:
        return None
    value = parse_amount(match.group())
    return f"{value:.2f}" if value is not None else None


def accept_words(text: str) -> str | None:
    for run in sorted(WORDS_RUN.findall(text), key=len, reverse=True):
        try:
            parse_amount_words(run)
        except ValueError:
            continue
        return run
    return None


def classify(title: str, text: str) -> DocType:
    """The kind of VAT invoice from its title, or from what is printed when the title is unreadable."""
    title = normalize(title)
    if "电子发票(增值税专用发票)" in title or ("电子发票" in title and "专用" in title):
        return DocType.FULLY_DIGITAL_SPECIAL
    if "电子发票(普通发票)" in title:
        return DocType.FULLY_DIGITAL_GENERAL
    if "电子普通发票" in title or "电子发票" in title:
        return DocType.VAT_E_INVOICE_GENERAL
    if "专用发票" in title:
        return DocType.VAT_SPECIAL_PAPER
    if "普通发票" in title:
        return DocType.VAT_GENERAL_PAPER
    if re.search(r"发票号码\D{0,3}\d{20}", text):
        return DocType.FULLY_DIGITAL_SPECIAL if "专用" in text else DocType.FULLY_DIGITAL_GENERAL
    if "专用发票" in text or "抵扣联" in text:
        return DocType.VAT_SPECIAL_PAPER
    if "电子普通发票" in text:
        return DocType.VAT_E_INVOICE_GENERAL
    # Paper 专票 print no 校验码; 普票 print one (label and 20 digits).
    if "校验码" not in text and not re.search(r"(?<!\d)\d{20}(?!\d)", text):
        return DocType.VAT_SPECIAL_PAPER
    return DocType.VAT_GENERAL_PAPER


def looks_like_vat_invoice(line_texts: Sequence[str]) -> bool:
    """At least three of the anchors every VAT invoice prints; toll and fiscal receipts lack them.

    Labels are looked for in the lines run together (a label split over two lines still
    matches); taxpayer IDs line by line, where a value's end is known.
    """
    text = "".join(normalize(line) for line in line_texts)
    anchors = ("发票号码", "开票日期", "价税合计", "纳税人识别号", "发票代码", "税额")
    if "票据" in text and "发票" not in text:
        return False
    if sum(anchor in text for anchor in anchors) >= 3:
        return True
    # A blurred photo loses labels, but a printed VAT invoice title and two more labels still say it.
    loose = ("发票号码", "发票代码", "票日期", "校验码", "价税合计", "纳税人", "税额", "小写", "大写")
    if TITLE.search(text) is not None and sum(anchor in text for anchor in loose) >= 2:
        return True
    # Or the form itself, when the title and the header's labels were misread: the buyer's and the
    # seller's blocks each print a taxpayer ID label, and the total line its amount in words and
    # figures. Receipts and fiscal 票据 print no party blocks.
    form = ("价税合计", "开户行及账号", "地址、电话", "地址电话", "小写", "大写")
    if "发票" in text and text.count("纳税人识别号") >= 2 and sum(label in text for label in form) >= 3:
        return True
    # Or most of its labels each read with one character wrong or lost (发票代吗, 份税合计,
    # 纳税人识制号): four of them, where three read exactly are enough; and, on a page read this
    # badly, both parties' 18-character taxpayer IDs, which no receipt prints.
    fuzzy = ("发票号码", "开票日期", "价税合计", "纳税人识别号", "发票代码", "开户行及账号")
    labels = sum(_one_off(label).search(text) is not None for label in fuzzy)
    tax_ids = {
        token for line in line_texts for token in ID_TOKEN.findall(normalize(line)) if token[0].isdigit()
    }
    return "票" in text and labels >= 4 and len(tax_ids) >= 2


@cache
def _one_off(label: str) -> re.Pattern[str]:
    """``label`` with at most one character replaced or left out."""
    variants = [label[:i] + "." + label[i + 1 :] for i in range(len(label))]
    variants += [label[:i] + label[i + 1 :] for i in range(len(label))]
    return re.compile("|".join(variants))


# A VAT invoice's title is the largest print on the form; body text is about half its height.
TITLE_SIZE = 1.3  # a title line at least this many times the page's median line height
# "所属增值税电子普通发票代码" names the kind of invoice in a label: not a title.
NAMES_A_LABEL = re.compile(r"代码|号码")


def find_title(lines: Sequence[TextLine]) -> Hit | None:
    """The largest printed invoice title (seal and watermark text around it is ignored).

    A title found only in small print (the large title misread, the words found inside a
    body line) goes to review: it may be part of the real title.
    """
    best: tuple[float, re.Match[str], TextLine] | None = None
    for line in lines:
        text = normalize(line.text)
        match = next((m for m in TITLE.finditer(text) if not NAMES_A_LABEL.match(text, m.end())), None)
        if match and (best is None or line.height > best[0]):
            best = (line.height, match, line)
    if best is None:
        return None
    height, match, line = best
    title = match.group()
    title = title if not title.startswith("电子发票(") or title.endswith(")") else title + ")"
    heights = sorted(other.height for other in lines if other.page == line.page)
    notes = []
    if height < TITLE_SIZE * heights[len(heights) // 2]:
        notes.append("title found only in small print: the printed title may read differently")
    # "电了发票(增值税专用发票)": a 全电 title whose first words were misread. (Other text on the
    # line is common and harmless: the seal's 全国统一发票监制 runs into the title line.)
    if match.string[: match.start()].rstrip().endswith("("):
        notes.append(f"title read in part: {normalize(line.text)}")
    return Hit(cjk_brackets(title), (line,), tuple(notes))


def accept_check_code(text: str) -> str | None:
    digits = accept_digits(20)(text)
    if digits is not None:
        return digits
    short = SHORT_CHECK_CODE.match(text)
    return short.group(1) if short else None


def _parties(rows: Sequence[Row], lines: Sequence[TextLine], fully_digital: bool) -> dict[str, Hit | None]:
    """Names and IDs from the block each label stands in (see ``parties``), never from the next block.

    A block whose ID label has nothing after it (a private buyer) gives no ID; a block whose ID
    label was not read falls back to an ID-shaped value under its name, sent to review.
    """
    found: dict[str, Hit | None] = dict.fromkeys(PARTY_FIELDS)
    names = find_labels(rows, NAME_LABEL)
    ids = find_labels(rows, TAX_ID_LABEL)
    blocks = find_party_blocks(rows, lines, sorted(names + ids, key=lambda m: m.row.y0), fully_digital)
    if blocks is None:
        return found
    for party in PARTIES:
        name = read_party_value(rows, blocks, party, names, accept_name, STOP, below_rows=2.6)
        tax_id = read_party_value(rows, blocks, party, ids, accept_tax_id, STOP, below_rows=1.6)
        if tax_id is None and not any(label_party(blocks, match) == party for match in ids):
            tax_id = unlabelled_tax_id(rows, blocks, party, names)
        found[f"{party}_name"] = cross_check(blocks, party, name)
        found[f"{party}_tax_id"] = cross_check(blocks, party, tax_id)
    return found


_AMOUNT_END_SPACE = re.compile(r"(?<=\.\d\d)\s+(?=[-¥\d])")


def _amount_cells(text: str, skip: int) -> str:
    """``normalize(text)`` after its first ``skip`` characters, keeping a space that follows an
    amount's two decimals: "9.91 1.29" in one line is two amounts, not 9.911.29."""
    marked = normalize(_AMOUNT_END_SPACE.sub("\x00", spaced(text)))  # NUL: not white space
    out, seen = [], 0
    for ch in marked:
        if ch == "\x00":
            if seen > skip:
                out.append(" ")
            continue
        if seen >= skip:
            out.append(ch)
        seen += 1
    return "".join(out)


def _separated_tail(row: Row, after: int) -> tuple[str, list[int]]:
    """The row's text from ``after``, with a space where two of its lines stand apart.

    The row text joins its lines with nothing between them ("9.91" "1.29" -> "9.911.29", read as
    911.29). Lines further apart than a third of the text height are separate cells (the amount
    and tax columns), so a number never runs across them; closer runs continue each other.
    """
    parts: list[str] = []
    owners: list[int] = []
    for index in range(len(row.lines)):
        start = row.line_start(index)
        text = row.line_text(index)
        if start + len(text) <= after:
            continue
        text = _amount_cells(row.lines[index].text, max(after - start, 0))
        if parts:
            previous = row.lines[owners[-1]]
            line = row.lines[index]
            if line.x0 - previous.x1 > max(min(previous.height, line.height), 1.0) / 3:
                parts.append(" ")
                owners.append(index)
        parts.append(text)
        owners.extend([index] * len(text))
    return "".join(parts), owners


def _amounts_in_row(row: Row, after: int) -> list[Hit]:
    hits = []
    tail, owners = _separated_tail(row, after)
    for match in AMOUNT_TOKEN.finditer(tail):
        value = parse_amount(match.group())
        if value is not None:
            hits.append(Hit(f"{value:.2f}", (row.lines[owners[match.start()]],)))
    if "***" in row.text[after:] or "*" * 3 in row.text[after:].replace(" ", ""):
        hits.append(Hit("0.00", (row.lines[row.line_at(len(row.text) - 1)],)))
    return hits


def extract_vat(lines: Sequence[TextLine]) -> dict[str, Hit | None]:
    """Every VAT field the page shows, as raw hits (validation decides what to trust)."""
    rows = build_rows(lines)
    page_text = "".join(row.text for row in rows)
    found: dict[str, Hit | None] = dict.fromkeys(VAT_FIELDS)

    found["title"] = find_title(lines)
    found["invoice_code"] = value_after_label(rows, CODE_LABEL, accept_digits(10, 12), STOP)
    found["invoice_number"] = value_after_label(rows, NUMBER_LABEL, accept_digits(8, 20), STOP)
    found["issue_date"] = value_after_label(rows, DATE_LABEL, parse_date, STOP)
    if found["issue_date"] is None:
        dates = search_lines(lines, parse_date)
        found["issue_date"] = dates[0] if dates else None
    found["check_code"] = value_after_label(rows, CHECK_LABEL, accept_check_code, STOP)
    found["machine_no"] = value_after_label(rows, MACHINE_LABEL, accept_digits(12), STOP)
    fully_digital = classify(_text(found["title"]), page_text) in (
        DocType.FULLY_DIGITAL_GENERAL,
        DocType.FULLY_DIGITAL_SPECIAL,
    )
    found.update(_parties(rows, lines, fully_digital))

    found["total_amount_words"] = value_after_label(rows, WORDS_LABEL, accept_words)
    if found["total_amount_words"] is None:
        words = search_lines(lines, accept_words)
        found["total_amount_words"] = next((hit for hit in words if re.search("[元圆]", hit.text)), None)
    found["total_amount_words"] = _partly_read_words(found["total_amount_words"])
    found["total_amount"] = value_after_label(rows, TOTAL_LABEL, accept_amount)
    if found["total_amount"] is None:
        found["total_amount"] = _total_on_words_row(rows)
    _read_sum_row(rows, found)
    _settle_amounts(lines, found)
    found["tax_rates"] = _tax_rates(rows)
    if found["invoice_code"] is None and classify(_text(found["title"]), page_text) in (
        DocType.VAT_SPECIAL_PAPER,
        DocType.VAT_GENERAL_PAPER,
    ):
        found["invoice_code"] = _standalone_code(lines)
    return found


def _text(hit: Hit | None) -> str:
    return hit.text if hit else ""


def _partly_read_words(hit: Hit | None) -> Hit | None:
    """Sends to review an amount in words that OCR broke in two: 玖佰零陆元集角伍分 (柒 misread)
    parses as 玖佰零陆元, and what follows the break (角伍分) is lost."""
    if hit is None:
        return None
    rest = "".join(normalize(line.text) for line in hit.lines).replace(hit.text, "", 1)
    left = "".join(ch for ch in rest if ch in CAPITAL_CHARS)
    if not left:
        return hit
    return replace(hit, notes=(*hit.notes, f"amount in words only partly read: {left} left over"))


def _total_on_words_row(rows: Sequence[Row]) -> Hit | None:
    """The total when its (小写) label was misread: the form prints it at the right end of the
    价税合计 (大写) row, a ¥ amount after the amount in words."""
    for match in find_labels(rows, WORDS_LABEL):
        if "合计" not in match.row.text[: match.start]:  # 价税合计 (大写): not another 大写
            continue
        amounts = _yen_amounts(match.row.text[match.end :])
        if amounts:
            last, value = amounts[-1]
            line = match.row.lines[match.row.line_at(match.end + last.start())]
            return Hit(f"{value:.2f}", (line,))
    return None


def _yen_amounts(text: str) -> list[tuple[re.Match[str], Decimal]]:
    """The ¥ amounts in a normalised text, with their values (a blurred ¥ read as Y counts)."""
    found = []
    for match in YEN_AMOUNT.finditer(text):
        value = parse_amount(match.group().lstrip("Y"))
        if value is not None:
            found.append((match, value))
    return found


def _read_sum_row(rows: Sequence[Row], found: dict[str, Hit | None]) -> None:
    """合计 row: the amount before tax, then the tax (``***`` when exempt)."""
    for match in find_labels(rows, SUM_LABEL):
        amounts = _amounts_in_row(match.row, match.end)
        if len(amounts) >= 2:
            found["amount_excl_tax"], found["tax_amount"] = amounts[0], amounts[1]
            return
        if len(amounts) == 1 and found["amount_excl_tax"] is None:
            found["amount_excl_tax"] = amounts[0]


def _settle_amounts(lines: Sequence[TextLine], found: dict[str, Hit | None]) -> None:
    """Use arithmetic to pick amounts the labels did not settle: excl + tax = total = 大写."""
    words_total: Decimal | None = None
    if found["total_amount_words"] is not None:
        words_total = parse_amount_words(found["total_amount_words"].text)
    if found["total_amount"] is None and words_total is not None:
        for hit in search_lines(lines, accept_amount):
            if Decimal(hit.text) == words_total:
                found["total_amount"] = hit
                break
    total_hit = found["total_amount"]
    if total_hit is None:
        return
    total = Decimal(total_hit.text)
    excl, tax = found["amount_excl_tax"], found["tax_amount"]
    if excl is not None and tax is not None and Decimal(excl.text) + Decimal(tax.text) == total:
        return
    yen_hits = [Hit(f"{value}", (line,)) for line in lines for _, value in _yen_amounts(normalize(line.text))]
    for first in yen_hits:
        for second in yen_hits:
            if first is second or Decimal(first.text) < Decimal(second.text):
                continue
            if Decimal(first.text) + Decimal(second.text) == total and first.lines[0].x0 < second.lines[0].x0:
                found["amount_excl_tax"], found["tax_amount"] = first, second
                return


def _tax_rates(rows: Sequence[Row]) -> Hit | None:
    """Rates printed in the item lines, between the table header and the 合计 row."""
    header = next((index for index, row in enumerate(rows) if "税率" in row.text), None)
    if header is None:  # the 税率 heading misread: the table's header row by its other headings
        headings = ("规格型号", "项目名称", "货物或应税劳务")
        header = next((index for index, row in enumerate(rows) if any(h in row.text for h in headings)), None)
    if header is None:
        return None
    rates: list[str] = []
    used: list[TextLine] = []
    for row in rows[header + 1 :]:
        if SUM_LABEL.search(row.text) or "价税合计" in row.text:
            break
        # Per line, not per row: joined rows glue "582.72" to "3%" and hide the rate.
        for line in row.lines:
            for match in RATE_TOKEN.finditer(normalize(line.text)):
                rate = f"{int(match.group(1))}%" if match.group(1) else match.group()
                if rate not in rates:
                    rates.append(rate)
                    used.append(line)
    if not rates:
        return None
    return Hit(",".join(rates), tuple(used))


def _standalone_code(lines: Sequence[TextLine]) -> Hit | None:
    """Paper invoices print the code alone in the top-left corner with no label."""
    top = [line for line in lines if line.y1 < min(line.y0 for line in lines) + 400]
    for line in top:
        text = normalize(line.text)
        if re.fullmatch(r"\d{10}|\d{12}", text):
            return Hit(text, (line,))
    return None


ITEM_COLUMNS = (
    ("name", re.compile(r"货物或应税劳务、?服务名称|项目名称")),
    ("spec", re.compile(r"规格型号")),
    ("unit", re.compile(r"单位")),
    ("quantity", re.compile(r"数量")),
    ("unit_price", re.compile(r"单价")),
    ("amount", re.compile(r"金额")),
    ("tax_rate", re.compile(r"税率(?:/征收率)?")),
    ("tax_amount", re.compile(r"税额")),
)


def extract_items(lines: Sequence[TextLine]) -> list[dict[str, str | None]]:
    """Item lines of the goods table: columns from the header cells, rows down to 合计.

    A row with text only in the name, spec or unit columns continues the previous item
    (long names and specs wrap). Values are kept as printed, amounts normalised to two decimals.
    """
    rows = build_rows(lines)
    header_index = next((i for i, row in enumerate(rows) if "税率" in row.text and "金额" in row.text), None)
    if header_index is None:
        return []
    header = rows[header_index]
    columns: list[tuple[str, float]] = []
    for name, pattern in ITEM_COLUMNS:
        # Header cells are often letter-spaced into several runs ("数", "量"): match the row text.
        match = pattern.search(header.text)
        if match:
            first, last = (
                header.lines[header.line_at(match.start())],
                header.lines[header.line_at(match.end() - 1)],
            )
            columns.append((name, (first.x0 + last.x1) / 2))
    if len(columns) < 4:
        return []
    columns.sort(key=lambda column: column[1])
    bounds = [(columns[i][1] + columns[i + 1][1]) / 2 for i in range(len(columns) - 1)]

    centres = dict(columns)

    def column_of(token: str, x0: float, x1: float) -> str:
        """By position, corrected by content: the narrow rate column only holds rates."""
        centre = (x0 + x1) / 2
        column = columns[sum(1 for bound in bounds if centre > bound)][0]
        if RATE_TOKEN.fullmatch(token) and "tax_rate" in centres:
            return "tax_rate"
        if column == "tax_rate" and re.fullmatch(r"-?[\d.,]+", token):
            # A right-aligned amount reaching under the rate header, or a tax left of its column.
            return "amount" if centre < centres["tax_rate"] else "tax_amount"
        return column

    def cells_of(line: TextLine) -> list[tuple[str, str]]:
        """A run may hold several cells ("582.72 3%"): split at spaces, share the width by length."""
        text = spaced(line.text)
        if not re.search(r"\d\s+[\d*]", text):
            text = text.replace(" ", "")
        tokens = text.split(" ")
        width_per_char = (line.x1 - line.x0) / max(len(text), 1)
        out, offset = [], 0
        for token in tokens:
            start = text.index(token, offset)
            offset = start + len(token)
            x0 = line.x0 + start * width_per_char
            out.append((column_of(normalize(token), x0, x0 + len(token) * width_per_char), normalize(token)))
        return out

    items: list[dict[str, str | None]] = []
    for row in rows[header_index + 1 :]:
        if SUM_LABEL.search(row.text) or "价税合计" in row.text:
            break
        cells: dict[str, str] = {}
        for line in row.lines:
            for name, text in cells_of(line):
                cells[name] = (cells.get(name, "") + text).strip()
        if not cells:
            continue
        words = "".join(cells.get(key, "") for key in ("name", "spec", "unit"))
        if words and set(words) <= set("合计"):
            break  # the 合计 row, one of its letter-spaced characters unread or shifted right
        if re.fullmatch(r"[\u4e00-\u9fff]?计", words) or "¥" in row.text:
            break  # the 合计 row with 合 misread (可计), or its ¥ totals: item lines print no ¥
        # Only wrapped text (name, spec, unit) and no new "*category*": the previous item goes on.
        wrapped = set(cells) <= {"name", "spec", "unit"} and not cells.get("name", "").startswith("*")
        if wrapped and items:
            for key, text in cells.items():
                items[-1][key] = (items[-1][key] or "") + text
            continue
        item: dict[str, str | None] = {name: cells.get(name) or None for name, _ in ITEM_COLUMNS}
        for key in ("amount", "tax_amount"):
            value = item[key]
            if value and set(value) <= {"*"}:
                item[key] = "0.00"
            elif value:
                parsed = parse_amount(value)
                item[key] = f"{parsed:.2f}" if parsed is not None else value
        rate = RATE_TOKEN.search(item["tax_rate"] or "")
        if rate:
            item["tax_rate"] = f"{int(rate.group(1))}%" if rate.group(1) else rate.group()
        if item["amount"] is None and item["name"] is None:
            continue
        items.append(item)
    return items
