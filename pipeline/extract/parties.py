"""Buyer and seller blocks from the page's geometry: a name or ID belongs to the block its label stands in.

Every kind of VAT invoice prints both parties (see FAPIAO.md), in one of two layouts:

- stacked (paper invoices, provincial e-invoices): the 购买方 block above the goods table, the 销售方
  block below the 价税合计 row, each marked by its vertical 购买方 / 销售方 title on the left; the
  cipher area (密码区) and the remarks (备注) fill the right of the two blocks;
- columns (全电 invoices): 购买方信息 on the left, 销售方信息 on the right, side by side between the
  header and the goods table.

A private buyer (个人, a person's name) prints the ID label with nothing after it: the buyer's ID is
then missing, never the seller's ID read "after" the empty label. A value whose lines lie outside
its label's block is not taken; an ID the block's own 购买方 / 销售方 mark places in the other
party's block carries a note that sends it to review.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pipeline.extract.layout import Accept, Hit, LabelMatch, Row, normalize, read_match
from pipeline.fapiao import check_tax_id
from pipeline.model import TextLine

Party = Literal["buyer", "seller"]
PARTIES: tuple[Party, Party] = ("buyer", "seller")
PARTY_WORDS = {"buyer": "buyer (购买方)", "seller": "seller (销售方)"}

BUYER_MARK = re.compile(r"^(?:购买方|购方|买方|购买|购|买)(?:信息)?[:：]?$")
SELLER_MARK = re.compile(r"^(?:销售方|销方|售方|销售|销|售)(?:信息)?[:：]?$")
# Single characters of the vertical titles beside the stacked blocks: cipher area and remarks.
SIDE_MARK = re.compile(r"^(?:密码区|密码|码区|密|码|区|备注|备|注)$")
TABLE_HEADER = re.compile(r"税率|规格型号|项目名称|货物或应税劳务|单价")
TOTALS = re.compile(r"价税合计")
NOT_AN_ID_ROW = re.compile(r"地址|电话|开户行|账号|银行|名称")
ID_TOKEN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")


@dataclass(frozen=True)
class Marker:
    party: Party
    line: TextLine


@dataclass
class PartyBlocks:
    """Where each party's block lies on its page (pixel coordinates of that page)."""

    page: int
    columns: bool
    row_height: float
    band_top: float
    band_bottom: float
    split_x: float = 0.0  # columns: the buyer left of it, the seller right
    buyer_bottom: float = math.inf  # stacked: the buyer above it
    seller_top: float = -math.inf  # stacked: the seller below it
    buyer_right: float = math.inf
    seller_right: float = math.inf
    markers: list[Marker] = field(default_factory=list)

    def party_at(self, x: float, y: float, page: int) -> Party | None:
        if page != self.page or not self.band_top <= y <= self.band_bottom:
            return None
        if self.columns:
            return "buyer" if x < self.split_x else "seller"
        if y < self.buyer_bottom:
            return "buyer" if x < self.buyer_right else None
        if y > self.seller_top:
            return "seller" if x < self.seller_right else None
        return None

    def party_of(self, line: TextLine) -> Party | None:
        return self.party_at((line.x0 + line.x1) / 2, line.center_y, line.page)

    def marker_party(self, line: TextLine) -> Party | None:
        """The party whose printed 购买方 / 销售方 mark is the nearest one left of ``line``."""
        left = [
            m for m in self.markers if m.line.x1 <= line.x0 + self.row_height and m.line.page == line.page
        ]
        if not left:
            return None

        def vertical_gap(marker: Marker) -> float:
            return max(0.0, marker.line.y0 - line.center_y, line.center_y - marker.line.y1)

        if self.columns:
            near = [m for m in left if vertical_gap(m) <= 3 * self.row_height]
            if not near:
                return None
            return max(near, key=lambda m: m.line.x1).party
        return min(left, key=vertical_gap).party


def label_point(match: LabelMatch) -> tuple[float, float]:
    """Where a label starts on the page: its line's box, shared out by characters."""
    row = match.row
    index = row.line_at(match.start)
    line = row.lines[index]
    offset = match.start - row.line_start(index)
    length = max(len(normalize(line.text)), 1)
    return line.x0 + (line.x1 - line.x0) * offset / length, line.center_y


def _markers(lines: Sequence[TextLine]) -> list[Marker]:
    """The vertical 购买方 / 销售方 titles: one tall line, or single characters stacked."""
    singles: list[Marker] = []
    found: list[Marker] = []
    for line in lines:
        text = normalize(line.text)
        for party, pattern in (("buyer", BUYER_MARK), ("seller", SELLER_MARK)):
            if not pattern.match(text):
                continue
            marker = Marker(party, line)  # type: ignore[arg-type]
            if len(text) == 1:
                singles.append(marker)
            elif line.y1 - line.y0 > 1.5 * (line.x1 - line.x0):
                found.append(marker)
    # A lone 购 or 销 may be any text; two characters of one title stacked at one x are the title.
    for marker in singles:
        line = marker.line
        for other in singles:
            if other is marker or other.party != marker.party or other.line.page != line.page:
                continue
            height = max(line.height, other.line.height, 1.0)
            if abs(other.line.x0 - line.x0) < height and 0 < abs(other.line.y0 - line.y0) < 3 * height:
                found.append(marker)
                break
    return found


