"""OFD (GB/T 33190) -> pages: the invoice's own data, the text objects, and every page drawn.

An OFD file is a ZIP of XML: ``OFD.xml`` (DocInfo, CustomDatas, DocRoot) -> ``Document.xml``
(pages, templates, resources, CustomTags, attachments) -> each page's ``Content.xml`` (layers of
TextObject, PathObject and ImageObject, positions in millimetres). Real files differ, so each
source of fields is taken where it exists, most trusted first:

1. an attached invoice XML (``Attachs/original_invoice.xml`` and the like, see ``load.xml``);
2. the CustomTag files: each field names by ``ObjectRef`` the text objects it is printed in
   (a value may be split over several, "¥" and the digits);
3. ``DocInfo/CustomDatas`` name/value pairs (发票号码, 合计金额 …).

The text objects (of the page and its templates) become the page's text layer, with positions,
for the same layout extractor that reads OCR lines: a field no data names is still read there.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import posixpath
import re
import warnings
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from PIL import Image, UnidentifiedImageError

from pipeline.config import Settings
from pipeline.errors import EInvoiceUnreadable, InputError, TooLarge
from pipeline.load.bundles import check_members, open_archive, read_member
from pipeline.load.canvas import MM_PER_INCH, Canvas
from pipeline.load.einvoice import build
from pipeline.load.images import check_pixels
from pipeline.load.pdf import merge_runs
from pipeline.load.xml import children, local, parse_safely, read_invoice_xml, text
from pipeline.model import Box, Page, StructuredInvoice, TextLine, polygon_from_rect

log = logging.getLogger(__name__)

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
DEFAULT_PAGE_MM = (210.0, 297.0)

TAG_FIELDS = {
    "InvoiceCode": "invoice_code",
    "InvoiceNo": "invoice_number",
    "IssueDate": "issue_date",
    "InvoiceCheckCode": "check_code",
    "MachineNo": "machine_no",
    "BuyerName": "buyer_name",
    "BuyerTaxID": "buyer_tax_id",
    "SellerName": "seller_name",
    "SellerTaxID": "seller_tax_id",
    "TaxExclusiveTotalAmount": "amount_excl_tax",
    "TaxTotalAmount": "tax_amount",
    "TaxInclusiveTotalAmount": "total_amount",
    # the names of the 数电 XML, which some issuers use in their tags too
    "InvoiceNumber": "invoice_number",
    "IssueTime": "issue_date",
    "BuyerIdNum": "buyer_tax_id",
    "SellerIdNum": "seller_tax_id",
    "TotalAmWithoutTax": "amount_excl_tax",
    "TotalTaxAm": "tax_amount",
    "TotalTax-includedAmount": "total_amount",
}
TAG_ITEM_KEYS = {
    "Item": "name",
    "Specification": "spec",
    "MeasurementDimension": "unit",
    "Quantity": "quantity",
    "Price": "unit_price",
    "Amount": "amount",
    "TaxScheme": "tax_rate",
    "TaxAmount": "tax_amount",
}
# DocInfo/CustomData names, matched after removing spaces and punctuation; the first rule whose
# words all occur wins, so 价税合计 is tried before 合计金额 and the parties before their fields.
CUSTOM_DATA_RULES = (
    (("发票代码",), "invoice_code"),
    (("发票号码",), "invoice_number"),
    (("开票日期",), "issue_date"),
    (("校验码",), "check_code"),
    (("机器编号",), "machine_no"),
    (("购", "名称"), "buyer_name"),
    (("购", "识别号"), "buyer_tax_id"),
    (("购", "税号"), "buyer_tax_id"),
    (("销", "名称"), "seller_name"),
    (("销", "识别号"), "seller_tax_id"),
    (("销", "税号"), "seller_tax_id"),
    (("价税合计",), "total_amount"),
    (("不含税",), "amount_excl_tax"),
    (("含税",), "total_amount"),
    (("合计金额",), "amount_excl_tax"),
    (("合计税额",), "tax_amount"),
)


def custom_data_field(name: str) -> str | None:
    key = re.sub(r"[\s:：、,，()（）/]", "", name)
    if "大写" in key:
        return None
    return next((field for words, field in CUSTOM_DATA_RULES if all(word in key for word in words)), None)


# ---- the package -------------------------------------------------------------------------------


class Package:
    """The members of one OFD file, found by path whatever their case, read within the limits."""

    def __init__(self, data: bytes, settings: Settings) -> None:
        self.settings = settings
        self.archive = open_archive(data, "OFD file")
        try:
            infos = check_members(self.archive, settings, "OFD file")
        except InputError:
            self.archive.close()
            raise
        self.infos = {info.filename.lstrip("/").lower(): info for info in infos}
        self.budget = settings.max_unpacked_bytes

    def close(self) -> None:
        self.archive.close()

    def read(self, path: str) -> bytes | None:
        info = self.infos.get(posixpath.normpath(path.lstrip("/")).lower())
        if info is None:
            return None
        data = read_member(self.archive, info, self.budget, self.settings)
        self.budget -= len(data)
        return data

    def xml(self, path: str) -> Element | None:
        data = self.read(path)
        return None if data is None else parse_safely(data, f"OFD part {path}")

    def names(self) -> list[str]:
        return [info.filename.lstrip("/") for info in self.infos.values()]


def resolve(base: str, location: str) -> str:
    """A location as OFD writes it: absolute from the package root ("/Doc_0/..."), else relative."""
    location = location.strip().replace("\\", "/")
    if location.startswith("/"):
        return posixpath.normpath(location.lstrip("/"))
    return posixpath.normpath(posixpath.join(base, location))


def numbers(value: str | None) -> list[float]:
    if not value:
        return []
    try:
        return [float(part) for part in value.replace(",", " ").split()]
    except ValueError:
        return []


def color(element: Element | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if element is None:
        return default
    value = (element.get("Value") or "").strip()
    if value.startswith("#"):
        parts = [int(p, 16) for p in value.replace("#", " ").split() if p] if " " in value else []
        if not parts and len(value) == 7:
            parts = [int(value[i : i + 2], 16) for i in (1, 3, 5)]
    else:
        parts = [int(float(p)) for p in value.split() if re.fullmatch(r"[\d.]+", p)]
    if len(parts) >= 3:
        return (parts[0], parts[1], parts[2])
    if len(parts) == 1:
        return (parts[0], parts[0], parts[0])
    return default


def multiply(inner: Matrix, outer: Matrix) -> Matrix:
    a, b, c, d, e, f = inner
    A, B, C, D, E, F = outer
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D, e * A + f * C + E, e * B + f * D + F)


def apply(matrix: Matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = matrix
    return (a * x + c * y + e, b * x + d * y + f)


def deltas(value: str | None) -> list[float]:
    """DeltaX/DeltaY: numbers, with ``g N D`` meaning N times D."""
    out: list[float] = []
    tokens = (value or "").split()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        try:
            if token == "g" and index + 2 < len(tokens):
                out.extend([float(tokens[index + 2])] * int(float(tokens[index + 1])))
                index += 3
                continue
            out.append(float(token))
        except ValueError:
            pass
        index += 1
    return out


# ---- resources and objects ---------------------------------------------------------------------


@dataclass
class Resources:
    media: dict[str, str] = field(default_factory=dict)  # MultiMedia ID -> package path
    draw_params: dict[str, Element] = field(default_factory=dict)

    def add(self, package: Package, path: str) -> None:
        root = package.xml(path)
        if root is None:
            return
        base = (
            resolve(posixpath.dirname(path), root.get("BaseLoc", ""))
            if root.get("BaseLoc")
            else posixpath.dirname(path)
        )
        for element in root.iter():
            name = local(element.tag)
            if name == "MultiMedia":
                media_file = text(element, "MediaFile")
                if media_file and element.get("ID"):
                    self.media[element.get("ID", "")] = resolve(base, media_file)
            elif name == "DrawParam" and element.get("ID"):
                self.draw_params[element.get("ID", "")] = element


@dataclass
class Glyphs:
    """One TextObject's characters with their positions on the page (mm, baseline)."""

    object_id: str
    chars: list[tuple[str, float, float]]  # (char, x, baseline y)
    size: float
    rgb: tuple[int, int, int]

    @property
    def text(self) -> str:
        return "".join(ch for ch, _, _ in self.chars)


