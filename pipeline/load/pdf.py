"""PDF -> pages: rendered with pdfium (Chinese drawn whether or not its fonts are embedded); the
text layer read with pypdfium2.

The text layer is trusted only when it looks like real text (``text_layer_trusted``).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

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
        scale = settings.render_dpi / 72
        pdf_pages = [document[index] for index in range(page_count)]  # each page parsed once
        for pdf_page in pdf_pages:
            width_pt, height_pt = pdf_page.get_size()
            check_pixels(int(width_pt * scale), int(height_pt * scale), settings)
        pages = []
        for index, pdf_page in enumerate(pdf_pages):
            lines: list[TextLine] | None = None
            trusted = False
            if settings.use_text_layer:
                lines = read_text_layer(pdf_page, index, settings.render_dpi)
                trusted, why = text_layer_trusted(lines)
                if lines and not trusted:
                    log.info("page %d: text layer not used: %s", index + 1, why)
            pages.append(
                Page(
                    index=index,
                    image=_render_page(pdf_page, index, settings.render_dpi),
                    text_layer=lines,
                    text_layer_trusted=trusted,
                    note="" if trusted or not lines else "text layer unreadable, page OCR'd",
                    # Only where the page image is the render itself: an OCR'd page is turned and cropped.
                    qr_hints=square_images(pdf_page, scale) if trusted else (),
                )
            )
        return pages
    finally:
        document.close()


def _render_page(page: object, index: int, dpi: int) -> np.ndarray:
    """One page as a BGR image, rendered by pdfium in-process (pages OCR'd or only displayed).

    pdfium draws CJK text whose font is not embedded with a system CJK font (poppler needs
    Debian's poppler-data for that, and draws nothing without it), and takes ~20 ms CPU a page
    against ~0.3 s of pdftoppm subprocesses. Form fields are drawn too: e-invoices put the
    seller's seal in a signature widget.
    """
    import pypdfium2 as pdfium

    try:
        bitmap = page.render(scale=dpi / 72, may_draw_forms=True)  # type: ignore[attr-defined]
    except pdfium.PdfiumError as exc:
        raise PdfUnreadable(f"PDF page {index + 1} cannot be rendered: {exc}") from exc
    image = bitmap.to_numpy()  # pdfium renders BGR(A) byte order: what OpenCV expects
    return np.ascontiguousarray(image[:, :, :3])


def square_images(page: object, scale: float) -> tuple[tuple[int, int, int, int], ...]:
    """Pixel boxes (x0, y0, x1, y1 at ``scale``) of the page's square images, largest first.

    Invoice PDFs place their QR code as one square image (top left on VAT e-invoices, ~57 pt),
    so the QR reader looks there before it scans the whole page. Only a hint: a QR code drawn
    as vector paths, or not found in any of these, is still looked for on the whole page.
    """
    import ctypes

    import pypdfium2.raw as pdfium_c

    _, height_pt = page.get_size()  # type: ignore[attr-defined]
    boxes = []
    edges = [ctypes.c_float() for _ in range(4)]  # left, bottom, right, top
    bounds = [ctypes.byref(edge) for edge in edges]

    # pdfium's C calls, not pypdfium2's objects: a page holds hundreds of text and path objects,
    # and wrapping each in a Python object took ~1 ms of a text-layer PDF's ~20.
    def visit(count: int, get: Callable[[int], Any], depth: int) -> None:
        for n in range(count):
            obj = get(n)
            kind = pdfium_c.FPDFPageObj_GetType(obj)
            if kind == pdfium_c.FPDF_PAGEOBJ_FORM and depth < 3:
                visit(
                    pdfium_c.FPDFFormObj_CountObjects(obj),
                    partial(pdfium_c.FPDFFormObj_GetObject, obj),
                    depth + 1,
                )
            elif kind == pdfium_c.FPDF_PAGEOBJ_IMAGE and pdfium_c.FPDFPageObj_GetBounds(obj, *bounds):
                left, bottom, right, top = (edge.value for edge in edges)
                width, height = right - left, top - bottom
                if min(width, height) >= 24 and 0.8 <= width / height <= 1.25:  # an inch is 72 pt
                    boxes.append((width * height, left, bottom, right, top))

    raw_page = page.raw  # type: ignore[attr-defined]
    visit(pdfium_c.FPDFPage_CountObjects(raw_page), partial(pdfium_c.FPDFPage_GetObject, raw_page), 0)
    return tuple(
        (
            int(left * scale),
            int((height_pt - top) * scale),
            int(right * scale) + 1,
            int((height_pt - bottom) * scale) + 1,
        )
        for _, left, bottom, right, top in sorted(boxes, reverse=True)[:4]
    )


def read_text_layer(page: object, index: int, dpi: int) -> list[TextLine]:
    """Text runs of one PDF page (``index`` in its document) with boxes in the pixel space of
    the page rendered at ``dpi``."""
    import ctypes

    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()  # type: ignore[attr-defined]
    try:
        _, height_pt = page.get_size()  # type: ignore[attr-defined]
        scale = dpi / 72
        runs: list[Run] = []
        # One call per run into a buffer kept for the page (pypdfium2's helper asks pdfium twice,
        # once for the length); the count includes the terminating NUL. A run that could fill the
        # buffer is read again by the helper.
        size = 512
        buffer = (ctypes.c_ushort * size)()
        for rect_index in range(textpage.count_rects()):
            left, bottom, right, top = textpage.get_rect(rect_index)
            count = pdfium_c.FPDFText_GetBoundedText(textpage, left, top, right, bottom, buffer, size)
            if count >= size:
                text = textpage.get_text_bounded(left, bottom, right, top)
            else:
                text = ctypes.string_at(buffer, 2 * max(count - 1, 0)).decode("utf-16-le", errors="ignore")
            text = text.replace("\u3000", " ").replace("\r", " ").replace("\n", " ").strip()
            if text:
                runs.append(
                    Run(
                        text,
                        left * scale,
                        (height_pt - top) * scale,
                        right * scale,
                        (height_pt - bottom) * scale,
                    )
                )
        lengths = sorted(len(run.text) for run in runs)
        text = "".join(run.text for run in runs)
        latin = sum(ch.isascii() for ch in text) >= 0.8 * max(len(text), 1)
        if latin and lengths and lengths[len(lengths) // 2] <= 2:
            # One run per character: rebuild lines from the text stream, which has real spaces.
            return _lines_from_chars(textpage, height_pt, scale, index)
        return [
            TextLine(run.text, 1.0, polygon_from_rect(run.x0, run.y0, run.x1, run.y1), index)
            for run in _merged(runs)
        ]
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


class Run(NamedTuple):
    """A run of text and its box, before it is a line."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    first: int = -1  # the index of its only run when nothing was joined to it, else -1


def merge_runs(lines: list[TextLine]) -> list[TextLine]:
    """Join runs that continue each other on one baseline into a line (see ``_merged``); a line
    nothing was joined to is returned as it was."""
    merged = _merged([Run(line.text, line.x0, line.y0, line.x1, line.y1) for line in lines])
    return [
        lines[run.first]
        if run.first >= 0
        else TextLine(run.text, 1.0, polygon_from_rect(run.x0, run.y0, run.x1, run.y1), lines[0].page)
        for run in merged
    ]


def _merged(runs: list[Run]) -> list[Run]:
    """Some PDF producers place every character as its own run ("I", "n", "v", …); extraction
    needs words and lines. A gap wider than the text height keeps runs apart (columns, label and
    value blocks), a gap over a quarter of it becomes a space. Latin runs only: CJK forms overlay
    digits on printed 年/月/日 and must keep their runs."""
    # Plain tuples, and a line built only once it is complete: a page has hundreds of runs, and
    # building a TextLine per join (and asking it for its box) took most of the text layer's time.
    merged: list[Run] = []
    texts: list[str] = []
    current: Run | None = None
    current_index = -1
    for index, run in enumerate(runs):
        if current is not None:
            height = max(min(current.y1 - current.y0, run.y1 - run.y0), 1.0)
            gap = run.x0 - current.x1
            overlap = min(current.y1, run.y1) - max(current.y0, run.y0)
            if (
                current.text.isascii()
                and run.text.isascii()
                and overlap >= 0.6 * height
                and -0.3 * height <= gap <= 1.0 * height
            ):
                if gap > 0.25 * height:
                    texts.append(" ")
                texts.append(run.text)
                current = Run(
                    run.text,  # ascii like every run joined so far: what the next join checks
                    min(current.x0, run.x0),
                    min(current.y0, run.y0),
                    max(current.x1, run.x1),
                    max(current.y1, run.y1),
                )
                current_index = -1
                continue
            merged.append(current._replace(text="".join(texts), first=current_index))
        current, texts, current_index = run, [run.text], index
    if current is not None:
        merged.append(current._replace(text="".join(texts), first=current_index))
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
