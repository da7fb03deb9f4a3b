"""Geometry over text lines: find a printed label, read the value beside or below it.

Lines are grouped into rows; a row's text is its lines joined left to right, so a
letter-spaced label ("名      称") that OCR splits into two boxes still matches.
Values are read from the rest of the label's own line, then the next line on the
row, then the line below: the same for OCR lines and PDF text-layer runs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from pipeline.model import Box, TextLine, polygon_from_rect

Accept = Callable[[str], str | None]


WHITE_SPACE = re.compile(r"\s+")


# Extraction asks for the same lines' normal forms hundreds of times a page (every label is
# looked for on every row): cached, a text-layer page's extraction took a quarter less CPU.
@lru_cache(maxsize=16384)
def normalize(text: str) -> str:
    """Full-width to half-width (NFKC), one yen sign, no spaces."""
    return WHITE_SPACE.sub("", unicodedata.normalize("NFKC", text).replace("￥", "¥"))


def spaced(text: str) -> str:
    """NFKC with each run of white space as one space: for Latin values, where a space ends a word."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).replace("￥", "¥")).strip()


def spaced_tail(text: str, consumed: int) -> str:
    """``spaced(text)`` after its first ``consumed`` non-space characters (a position in ``normalize``)."""
    text = spaced(text)
    count = 0
    for position, ch in enumerate(text):
        if count == consumed:
            return text[position:].lstrip()
        if not ch.isspace():
            count += 1
    return ""


@dataclass(frozen=True)
class Hit:
    """A value read off the page with the lines it came from."""

    text: str
    lines: tuple[TextLine, ...]
    # Why the value should be looked at even when read cleanly (e.g. found outside its label's block).
    notes: tuple[str, ...] = ()

    @property
    def confidence(self) -> float:
        return min((line.confidence for line in self.lines), default=0.0)

    @property
    def box(self) -> Box | None:
        return box_around(self.lines)


def box_around(lines: Sequence[TextLine]) -> Box | None:
    if not lines:
        return None
    x0 = min(line.x0 for line in lines)
    y0 = min(line.y0 for line in lines)
    x1 = max(line.x1 for line in lines)
    y1 = max(line.y1 for line in lines)
    return Box(page=lines[0].page, polygon=polygon_from_rect(x0, y0, x1, y1))


def vertical_overlap(a: TextLine, b: TextLine) -> float:
    """Share of the shorter line's height that the two lines have in common."""
    overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0.0, overlap) / max(1.0, min(a.height, b.height))