@dataclass
class Drawn:
    """What one page holds once read: text for the extractor, and the drawing for the image."""

    glyphs: list[Glyphs] = field(default_factory=list)
    texts: dict[str, Glyphs] = field(default_factory=dict)  # text objects by ID
    notes: set[str] = field(default_factory=set)


def char_advance(ch: str, size: float) -> float:
    return size * (0.5 if ord(ch) < 0x2E80 else 1.0)


def text_glyphs(element: Element, origin: Matrix, size: float, rgb: tuple[int, int, int]) -> Glyphs:
    chars: list[tuple[str, float, float]] = []
    x = y = 0.0
    for code in children(element, "TextCode"):
        content = code.text or ""
        if code.get("X") is not None:
            x = float(code.get("X") or 0)
        if code.get("Y") is not None:
            y = float(code.get("Y") or 0)
        dx, dy = deltas(code.get("DeltaX")), deltas(code.get("DeltaY"))
        for index, ch in enumerate(content):
            px, py = apply(origin, x, y)
            chars.append((ch, px, py))
            if index < len(content) - 1:
                x += dx[index] if index < len(dx) else char_advance(ch, size)
                y += dy[index] if index < len(dy) else 0.0
    return Glyphs(element.get("ID", ""), chars, size, rgb)


def path_points(data: str) -> list[tuple[list[tuple[float, float]], bool]]:
    """Subpaths of AbbreviatedData (S/M, L, Q, B, A, C) as point lists, each with whether it closes."""
    tokens = data.split()
    subpaths: list[tuple[list[tuple[float, float]], bool]] = []
    points: list[tuple[float, float]] = []
    index = 0

    def take(count: int) -> list[float]:
        nonlocal index
        values = [float(v) for v in tokens[index : index + count]]
        index += count
        return values

    try:
        while index < len(tokens):
            op = tokens[index]
            index += 1
            if op in ("S", "M"):
                if len(points) > 1:
                    subpaths.append((points, False))
                points = [tuple(take(2))]  # type: ignore[list-item]
            elif op == "L":
                points.append(tuple(take(2)))  # type: ignore[arg-type]
            elif op in ("Q", "B"):
                control = take(4 if op == "Q" else 6)
                start = points[-1] if points else (0.0, 0.0)
                pts = [start] + [(control[i], control[i + 1]) for i in range(0, len(control), 2)]
                for step in range(1, 9):
                    t = step / 8
                    points.append(_bezier(pts, t))
            elif op == "A":
                values = take(7)
                points.append((values[5], values[6]))  # arcs drawn as chords: enough for frames
            elif op == "C":
                if points:
                    subpaths.append((points, True))
                    points = [points[0]]
            else:
                continue
    except (ValueError, IndexError):
        pass
    if len(points) > 1:
        subpaths.append((points, False))
    return subpaths


