"""PDF -> pages: rendered with pdfium (Chinese drawn whether or not its fonts are embedded); the
text layer read with pypdfium2.

The text layer is trusted only when it looks like real text (``text_layer_trusted``).
"""

from __future__ import annotations

import logging
import re
import unicodedata

import numpy as np

from pipeline.config import Settings
from pipeline.errors import EncryptedPdf, PdfUnreadable, TooLarge
from pipeline.load.images import check_pixels
from pipeline.model import Page, TextLine, polygon_from_rect

log = logging.getLogger(__name__)


def load_pdf(data: bytes, settings: Settings) -> list[Page]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        # pdfium's error code is process-global and not reset on every failure (a PDF with no pages
        # reports the previous file's "password" error): the bytes decide. An encrypted PDF that opens
        # without a password never gets here.
        if b"/Encrypt" in data:
            raise EncryptedPdf("PDF is encrypted (password protected); decrypt it first") from exc
        if not re.search(rb"/Type\s*/Page(?!s)", data):
            raise PdfUnreadable("PDF has no pages") from exc
        raise PdfUnreadable(f"PDF is damaged and cannot be opened: {exc}") from exc
    try:
        document.init_forms()  # before any page is loaded, so that rendering draws form fields
    except pdfium.PdfiumError:
        log.debug("PDF forms could not be initialised; rendering without them")
    try:
        page_count = len(document)
        if page_count == 0:
            raise PdfUnreadable("PDF has no pages")
        if page_count > settings.max_pages:
            raise TooLarge(f"PDF has {page_count} pages, over the {settings.max_pages}-page limit")
        for index in range(page_count):
            width_pt, height_pt = document[index].get_size()
            scale = settings.render_dpi / 72
            check_pixels(int(width_pt * scale), int(height_pt * scale), settings)
        layers: list[tuple[list[TextLine] | None, bool]] = []
        for index in range(page_count):
            lines: list[TextLine] | None = None
            trusted = False
            if settings.use_text_layer:
                lines = read_text_layer(document, index, settings.render_dpi)
                trusted, why = text_layer_trusted(lines)
                if lines and not trusted:
                    log.info("page %d: text layer not used: %s", index + 1, why)
            layers.append((lines, trusted))
        images = _render_pdfium(document, settings.render_dpi)
        pages = []
        for index, image in enumerate(images):
            lines, trusted = layers[index]
            pages.append(
                Page(
                    index=index,
                    image=image,
                    text_layer=lines,
                    text_layer_trusted=trusted,
                    note="" if trusted or not lines else "text layer unreadable, page OCR'd",
                )
            )
        return pages
    finally:
        document.close()


def _render_pdfium(document: object, dpi: int) -> list[np.ndarray]:
    """Every page as a BGR image, rendered by pdfium in-process (pages OCR'd or only displayed).

    pdfium draws CJK text whose font is not embedded with a system CJK font (poppler needs
    Debian's poppler-data for that, and draws nothing without it), and takes ~20 ms CPU a page
    against ~0.3 s of pdftoppm subprocesses. Form fields are drawn too: e-invoices put the
    seller's seal in a signature widget.
    """
    import pypdfium2 as pdfium

    images = []
    for index in range(len(document)):  # type: ignore[arg-type]
        try:
            page = document[index]  # type: ignore[index]
            bitmap = page.render(scale=dpi / 72, may_draw_forms=True)
        except pdfium.PdfiumError as exc:
            raise PdfUnreadable(f"PDF page {index + 1} cannot be rendered: {exc}") from exc
        image = bitmap.to_numpy()  # pdfium renders BGR(A) byte order: what OpenCV expects
        images.append(np.ascontiguousarray(image[:, :, :3]))
    return images