@dataclass
class Row:
    lines: list[TextLine]
    text: str = ""
    owners: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lines.sort(key=lambda line: line.x0)
        parts, owners = [], []
        for index, line in enumerate(self.lines):
            norm = normalize(line.text)
            parts.append(norm)
            owners.extend([index] * len(norm))
        self.text = "".join(parts)
        self.owners = owners

    @property
    def page(self) -> int:
        return self.lines[0].page

    @property
    def y0(self) -> float:
        return min(line.y0 for line in self.lines)

    @property
    def y1(self) -> float:
        return max(line.y1 for line in self.lines)

    @property
    def height(self) -> float:
        return sorted(line.height for line in self.lines)[len(self.lines) // 2]

    def line_at(self, char_index: int) -> int:
        return self.owners[min(char_index, len(self.owners) - 1)]

    def line_text(self, index: int) -> str:
        return normalize(self.lines[index].text)

    def line_start(self, index: int) -> int:
        return self.owners.index(index) if index in self.owners else len(self.text)


def build_rows(lines: Iterable[TextLine]) -> list[Row]:
    """Cluster lines into rows by vertical overlap, top to bottom."""
    ordered = sorted(lines, key=lambda line: (line.page, line.center_y))
    groups: list[list[TextLine]] = []
    for line in ordered:
        placed = False
        for group in reversed(groups[-3:]):
            anchor = group[0]
            if anchor.page == line.page and vertical_overlap(anchor, line) >= 0.5:
                group.append(line)
                placed = True
                break
        if not placed:
            groups.append([line])
    return [Row(group) for group in groups]


@dataclass(frozen=True)
class LabelMatch:
    row: Row
    start: int
    end: int

    @property
    def line_index(self) -> int:
        return self.row.line_at(max(self.end - 1, self.start))

    @property
    def first_line(self) -> TextLine:
        return self.row.lines[self.row.line_at(self.start)]


def find_labels(rows: Sequence[Row], label: re.Pattern[str]) -> list[LabelMatch]:
    found = []
    for row in rows:
        for match in label.finditer(row.text):
            found.append(LabelMatch(row, match.start(), match.end()))
    return found


def _strip_punct(text: str) -> str:
    return text.lstrip(":;.,、|")


def candidates_after(
    match: LabelMatch, stop: re.Pattern[str] | None, keep_spaces: bool = False
) -> list[tuple[str, tuple[TextLine, ...]]]:
    """Texts that may hold the label's value, most likely first.

    ``keep_spaces`` gives the texts with their spaces (Latin invoices, where a space ends a
    number); otherwise spaces are dropped (Chinese forms space out digits and labels).
    """
    row = match.row
    index = match.line_index
    norm = spaced if keep_spaces else normalize

    def cut(text: str) -> str:
        text = _strip_punct(text)
        found = stop.search(text) if stop is not None else None
        return text[: found.start()] if found and found.start() > 0 else text

    consumed = match.end - row.line_start(index)
    if keep_spaces:
        rest = cut(spaced_tail(row.lines[index].text, consumed))
    else:
        rest = cut(row.line_text(index)[consumed:])
    label_line = row.lines[index]
    out: list[tuple[str, tuple[TextLine, ...]]] = []
    if rest:
        out.append((rest, (label_line,)))
    following = row.lines[index + 1 : index + 3]
    joiner = " " if keep_spaces else ""
    if following:
        first = _strip_punct(norm(following[0].text))
        if not (stop is not None and stop.match(normalize(following[0].text))):
            out.append((first, (following[0],)))
            if rest:
                out.append((rest + joiner + first, (label_line, following[0])))
            if len(following) > 1:
                second = norm(following[1].text)
                out.append((first + joiner + second, tuple(following)))
    # Text layers often split one value into runs ("2018" "年" "09" "月"): try the whole row rest.
    if len(row.lines) > index + 2:
        tail = [rest] + [norm(line.text) for line in row.lines[index + 1 :]]
        whole = cut(joiner.join(part for part in tail if part))
        if whole:
            last = row.line_at(match.end + len(normalize(whole)) - 1)
            out.append((whole, tuple(row.lines[index : max(last, index) + 1])))
    return out


def lines_below(match: LabelMatch, rows: Sequence[Row], max_rows: float = 2.6) -> list[TextLine]:
    """Lines just under the label, overlapping its horizontal span, nearest first."""
    label = match.first_line
    height = max(label.height, 1.0)
    found = []
    for row in rows:
        if row.page != match.row.page:
            continue
        distance = (row.y0 + row.y1) / 2 - (match.row.y0 + match.row.y1) / 2
        if not 0 < distance <= max_rows * height:
            continue
        for line in row.lines:
            if min(line.x1, label.x1 + 12 * height) - max(line.x0, label.x0 - height) > 0:
                found.append(line)
    return sorted(found, key=lambda line: (line.y0, line.x0))


def read_match(
    rows: Sequence[Row],
    match: LabelMatch,
    accept: Accept,
    stop: re.Pattern[str] | None,
    look_below: bool = True,
    keep_spaces: bool = False,
    keep: Callable[[TextLine], bool] | None = None,
    below_rows: float = 2.6,
) -> Hit | None:
    """The value ``accept`` takes after one label occurrence: same line, row, then below.

    ``keep`` limits the lines a value may come from (the label's own line always qualifies: a
    value printed right after its label belongs to it); ``below_rows`` how far down to look.
    """
    label_line = match.row.lines[match.line_index]
    for text, lines in candidates_after(match, stop, keep_spaces):
        if keep is not None and not all(line is label_line or keep(line) for line in lines):
            continue
        value = accept(text)
        if value is not None:
            return Hit(value, lines)
    if look_below:
        norm = spaced if keep_spaces else normalize
        below = [line for line in lines_below(match, rows, below_rows) if keep is None or keep(line)]
        for line in below[:3]:
            value = accept(_strip_punct(norm(line.text)))
            if value is not None:
                return Hit(value, (line,))
    return None


def value_after_label(
    rows: Sequence[Row],
    label: re.Pattern[str],
    accept: Accept,
    stop: re.Pattern[str] | None = None,
    look_below: bool = True,
) -> Hit | None:
    """The first value ``accept`` takes after any occurrence of ``label``."""
    for match in find_labels(rows, label):
        hit = read_match(rows, match, accept, stop, look_below)
        if hit is not None:
            return hit
    return None


def search_lines(lines: Sequence[TextLine], accept: Accept) -> list[Hit]:
    """Every line whose text ``accept`` takes, in reading order."""
    hits = []
    for row in build_rows(lines):
        for line in row.lines:
            value = accept(normalize(line.text))
            if value is not None:
                hits.append(Hit(value, (line,)))
    return hits