def _bezier(points: list[tuple[float, float]], t: float) -> tuple[float, float]:
    while len(points) > 1:
        points = [(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t) for a, b in itertools.pairwise(points)]
    return points[0]


class PageDrawer:
    """Walks the objects of page contents, drawing them and collecting their text."""

    def __init__(
        self, package: Package, resources: Resources, canvas: Canvas | None, settings: Settings
    ) -> None:
        self.package = package
        self.resources = resources
        self.canvas = canvas
        self.settings = settings
        self.images: dict[str, Image.Image | None] = {}

    def walk(self, container: Element, drawn: Drawn, outer: Matrix = IDENTITY, collect: bool = True) -> None:
        for element in container.iter():
            name = local(element.tag)
            if name == "TextObject":
                self._text(element, drawn, outer, collect)
            elif name == "PathObject":
                self._path(element, outer)
            elif name == "ImageObject":
                self._image(element, drawn, outer)

    def _placement(self, element: Element, outer: Matrix) -> tuple[Matrix, list[float]]:
        boundary = numbers(element.get("Boundary")) or [0.0, 0.0, 0.0, 0.0]
        ctm_values = numbers(element.get("CTM"))
        ctm: Matrix = tuple(ctm_values) if len(ctm_values) == 6 else IDENTITY  # type: ignore[assignment]
        placed = multiply(multiply(ctm, (1.0, 0.0, 0.0, 1.0, boundary[0], boundary[1])), outer)
        return placed, boundary

    def _text(self, element: Element, drawn: Drawn, outer: Matrix, collect: bool) -> None:
        matrix, _ = self._placement(element, outer)
        size = float(element.get("Size") or 3.0)
        scale = math.hypot(matrix[0], matrix[1]) or 1.0
        rgb = color(next(children(element, "FillColor"), None), (0, 0, 0))
        glyphs = text_glyphs(element, matrix, size, rgb)
        glyphs.size = size * scale  # on the page, after the CTM
        if collect:
            drawn.glyphs.append(glyphs)
            if glyphs.object_id:
                drawn.texts[glyphs.object_id] = glyphs
        if self.canvas is not None and element.get("Fill", "true") != "false":
            for ch, x, y in glyphs.chars:
                self.canvas.char(x, y, ch, size * scale, rgb)

    def _path(self, element: Element, outer: Matrix) -> None:
        if self.canvas is None:
            return
        data = next((e.text for e in children(element, "AbbreviatedData")), None)
        if not data:
            return
        matrix, _ = self._placement(element, outer)
        param = self.resources.draw_params.get(element.get("DrawParam", ""))
        width = float(
            element.get("LineWidth") or (param.get("LineWidth") if param is not None else None) or 0.353
        )
        stroke_el = next(children(element, "StrokeColor"), None)
        fill_el = next(children(element, "FillColor"), None)
        if param is not None:
            stroke_el = stroke_el if stroke_el is not None else next(children(param, "StrokeColor"), None)
            fill_el = fill_el if fill_el is not None else next(children(param, "FillColor"), None)
        stroke = element.get("Stroke", "true") != "false"
        fill = element.get("Fill", "false") == "true"
        for points, closed in path_points(data):
            placed = [apply(matrix, x, y) for x, y in points]
            if fill:
                self.canvas.polygon(placed, color(fill_el, (0, 0, 0)))
            if stroke:
                self.canvas.polyline(
                    placed + ([placed[0]] if closed else []), width, color(stroke_el, (0, 0, 0))
                )

    def _image(self, element: Element, drawn: Drawn, outer: Matrix) -> None:
        if self.canvas is None:
            return
        matrix, _ = self._placement(element, outer)
        picture = self._picture(element.get("ResourceID", ""), drawn)
        if picture is None:
            return
        # The image fills the unit square, mapped onto the page by the CTM and the boundary.
        corners = [apply(matrix, x, y) for x, y in ((0, 0), (1, 0), (0, 1), (1, 1))]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        self.canvas.paste(picture, min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))

    def _picture(self, resource_id: str, drawn: Drawn) -> Image.Image | None:
        if resource_id in self.images:
            return self.images[resource_id]
        picture: Image.Image | None = None
        path = self.resources.media.get(resource_id)
        data = self.package.read(path) if path else None
        if data:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    opened = Image.open(io.BytesIO(data))
                    if opened.width * opened.height > self.settings.max_image_pixels:
                        raise TooLarge(
                            f"an image in the OFD file is {opened.width}x{opened.height} px: too large"
                        )
                    opened.load()
                    picture = opened
            except (
                UnidentifiedImageError,
                OSError,
                SyntaxError,
                ValueError,
                Image.DecompressionBombError,
                Image.DecompressionBombWarning,
            ):
                suffix = posixpath.splitext(path or "")[1].lower()
                drawn.notes.add(f"an embedded {suffix or 'image'} image is not drawn (format not decoded)")
        self.images[resource_id] = picture
        return picture


