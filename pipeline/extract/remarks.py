"""备注 (remarks) on a VAT invoice, and the blue invoice a red-letter invoice names there.

The remarks box sits at the bottom right, beside the seller block; its label is often printed
vertically (备 over 注), so OCR gives it as one line "备注" or as two lines "备" and "注". The
remarks are the lines to the right of the label, inside the label's height (with a margin).

A red-letter (红字) invoice names the invoice it reverses in its remarks (FAPIAO.md):
``对应正数发票代码:XXXXXXXXXXXX号码:YYYYYYYY`` (tax-control era) or
``被红冲蓝字数电发票号码：N 红字发票信息确认单编号：M`` (全电). ``red_letter_reference`` reads
both, from the remarks or from any text (a tax-platform export's 备注 column).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.extract.layout import Hit
from pipeline.model import Field, FieldSource, FieldStatus, TextLine

_LABEL = re.compile(r"^备\s*注[:：]?")
_OTHER_LABELS = re.compile(
    r"(价税合计|开票人|收款人|复核|销售方|购买方|名称|纳税人识别号|合计|小写|大写|[¥￥]|专用章|监制章)"
)


# Values of the neighbouring rows and blocks that OCR gives without their label: the amount in
# words (价税合计 大写) and a bare taxpayer ID.
_NOT_REMARKS = re.compile(r"^(?:[零壹贰叁肆伍陆柒捌玖拾佰仟万亿圆元角分整正]{4,}|[0-9A-Z]{15,20})$")


def _plain(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def _label_lines(lines: Sequence[TextLine]) -> list[TextLine]:
    """The line(s) of the 备注 label: "备注" (with remarks glued on, maybe), or "备" then "注" below."""
    for k, line in enumerate(lines):
        text = _plain(line.text)
        if _LABEL.match(text):
            return [line]
        if text == "备":
            below = [
                other
                for other in lines[k + 1 : k + 6]
                if _plain(other.text) == "注" and abs(other.x0 - line.x0) <= 2 * (line.x1 - line.x0) + 4
            ]
            if below:
                return [line, below[0]]
    return []


def extract_remarks(lines: Sequence[TextLine]) -> Hit | None:
    """The remarks text, or None when the page has no 备注 label or nothing beside it."""
    label = _label_lines(lines)
    if not label:
        return None
    head = label[0]
    glued = _LABEL.sub("", _plain(head.text)) if len(label) == 1 else ""
    top = min(line.y0 for line in label)
    bottom = max(line.y1 for line in label)
    # one character of the label: a vertical 备注 is one column of characters, a horizontal one a row
    char = max(min(head.x1 - head.x0, head.y1 - head.y0), 1.0)
    # a vertical label sits centred in its box, so the remarks may start above its first
    # character; the rows above and below (价税合计, 开票人) are kept out by their labels
    margin = char * 2.5
    right_of = max(line.x1 for line in label)
    found = [
        line
        for line in lines
        if line not in label
        and line.page == head.page
        and line.x0 >= right_of - 2
        and line.y0 >= top - margin
        and line.y1 <= bottom + margin
        and not _OTHER_LABELS.search(line.text)
        and not _NOT_REMARKS.match(_plain(line.text))
    ]
    height = bottom - top
    found.sort(key=lambda line: (round(line.y0 / max(height / 3, 1.0)), line.x0))
    parts = ([glued] if glued else []) + [line.text.strip() for line in found if line.text.strip()]
    if not parts:
        return None
    return Hit(" ".join(parts), tuple([head, *found]) if found else (head,))


def remarks_field(lines: Sequence[TextLine], source: FieldSource) -> Field:
    """The ``remarks`` field. It is informational (no rule checks it), so it is marked ``DERIVED``:
    a weak read of free text must never send the whole invoice to review."""
    hit = extract_remarks(lines)
    if hit is None:
        return Field.missing(source=source)
    note = f"备注 read from the page ({source}); not validated"
    return Field(hit.text, hit.confidence, FieldStatus.OK, FieldSource.DERIVED, hit.box, [note])


@dataclass(frozen=True, slots=True)
class RedLetterReference:
    """The blue invoice a red-letter invoice reverses, as its remarks name it."""

    invoice_code: str | None
    invoice_number: str
    confirmation_number: str | None = None  # 红字发票信息确认单编号 (全电)


_TAX_CONTROL = re.compile(
    r"对应正数发票代码[:：]?\s*([0-9]{10,12})\s*[,，;；]?\s*号码[:：]?\s*([0-9]{8})(?![0-9])"
)
_ALL_ELECTRONIC = re.compile(r"被红冲蓝字(?:数电|全电)?(?:发票)?号码[:：]?\s*([0-9]{20})(?![0-9])")
_ORIGINAL = re.compile(r"原发票代码[:：]?\s*([0-9]{10,12})\s*[,，;；]?\s*原?发票号码[:：]?\s*([0-9]{8,20})")
_CONFIRMATION = re.compile(r"红字(?:发票)?信息(?:确认单|表)编号[:：]?\s*([0-9A-Za-z]{8,24})")


def red_letter_reference(text: str | None) -> RedLetterReference | None:
    """The blue invoice named in a red-letter invoice's remarks, or None."""
    if not text:
        return None
    plain = unicodedata.normalize("NFKC", text)
    plain = re.sub(r"(?<=[0-9])\s+(?=[0-9])", "", plain)  # numbers OCR split into groups
    confirmation = _CONFIRMATION.search(plain)
    note = confirmation.group(1) if confirmation else None
    found = _TAX_CONTROL.search(plain) or _ORIGINAL.search(plain)
    if found:
        return RedLetterReference(found.group(1), found.group(2), note)
    found = _ALL_ELECTRONIC.search(plain)
    if found:
        return RedLetterReference(None, found.group(1), note)
    return None


__all__ = ["RedLetterReference", "extract_remarks", "red_letter_reference", "remarks_field"]