def _line_of(row: Row, pattern: re.Pattern[str]) -> TextLine:
    """The line of ``row`` where ``pattern`` starts (rows may also hold tall vertical text)."""
    match = pattern.search(row.text)
    return row.lines[row.line_at(match.start() if match else 0)]


def _side_marks(lines: Sequence[TextLine]) -> list[TextLine]:
    return [line for line in lines if SIDE_MARK.match(normalize(line.text))]


def find_party_blocks(
    rows: Sequence[Row], lines: Sequence[TextLine], labels: Sequence[LabelMatch], fully_digital: bool
) -> PartyBlocks | None:
    """The two party blocks of the page holding the party labels; None when no label or mark is found."""
    markers = _markers(lines)
    if labels:
        page = labels[0].row.page
    elif markers:
        page = markers[0].line.page
    else:
        return None
    labels = [match for match in labels if match.row.page == page]
    markers = [marker for marker in markers if marker.line.page == page]
    page_lines = [line for line in lines if line.page == page]
    page_rows = [row for row in rows if row.page == page]
    # Heights of the label lines themselves: rows may hold the tall vertical titles.
    heights = sorted(match.first_line.height for match in labels) or sorted(
        line.height for line in page_lines
    )
    row_height = max(heights[len(heights) // 2], 1.0)
    left = min(line.x0 for line in page_lines)
    right = max(line.x1 for line in page_lines)
    width = max(right - left, 1.0)

    points = [(label_point(match), match) for match in labels]
    tops = [match.first_line.y0 for match in labels] + [marker.line.y0 for marker in markers]
    top = min(tops) - row_height
    first_label_y = min(tops)
    header = next(
        (
            line
            for row in page_rows
            if TABLE_HEADER.search(row.text) and re.search("金额|数量", row.text)
            for line in (_line_of(row, TABLE_HEADER),)
            if line.y0 > first_label_y
        ),
        None,
    )
    totals = next(
        (
            line
            for row in page_rows
            if TOTALS.search(row.text)
            for line in (_line_of(row, TOTALS),)
            if header is None or line.y0 > header.y0
        ),
        None,
    )

    # Side by side: two labels of one kind on one row far apart, or the two marks so, above the goods
    # table (below the totals, the remarks may print a 名称 of their own: "酒店名称").
    table_top = header.y0 if header is not None else totals.y0 if totals is not None else math.inf
    pair: tuple[float, float] | None = None
    for (a_point, a), (b_point, b) in ((p, q) for i, p in enumerate(points) for q in points[i + 1 :]):
        same_kind = a.row.text[a.start : a.end][-2:] == b.row.text[b.start : b.end][-2:]
        same_row = abs(a_point[1] - b_point[1]) < 0.6 * row_height
        if same_kind and same_row and a_point[1] < table_top and abs(a_point[0] - b_point[0]) > 0.25 * width:
            pair = (min(a_point[0], b_point[0]), max(a_point[0], b_point[0]))
            break
    buyer_marks = [m.line for m in markers if m.party == "buyer"]
    seller_marks = [m.line for m in markers if m.party == "seller"]
    marks_side_by_side = any(
        s.x0 - b.x1 > 0.25 * width and min(s.y1, b.y1) - max(s.y0, b.y0) > 0 and s.y0 < table_top
        for b in buyer_marks
        for s in seller_marks
    )
    below_totals = totals is not None and any(p[1] > totals.y1 for p, _ in points)
    # Labels that name their party (购买方名称 / 销售方名称) on rows one above the other: each row is
    # its party's, whatever the kind of invoice (generic forms and pages drawn from e-invoice data).
    named_rows = _named_label_rows(points, row_height)
    columns = (
        (pair is not None or marks_side_by_side or fully_digital) and not below_totals and not named_rows
    )

    if columns:
        bottom = header.y0 if header is not None else max(p[1] for p, _ in points) + 4 * row_height
        if seller_marks and marks_side_by_side:
            split = min(line.x0 for line in seller_marks) - 0.5 * row_height
        elif pair is not None:
            split = max(pair[1] - 2.5 * row_height, (pair[0] + pair[1]) / 2)
        else:
            split = left + width / 2
        return PartyBlocks(page, True, row_height, top, bottom, split_x=split, markers=markers)

    name_ys = sorted(p[1] for p, _ in points)
    if header is not None:
        buyer_bottom = header.y0
    elif totals is not None:
        buyer_bottom = totals.y0
    elif len(name_ys) >= 2 and name_ys[-1] - name_ys[0] > 6 * row_height:
        gaps = [(b - a, (a + b) / 2) for a, b in itertools.pairwise(name_ys)]
        buyer_bottom = max(gaps)[1]  # the widest gap between labels is the goods table
    else:
        buyer_bottom = (top + max(line.y1 for line in page_lines)) / 2
    seller_top = totals.y1 if totals is not None else buyer_bottom
    if named_rows:
        buyer_bottom = seller_top = named_rows
    blocks = PartyBlocks(
        page,
        False,
        row_height,
        top,
        math.inf,
        buyer_bottom=buyer_bottom,
        seller_top=seller_top,
        markers=markers,
    )
    # The cipher area and the remarks start where their vertical titles stand.
    label_right = min((p[0] for p, _ in points), default=left) + 5 * row_height
    for mark in _side_marks(page_lines):
        if mark.x0 <= label_right:
            continue
        if top <= mark.center_y < buyer_bottom:
            blocks.buyer_right = min(blocks.buyer_right, mark.x0 - 0.3 * row_height)
        elif mark.center_y > seller_top:
            blocks.seller_right = min(blocks.seller_right, mark.x0 - 0.3 * row_height)
    return blocks


NAMED_BUYER = re.compile(r"(?:购买方|购方|买方)\s*$")
NAMED_SELLER = re.compile(r"(?:销售方|销方|卖方)\s*$")


def _named_label_rows(points: Sequence[tuple[tuple[float, float], LabelMatch]], row_height: float) -> float:
    """Where the buyer's rows end when the labels name their party (购买方名称 above 销售方名称); 0 if not."""
    buyer_ys, seller_ys = [], []
    for (_, y), match in points:
        before = match.row.text[max(0, match.start - 4) : match.start]
        if NAMED_BUYER.search(before):
            buyer_ys.append(y)
        elif NAMED_SELLER.search(before):
            seller_ys.append(y)
    if not buyer_ys or not seller_ys or min(seller_ys) - max(buyer_ys) < row_height:
        return 0.0
    return (max(buyer_ys) + min(seller_ys)) / 2


def label_party(blocks: PartyBlocks, match: LabelMatch) -> Party | None:
    x, y = label_point(match)
    return blocks.party_at(x, y, match.row.page)


def read_party_value(
    rows: Sequence[Row],
    blocks: PartyBlocks,
    party: Party,
    labels: Sequence[LabelMatch],
    accept: Accept,
    stop: re.Pattern[str],
    below_rows: float,
) -> Hit | None:
    """The value after the first of the party's labels that has one, from that block's lines only."""
    for match in labels:
        if label_party(blocks, match) != party:
            continue
        hit = read_match(
            rows,
            match,
            accept,
            stop,
            keep=lambda line: blocks.party_of(line) == party,
            below_rows=below_rows,
        )
        if hit is not None:
            return hit
    return None


def unlabelled_tax_id(
    rows: Sequence[Row], blocks: PartyBlocks, party: Party, name_labels: Sequence[LabelMatch]
) -> Hit | None:
    """An ID-shaped value under the party's name when its ID label was not read (blur, a seal).

    Only an 18-character code whose check character holds, in the party's own block, a few rows
    under its name; it always goes to review, since no label says what it is.
    """
    names = [match for match in name_labels if label_party(blocks, match) == party]
    if not names:
        return None
    name_x, name_y = label_point(names[0])
    height = blocks.row_height
    for row in rows:
        if row.page != blocks.page or not 0.5 * height < row.y0 - name_y <= 5 * height:
            continue
        if NOT_AN_ID_ROW.search(row.text):
            continue
        for line in row.lines:
            if line.x1 < name_x or blocks.party_of(line) != party:
                continue
            for token in ID_TOKEN.findall(normalize(line.text)):
                ok, _ = check_tax_id(token.upper())
                if ok:
                    note = (
                        f"taxpayer ID read without its label under the {PARTY_WORDS[party]} name: confirm it"
                    )
                    return Hit(token.upper(), (line,), (note,))
    return None


def cross_check(blocks: PartyBlocks, party: Party, hit: Hit | None) -> Hit | None:
    """Add a note when the block's own 购买方 / 销售方 mark places the value in the other block."""
    if hit is None:
        return None
    marked = {blocks.marker_party(line) for line in hit.lines} - {None}
    if marked and party not in marked:
        other = next(iter(marked))
        note = f"value lies in the {PARTY_WORDS[other]} block, not the {PARTY_WORDS[party]} block"  # type: ignore[index]
        return Hit(hit.text, hit.lines, (*hit.notes, note))
    return hit