# ---- text lines and fields ---------------------------------------------------------------------


def glyph_lines(glyphs: list[Glyphs], page: int, scale: float) -> list[TextLine]:
    """Runs of characters on one baseline, in page pixels: the text-line records OCR gives too."""
    lines: list[TextLine] = []
    for item in glyphs:
        run: list[tuple[str, float, float]] = []

        def flush(run: list[tuple[str, float, float]] = run, size: float = item.size) -> None:
            content = "".join(ch for ch, _, _ in run).strip()
            if content:
                x0 = min(x for _, x, _ in run)
                last = max(run, key=lambda c: c[1])
                x1 = last[1] + char_advance(last[0], size)
                base = max(y for _, _, y in run)
                # Ink extents as a text layer or OCR gives them: CJK fill the em, digits and capitals
                # stand about 0.73 em on the baseline (a box of the whole em would reach into the row above).
                wide = any(ord(ch) >= 0x2E80 for ch, _, _ in run)
                top, bottom = (0.88, 0.12) if wide else (0.74, 0.04)
                polygon = polygon_from_rect(
                    x0 * scale, (base - size * top) * scale, x1 * scale, (base + size * bottom) * scale
                )
                lines.append(TextLine(content.replace("\u3000", " "), 1.0, polygon, page))
            run.clear()

        for ch, x, y in item.chars:
            if run:
                last_ch, last_x, last_y = run[-1]
                # The blank between this glyph and the end of the last one: one text object may place
                # several cells ("9.91" ... "1.29") by its DeltaX. Far apart: separate lines; a
                # word-sized gap between Latin characters: a space, so that numbers never run together
                # ("9.911.29"; letter-spaced CJK labels need none).
                gap = x - (last_x + char_advance(last_ch, item.size))
                if abs(y - last_y) > item.size * 0.5 or x < last_x - 0.01 or gap > item.size * 1.5:
                    flush()
                elif (
                    gap > item.size * 0.6 and last_ch.isascii() and ch.isascii() and " " not in (ch, last_ch)
                ):
                    run.append((" ", last_x + char_advance(last_ch, item.size), last_y))
            run.append((ch, x, y))
        flush()
    lines.sort(key=lambda line: (round(line.y0 / max(line.height, 1.0)), line.x0))
    return merge_runs(lines)