def read_text_layer(document: object, index: int, dpi: int) -> list[TextLine]:
    """Text runs of one PDF page with boxes in the pixel space of the page rendered at ``dpi``."""
    page = document[index]  # type: ignore[index]
    textpage = page.get_textpage()
    try:
        _, height_pt = page.get_size()
        scale = dpi / 72
        lines = []
        for rect_index in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(rect_index)
            text = textpage.get_text_bounded(left, bottom, right, top)
            text = text.replace("\u3000", " ").replace("\r", " ").replace("\n", " ").strip()
            if not text:
                continue
            polygon = polygon_from_rect(
                left * scale, (height_pt - top) * scale, right * scale, (height_pt - bottom) * scale
            )
            lines.append(TextLine(text=text, confidence=1.0, polygon=polygon, page=index))
        lengths = sorted(len(line.text) for line in lines)
        text = "".join(line.text for line in lines)
        latin = sum(ch.isascii() for ch in text) >= 0.8 * max(len(text), 1)
        if latin and lengths and lengths[len(lengths) // 2] <= 2:
            # One run per character: rebuild lines from the text stream, which has real spaces.
            return _lines_from_chars(textpage, height_pt, scale, index)
        return merge_runs(lines)
    finally:
        textpage.close()


def _lines_from_chars(textpage: object, height_pt: float, scale: float, index: int) -> list[TextLine]:
    """Lines from pdfium's character stream, split where a wide gap separates columns."""
    lines: list[TextLine] = []
    chars: list[tuple[str, tuple[float, float, float, float]]] = []

    def flush() -> None:
        text = "".join(ch for ch, _ in chars).strip()
        boxes = [box for ch, box in chars if not ch.isspace()]
        if text and boxes:
            x0 = min(b[0] for b in boxes) * scale
            x1 = max(b[2] for b in boxes) * scale
            y0 = (height_pt - max(b[3] for b in boxes)) * scale
            y1 = (height_pt - min(b[1] for b in boxes)) * scale
            lines.append(
                TextLine(text=text, confidence=1.0, polygon=polygon_from_rect(x0, y0, x1, y1), page=index)
            )
        chars.clear()

    count = textpage.count_chars()  # type: ignore[attr-defined]
    stream = textpage.get_text_range(0, count)  # type: ignore[attr-defined]
    for char_index, ch in enumerate(stream[:count]):
        if ch in "\r\n":
            flush()
            continue
        box = textpage.get_charbox(char_index)  # type: ignore[attr-defined]
        visible = [b for c, b in chars if not c.isspace()]
        if visible and not ch.isspace():
            last = visible[-1]
            height = max(last[3] - last[1], box[3] - box[1], 1.0)
            if box[0] - last[2] > 1.5 * height or abs(box[1] - last[1]) > height:
                flush()
        chars.append((ch, box))
    flush()
    return lines


def merge_runs(lines: list[TextLine]) -> list[TextLine]:
    """Join runs that continue each other on one baseline into a line.

    Some PDF producers place every character as its own run ("I", "n", "v", …); extraction
    needs words and lines. A gap wider than the text height keeps runs apart (columns,
    label and value blocks), a gap over a quarter of it becomes a space.
    """
    merged: list[TextLine] = []
    for line in lines:
        if merged:
            last = merged[-1]
            height = max(min(last.height, line.height), 1.0)
            gap = line.x0 - last.x1
            overlap = min(last.y1, line.y1) - max(last.y0, line.y0)
            # Latin runs only: CJK forms overlay digits on printed 年/月/日 and must keep their runs.
            latin = last.text.isascii() and line.text.isascii()
            if latin and overlap >= 0.6 * height and -0.3 * height <= gap <= 1.0 * height:
                joiner = " " if gap > 0.25 * height else ""
                merged[-1] = TextLine(
                    text=last.text + joiner + line.text,
                    confidence=1.0,
                    polygon=polygon_from_rect(
                        min(last.x0, line.x0),
                        min(last.y0, line.y0),
                        max(last.x1, line.x1),
                        max(last.y1, line.y1),
                    ),
                    page=line.page,
                )
                continue
        merged.append(line)
    return merged


def text_layer_trusted(lines: list[TextLine] | None) -> tuple[bool, str]:
    """A text layer is trusted when it is long enough and made of real characters.

    PDFs with unmapped fonts give control characters, private-use code points or
    replacement characters instead of text; those pages are OCR'd instead.
    """
    if not lines:
        return False, "no text layer"
    text = "".join(line.text for line in lines).replace(" ", "")
    if len(text) < 20:
        return False, f"only {len(text)} characters of text"
    bad = sum(1 for ch in text if unicodedata.category(ch) in {"Cc", "Co", "Cn", "Cs"} or ch == "\ufffd")
    if bad / len(text) > 0.02:
        return False, f"{bad} of {len(text)} characters are control or unmapped glyphs"
    return True, "ok"