def tag_sources(
    package: Package, doc_dir: str, document: Element, texts: dict[str, tuple[int, Glyphs]], scale: float
) -> tuple[dict[str, str | None], list[dict[str, str | None]], dict[str, Box]]:
    """Fields of the CustomTag files: each names the text objects its value is printed in."""
    values: dict[str, str | None] = {}
    items: list[dict[str, str | None]] = []
    boxes: dict[str, Box] = {}
    index_file = next((e.text for e in document.iter() if local(e.tag) == "CustomTags" and e.text), None)
    if not index_file:
        return values, items, boxes
    tags_path = resolve(doc_dir, index_file)
    tags_root = package.xml(tags_path)
    if tags_root is None:
        return values, items, boxes
    for entry in (e for e in tags_root.iter() if local(e.tag) == "FileLoc" and e.text):
        root = package.xml(resolve(posixpath.dirname(tags_path), entry.text or ""))
        if root is None:
            continue

        def value_of(element: Element) -> tuple[str | None, Box | None]:
            parts: list[str] = []
            found: list[tuple[int, Glyphs]] = []
            for ref in element:
                kind = local(ref.tag)
                if kind == "ObjectData" and ref.text:
                    parts.append(ref.text.strip())
                elif kind == "ObjectRef" and ref.text and ref.text.strip() in texts:
                    page, glyphs = texts[ref.text.strip()]
                    parts.append(glyphs.text)
                    found.append((page, glyphs))
            box = None
            if found:
                page = found[0][0]
                xs = [x for _, g in found for _, x, _ in g.chars]
                ys = [y for _, g in found for _, _, y in g.chars]
                size = max(g.size for _, g in found)
                if xs:
                    box = Box(
                        page,
                        polygon_from_rect(
                            min(xs) * scale,
                            (min(ys) - size) * scale,
                            (max(xs) + size) * scale,
                            (max(ys) + size * 0.2) * scale,
                        ),
                    )
            joined = "".join(parts).strip()
            return (joined or None), box

        for element in root.iter():
            name = TAG_FIELDS.get(local(element.tag))
            if name and name not in values:
                value, box = value_of(element)
                if value:
                    values[name] = value
                    if box is not None:
                        boxes[name] = box
            if local(element.tag) == "GoodsInfo":
                item = {key: value_of(e)[0] for e in element if (key := TAG_ITEM_KEYS.get(local(e.tag)))}
                if any(item.values()):
                    items.append(item)
    return values, items, boxes


def attachment_sources(
    package: Package, doc_dir: str
) -> list[tuple[str, dict[str, str | None], list[dict[str, str | None]], dict[str, str]]]:
    """Invoice XML attached to the document (original_invoice.xml, an issuer's XBRL invoice …)."""
    found = []
    prefix = posixpath.join(doc_dir, "attachs/").lower() if doc_dir else "attachs/"
    for name in package.names():
        lowered = name.lower()
        if not lowered.endswith(".xml") or lowered.endswith("attachments.xml"):
            continue
        if not (lowered.startswith(prefix) or "/attachs/" in lowered):
            continue
        try:
            root = package.xml(name)
        except EInvoiceUnreadable as exc:
            log.info("attachment %s not read: %s", name, exc)
            continue
        read = read_invoice_xml(root) if root is not None else None
        if read is not None:
            found.append((posixpath.basename(name), *read))
    return found


def custom_data_source(doc_info: Element | None) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    if doc_info is None:
        return values
    for element in doc_info.iter():
        if local(element.tag) == "CustomData":
            name = custom_data_field(element.get("Name") or "")
            if name and element.text and name not in values:
                values[name] = element.text
    return values


# ---- the document ------------------------------------------------------------------------------


def load_ofd(data: bytes, settings: Settings) -> list[Page]:
    """The pages of an OFD invoice, the first carrying the invoice's own data."""
    package = Package(data, settings)
    try:
        return _load(package, settings)
    finally:
        package.close()


def _load(package: Package, settings: Settings) -> list[Page]:
    root = package.xml("OFD.xml")
    if root is None:
        raise EInvoiceUnreadable(
            "OFD file has no OFD.xml (the package's entry point): damaged or not an OFD file"
        )
    body = next((e for e in root.iter() if local(e.tag) == "DocBody"), None)
    doc_root = next((e.text.strip() for e in root.iter() if local(e.tag) == "DocRoot" and e.text), None)
    if body is None or not doc_root:
        raise EInvoiceUnreadable("OFD.xml names no document (DocBody/DocRoot missing)")
    doc_info = next((e for e in body.iter() if local(e.tag) == "DocInfo"), None)
    doc_path = resolve("", doc_root)
    doc_dir = posixpath.dirname(doc_path)
    document = package.xml(doc_path)
    if document is None:
        raise EInvoiceUnreadable(f"OFD file names {doc_root} as its document, and it is not in the package")

    common = next((e for e in document if local(e.tag) == "CommonData"), None)
    default_box = _physical_box(common) or DEFAULT_PAGE_MM
    resources = Resources()
    templates: dict[str, str] = {}
    if common is not None:
        for element in common:
            name = local(element.tag)
            if name in ("PublicRes", "DocumentRes") and element.text:
                resources.add(package, resolve(doc_dir, element.text))
            elif name == "TemplatePage" and element.get("BaseLoc"):
                templates[element.get("ID", "")] = resolve(doc_dir, element.get("BaseLoc", ""))
    page_entries = [e for e in document.iter() if local(e.tag) == "Page" and e.get("BaseLoc")]
    if not page_entries:
        raise EInvoiceUnreadable("OFD document has no pages")
    if len(page_entries) > settings.max_pages:
        raise TooLarge(
            f"OFD document has {len(page_entries)} pages, over the {settings.max_pages}-page limit"
        )
    annotations = _annotation_files(package, doc_dir, document)

    scale = settings.render_dpi / MM_PER_INCH
    template_cache: dict[str, Element | None] = {}
    texts: dict[str, tuple[int, Glyphs]] = {}
    pages: list[Page] = []
    for index, entry in enumerate(page_entries):
        content_path = resolve(doc_dir, entry.get("BaseLoc", ""))
        content = package.xml(content_path)
        if content is None:
            raise EInvoiceUnreadable(f"OFD page {index + 1} ({content_path}) is missing from the package")
        width_mm, height_mm = (
            _physical_box(next((e for e in content if local(e.tag) == "Area"), None)) or default_box
        )
        check_pixels(round(width_mm * scale), round(height_mm * scale), settings)
        canvas = Canvas(width_mm, height_mm, settings.render_dpi)
        drawer = PageDrawer(package, resources, canvas, settings)
        drawn = Drawn()
        for template_id in [t.get("TemplateID", "") for t in content if local(t.tag) == "Template"]:
            path = templates.get(template_id)
            if path is None:
                continue
            if path not in template_cache:
                template_cache[path] = package.xml(path)
            template = template_cache[path]
            if template is not None:
                drawer.walk(template, drawn)
        body_content = next((e for e in content if local(e.tag) == "Content"), None)
        if body_content is not None:
            drawer.walk(body_content, drawn)
        for annotation in annotations.get(entry.get("ID", ""), []):
            boundary = numbers(annotation.get("Boundary")) or [0.0, 0.0]
            drawer.walk(annotation, drawn, (1.0, 0.0, 0.0, 1.0, boundary[0], boundary[1]), collect=False)
        for object_id, glyphs in drawn.texts.items():
            texts.setdefault(object_id, (index, glyphs))
        lines = glyph_lines(drawn.glyphs, index, scale)
        note = "; ".join(sorted(drawn.notes))
        pages.append(
            Page(index=index, image=canvas.to_bgr(), text_layer=lines, text_layer_trusted=True, note=note)
        )

    tag_values, tag_items, boxes = tag_sources(package, doc_dir, document, texts, scale)
    sources: list[tuple[str, dict[str, str | None], list[dict[str, str | None]]]] = []
    extra: dict[str, str] = {}
    for origin, values, items, more in attachment_sources(package, doc_dir):
        sources.append((f"OFD attachment {origin}", values, items))
        for key, value in more.items():
            if value:
                extra.setdefault(key, value)
    sources.append(("OFD CustomTag", tag_values, tag_items))
    sources.append(("OFD.xml CustomDatas", custom_data_source(doc_info), []))
    structured = build(sources)
    if structured is not None:
        structured.boxes = boxes
        for key, value in extra.items():
            structured.extra.setdefault(key, value)
        pages[0].structured = structured
    return pages


def _physical_box(element: Element | None) -> tuple[float, float] | None:
    if element is None:
        return None
    area = next((e for e in element.iter() if local(e.tag) == "PhysicalBox"), None)
    values = numbers(area.text if area is not None else None)
    if len(values) == 4 and values[2] > 0 and values[3] > 0:
        return values[2], values[3]
    return None


def _annotation_files(package: Package, doc_dir: str, document: Element) -> dict[str, list[Element]]:
    """Appearance blocks of the annotations (watermarks, stamps) by page ID: drawn, not read."""
    found: dict[str, list[Element]] = {}
    location = next((e.text for e in document if local(e.tag) == "Annotations" and e.text), None)
    if not location:
        return found
    index_path = resolve(doc_dir, location)
    try:
        index_root = package.xml(index_path)
    except InputError:
        return found
    if index_root is None:
        return found
    for page in (e for e in index_root.iter() if local(e.tag) == "Page"):
        file_loc = next((e.text for e in page if local(e.tag) == "FileLoc" and e.text), None)
        if not file_loc:
            continue
        try:
            annot_root = package.xml(resolve(posixpath.dirname(index_path), file_loc))
        except InputError:
            continue
        if annot_root is None:
            continue
        appearances = [e for e in annot_root.iter() if local(e.tag) == "Appearance"]
        found.setdefault(page.get("PageID", ""), []).extend(appearances)
    return found


__all__ = ["StructuredInvoice", "load_ofd"]
